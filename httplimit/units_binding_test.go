package httplimit_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// TestRemainingCountsRequests: X-RateLimit-Remaining promises "how many
// more requests you can make" (the mail API, Sender). Beside a tier of 50
// requests, a tier of 100 events charged 10 a request binds after 7
// requests with 3 more admitted; the binding tier was the one with the
// least Remaining in its own unit, which said 30.
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

// TestChainedBindsInRequests: behind an outer middleware, the inner one's
// single-policy headers describe the policy of both that binds in
// requests, not the least Remaining across units: the outer's 100 events
// at 10 a request (after one: 9 requests, 90 events) bind before the
// inner's 50 requests (49), and the inner's binds once it has fewer left.
// A tier the request costs nothing (0 events) binds no count.
func TestChainedBindsInRequests(t *testing.T) {
	for _, tc := range []struct {
		name             string
		events, cost     int
		requests         int
		limit, remaining string
	}{
		{"outer events bind", 100, 10, 50, "10", "9"},
		{"inner requests bind", 100, 10, 5, "5", "4"},
		{"free outer tier binds nothing", 3, 0, 50, "50", "49"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cost := tc.cost
			outer := mustNew(t, httplimit.Config{
				Tiers: []httplimit.Tier{{Name: "events", Unit: "events", Limiter: httplimit.Shared(newWindow("events", tc.events, time.Minute)),
					Cost: func(*http.Request) int { return cost }}},
				Clock: mockAt(t0),
			})
			inner := mustNew(t, httplimit.Config{
				Tiers: []httplimit.Tier{{Name: "requests", Limiter: httplimit.Shared(newWindow("requests", tc.requests, time.Minute))}},
				Clock: mockAt(t0),
			})
			w := serve(outer.Wrap(inner.Wrap(ok)), newReq("192.0.2.1:1"))
			wantHeaders(t, w.Header(), map[string]string{"X-RateLimit-Limit": tc.limit, "X-RateLimit-Remaining": tc.remaining})
		})
	}
}

// TestRefusalCacheCountsRequests: a cached 429 is reused only for a
// refusal whose counts in requests are the same. Two refusals by the same
// tier at the same instant, of requests costing 10 and then 25 events,
// report Limit 10 and 4 (of 100 events a minute), not the first's twice.
func TestRefusalCacheCountsRequests(t *testing.T) {
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "events", Unit: "events", Limiter: httplimit.Shared(newWindow("events", 100, time.Minute))}},
		Cost: func(r *http.Request) int {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			return n
		},
		Headers: httplimit.XRateLimit,
		Clock:   mockAt(t0),
	}).Wrap(ok)
	get := func(n int) http.Header {
		r := newReq("192.0.2.1:1")
		r.URL.RawQuery = "n=" + strconv.Itoa(n)
		w := serve(h, r)
		if (w.Code == http.StatusOK) != (n == 95) {
			t.Fatalf("cost %d: %d", n, w.Code)
		}
		return w.Header()
	}
	get(95)
	for _, tc := range []struct{ n, limit int }{{10, 10}, {10, 10}, {25, 4}, {25, 4}} {
		wantHeaders(t, get(tc.n), map[string]string{"X-RateLimit-Limit": strconv.Itoa(tc.limit), "X-RateLimit-Remaining": "0", "Retry-After": "12"})
	}
}

// TestUnitsAllocs: counting in requests allocates nothing more. An
// admitted request through a tier in events at 10 a request and a tier in
// requests makes the two allocations of its header values, as any
// admission does, and a repeated 429 by the events tier (the cached one)
// makes none.
func TestUnitsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	clk := mockAt(t0)
	events := newWindow("events", 1<<30, time.Minute)
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "events", Unit: "events", Limiter: httplimit.Shared(events), Cost: func(*http.Request) int { return 10 }},
			{Name: "requests", Limiter: httplimit.Shared(newWindow("requests", 1<<30, time.Minute))},
		},
		Headers: httplimit.XRateLimit | httplimit.Sentry,
		Clock:   clk,
	})
	h := m.Wrap(ok)
	r := newReq("192.0.2.1:1")
	w := &discard{h: make(http.Header)}
	if got := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}); got != 2 || w.h.Get("X-RateLimit-Limit") != strconv.Itoa(1<<30/10) {
		t.Errorf("admitted: %v allocations per request (X-RateLimit-Limit %q), want 2", got, w.h.Get("X-RateLimit-Limit"))
	}
	events.Take(t0, events.Peek(t0, 0).Remaining-5) // 5 events left: no request of 10
	h.ServeHTTP(w, r)                               // the first refusal is rendered, and kept
	if got := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}); got != 0 || w.h.Get("Retry-After") != "12" || w.h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("refused: %v allocations per request (Retry-After %q, X-RateLimit-Remaining %q), want 0", got, w.h.Get("Retry-After"), w.h.Get("X-RateLimit-Remaining"))
	}
}
