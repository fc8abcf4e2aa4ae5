package httplimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// peekCounter counts the Peeks its limiter receives.
type peekCounter struct {
	ratekit.Limiter
	peeks int
}

func (p *peekCounter) Peek(now time.Time, n int) ratekit.Decision {
	p.peeks++
	return p.Limiter.Peek(now, n)
}

// TestTierDecisionsOnRefusal: with the option, an admitted request costs
// OnDecision no Peek and its tiers' Decisions are zero; a refused request
// still reports which tier refused, and with what.
func TestTierDecisionsOnRefusal(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		org := &peekCounter{Limiter: newWindow("org", 2, time.Minute)}
		ip := &peekCounter{Limiter: newWindow("ip", 100, time.Minute)}
		var got []httplimit.TierDecision
		h := mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{
				{Name: "org", Limiter: httplimit.Shared(org)},
				{Name: "ip", Limiter: httplimit.Shared(ip)},
			},
			Clock:                  mockAt(t0),
			TierDecisionsOnRefusal: lazy,
			OnDecision: func(_ *http.Request, _ ratekit.Decision, tiers []httplimit.TierDecision) {
				got = append(got[:0], tiers...)
			},
		}).Wrap(ok)

		for range 2 {
			serve(h, newReq("192.0.2.1:1"))
		}
		if wantPeeks := map[bool]int{false: 2, true: 0}[lazy]; org.peeks != wantPeeks || ip.peeks != wantPeeks {
			t.Errorf("lazy=%v: admitted requests peeked org %d, ip %d times, want %d", lazy, org.peeks, ip.peeks, wantPeeks)
		}
		if lazy && (got[0].Decision != ratekit.Decision{} || !got[0].Applied) {
			t.Errorf("lazy: admitted org tier = %+v, want applied with a zero Decision", got[0])
		}

		if w := serve(h, newReq("192.0.2.1:1")); w.Code != http.StatusTooManyRequests {
			t.Fatalf("lazy=%v: third request: %d, want 429", lazy, w.Code)
		}
		if d := got[0].Decision; d.Allowed || d.RetryAfter != 12*time.Second || d.Policy != "org" {
			t.Errorf("lazy=%v: refusing tier = %+v, want org's refusal for 12s", lazy, d)
		}
		if d := got[1].Decision; d.RetryAfter != 0 || (!lazy && !d.Allowed) {
			t.Errorf("lazy=%v: tier that did not refuse = %+v", lazy, d)
		}
	}
}
