package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// capacityAt is how many units l admits in one Take at now.
func capacityAt(l ratekit.Limiter, now time.Time, limit int) int {
	for n := limit; n > 0; n-- {
		if l.Peek(now, n).Allowed {
			return n
		}
	}
	return 0
}

// refundedHistory runs a history of issue #16 item 2 that conformance's
// RefundInterleaved found: 22 units at t1-1.416s, a Take of 19 at t1 that
// is refunded, and returns the limiter and a twin that never saw the
// refunded Take.
func refundedHistory(t *testing.T, mk func() ratekit.Limiter) (l, twin ratekit.Limiter) {
	t.Helper()
	t1 := t0
	l, twin = mk(), mk()
	for _, x := range []ratekit.Limiter{l, twin} {
		require.True(t, x.Take(t1.Add(-1416*time.Millisecond), 22).Allowed)
	}
	require.True(t, l.Take(t1, 19).Allowed)
	l.Refund(t1, 19)
	return l, twin
}

// TestLogRefundStaleInstant: the refunded Take at t1 moved the log's
// clock to t1, and a stale time was judged at that clock, where the 22
// units had expired: at t1-3s the log admitted 25 where its twin admits 3.
// A stale time is judged by itself now.
func TestLogRefundStaleInstant(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 25, Window: time.Second}
	l, twin := refundedHistory(t, func() ratekit.Limiter { return mustLog(t, cfg) })
	for _, q := range []time.Duration{-3 * time.Second, -2 * time.Second, -1416 * time.Millisecond, -time.Second / 2, 0, time.Second} {
		now := t0.Add(q)
		require.LessOrEqual(t, capacityAt(l, now, 25), capacityAt(twin, now, 25), "at t1%v", q)
	}
}

// TestCounterRefundStaleInstant is TestLogRefundStaleInstant for the
// Counter, whose stale times were judged at the start of its current
// fixed window.
func TestCounterRefundStaleInstant(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 25, Window: time.Second}
	l, twin := refundedHistory(t, func() ratekit.Limiter { return mustCounter(t, cfg) })
	for _, q := range []time.Duration{-3 * time.Second, -2 * time.Second, -1416 * time.Millisecond, -time.Second / 2, 0, time.Second} {
		now := t0.Add(q)
		require.LessOrEqual(t, capacityAt(l, now, 25), capacityAt(twin, now, 25), "at t1%v", q)
	}
}
