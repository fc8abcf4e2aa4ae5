package httplimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// TestViolatedPoliciesOnlyRefusers checks that a 429's violated-policies
// names the tiers that refused and no other, whatever the dialect and
// hooks. Before, with the default dialect and no OnDecision, the tier that
// admitted (org) was listed too: its per-tier Decision was never filled in,
// and the zero Decision reads as a refusal.
func TestViolatedPoliciesOnlyRefusers(t *testing.T) {
	for name, headers := range map[string]httplimit.Dialect{"default": 0, "IETF": httplimit.IETF} {
		t.Run(name, func(t *testing.T) {
			h := mustNew(t, httplimit.Config{
				Tiers: []httplimit.Tier{
					{Name: "org", Limiter: httplimit.Shared(newWindow("org", 100, time.Minute))},
					{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(newWindow("token", 1, time.Minute))},
				},
				Headers: headers,
				Clock:   mockAt(t0),
			}).Wrap(ok)
			serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer a"))
			w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer a"))
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("second request: %d, want 429", w.Code)
			}
			if p := decodeProblem(t, w); !equalJSON(p["violated-policies"], []any{"token"}) {
				t.Errorf("violated-policies %v, want [token]", p["violated-policies"])
			}
		})
	}
}
