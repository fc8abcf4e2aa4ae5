package httplimit_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// TestOnLimitReachedAtEpisodeEnd: a key whose limit is reached again in the
// window that opens at the very instant the last one closed (a burst at the
// top of the minute, or at a rolling window's end) is in a new episode and
// is noticed again. The notifier kept each episode a millisecond past its
// end, so such a refusal went unnoticed, and under steady traffic every
// other window's notice was lost.
func TestOnLimitReachedAtEpisodeEnd(t *testing.T) {
	for _, start := range []time.Time{t0.Truncate(time.Minute), t0, t0.Add(time.Nanosecond), t0.Add(999 * time.Microsecond)} {
		clk := mockAt(start)
		l := newWindow("token", 1, time.Minute)
		var notices atomic.Int64
		h := mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{{Name: "token", Limiter: httplimit.Shared(l)}},
			Clock: clk,
			OnLimitReached: func(string, string, ratekit.Decision) {
				notices.Add(1)
			},
		}).Wrap(ok)
		for w := range 4 {
			// The first window may be partly over; every later one is
			// reached in its first instant.
			if c := serve(h, newReq("192.0.2.1:1")).Code; c != http.StatusOK {
				t.Fatalf("start %v, window %d: first request %d", start, w, c)
			}
			serve(h, newReq("192.0.2.1:1"))
			d := l.Peek(clk.Now(), 1)
			clk.Add(d.RetryAfter) // to the instant the window closes
			if got := notices.Load(); got != int64(w+1) {
				t.Fatalf("start %v: %d notices after %d windows each reached its limit", start, got, w+1)
			}
		}
	}
}
