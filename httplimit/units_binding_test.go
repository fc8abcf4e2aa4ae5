package httplimit_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// TestRemainingCountsRequests (FAILS: a larger defect, left on a side
// branch): X-RateLimit-Remaining promises "how many more requests you can
// make" (the mail API, Sender), but the binding tier is the one with the
// least Remaining in its own unit. Beside a tier of 50 requests, a tier of
// 100 events charged 10 a request reports 30 after 7 requests, when 3 more
// are admitted.
func TestRemainingCountsRequests(t *testing.T) {
	clk := mockAt(t0)
	events := newWindow("events", 100, time.Minute)
	reqs := newWindow("requests", 50, time.Minute)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "events", Unit: "events", Limiter: httplimit.Shared(events), Cost: func(*http.Request) int { return 10 }},
			{Name: "requests", Limiter: httplimit.Shared(reqs)},
		},
		Clock: clk,
	}).Wrap(ok)
	var w interface{ Header() http.Header }
	for range 7 {
		w = serve(h, newReq("192.0.2.1:1"))
	}
	said, _ := strconv.Atoi(w.Header().Get("X-RateLimit-Remaining"))
	admitted := 0
	for serve(h, newReq("192.0.2.1:1")).Code == http.StatusOK {
		admitted++
	}
	if said > admitted {
		t.Fatalf("X-RateLimit-Remaining: %d, but %d more requests were admitted", said, admitted)
	}
}
