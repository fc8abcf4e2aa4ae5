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

// TestTierDecisionsOnRefusal: an admitted request costs OnDecision no Peek
// in either mode (each tier's Decision is its Take); on a refused request,
// OnDecision alone asks a Peek of 0 units of each tier that did not refuse,
// and the option spares it, leaving that tier what the take knew. Either
// way the refusing tier reports its refusal.
func TestTierDecisionsOnRefusal(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		org := &peekCounter{Limiter: newWindow("org", 100, time.Minute)}
		ip := &peekCounter{Limiter: newWindow("ip", 2, time.Minute)}
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

		for i := range 2 {
			serve(h, newReq("192.0.2.1:1"))
			if d := got[1].Decision; !d.Allowed || d.Remaining != 1-i || !got[1].Applied {
				t.Errorf("lazy=%v: admitted request %d: ip tier = %+v, want its Take (remaining %d)", lazy, i, got[1], 1-i)
			}
		}
		if org.peeks != 0 || ip.peeks != 0 {
			t.Errorf("lazy=%v: admitted requests peeked org %d, ip %d times, want none", lazy, org.peeks, ip.peeks)
		}

		if w := serve(h, newReq("192.0.2.1:1")); w.Code != http.StatusTooManyRequests {
			t.Fatalf("lazy=%v: third request: %d, want 429", lazy, w.Code)
		}
		if d := got[1].Decision; d.Allowed || d.RetryAfter != 12*time.Second || d.Policy != "ip" || !got[1].Refused() {
			t.Errorf("lazy=%v: refusing tier = %+v, want ip's refusal for 12s", lazy, d)
		}
		if got[0].Refused() || !got[0].Decision.Allowed {
			t.Errorf("lazy=%v: tier that did not refuse = %+v", lazy, got[0])
		}
		if want := map[bool]int{false: 1, true: 0}[lazy]; org.peeks != want {
			t.Errorf("lazy=%v: the refusal peeked org %d times, want %d", lazy, org.peeks, want)
		}
	}
}
