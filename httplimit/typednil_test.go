package httplimit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// TestTypedNilLimiters checks that a Tier.Limiter that returns a typed nil
// (a nil *Limiter in a ratekit.Limiter, not wrapped by Per) for every tier
// of a request exempts it, as a nil does: the request is served, and the
// tiers do not apply. Before, TakeEach's index of -1 (no member binds) was
// used to index the tiers and the request panicked.
func TestTypedNilLimiters(t *testing.T) {
	typedNil := func(string) ratekit.Limiter { var l *window; return l }
	for _, n := range []int{1, 2} {
		var tiers []httplimit.Tier
		for i := range n {
			tiers = append(tiers, httplimit.Tier{Name: []string{"a", "b"}[i], Limiter: typedNil})
		}
		applied := 0
		h := mustNew(t, httplimit.Config{Tiers: tiers, OnDecision: func(_ *http.Request, _ ratekit.Decision, tds []httplimit.TierDecision) {
			for _, td := range tds {
				if td.Applied {
					applied++
				}
			}
		}}).Wrap(ok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newReq("203.0.113.9:4711"))
		if w.Code != http.StatusOK || applied != 0 {
			t.Errorf("%d tiers of typed nils: status %d, %d applied; want 200, none", n, w.Code, applied)
		}
	}
}
