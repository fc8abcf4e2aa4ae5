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
// of a request exempts it, as a nil does: the request is served. Before,
// TakeEach's index of -1 (no member binds) was used to index the tiers and
// the request panicked.
func TestTypedNilLimiters(t *testing.T) {
	typedNil := func(string) ratekit.Limiter { var l *window; return l }
	for _, n := range []int{1, 2} {
		var tiers []httplimit.Tier
		for i := range n {
			tiers = append(tiers, httplimit.Tier{Name: []string{"a", "b"}[i], Limiter: typedNil})
		}
		h := mustNew(t, httplimit.Config{Tiers: tiers}).Wrap(ok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newReq("203.0.113.9:4711"))
		if w.Code != http.StatusOK {
			t.Errorf("%d tiers of typed nils: status %d, want 200", n, w.Code)
		}
	}
}
