package rolling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/rolling"
)

// TestRefundOfAnchoringTake is issue #16 item 2 for rolling: Take(t1, 9)
// opens the window at t1, one unit joins it at t1+39.7s, and the Take at t1
// is refunded (a TakeAll's rollback, say). Had it never happened, the unit
// at t1+39.7s would have opened the window, which would close at
// t1+1m39.7s; the limiter's window closed at t1+1m and at that instant it
// admitted 10 where the twin admits 9.
func TestRefundOfAnchoringTake(t *testing.T) {
	cfg := rolling.Config{Limit: 10, Window: time.Minute}
	l, twin := mustNew(t, cfg), mustNew(t, cfg)
	t1 := t0
	later := t1.Add(39700 * time.Millisecond)
	require.True(t, l.Take(t1, 9).Allowed)
	require.True(t, l.Take(later, 1).Allowed)
	require.True(t, twin.Take(later, 1).Allowed)
	l.Refund(t1, 9)

	for _, q := range []time.Duration{0, time.Second, 39700 * time.Millisecond, time.Minute - 1,
		time.Minute, time.Minute + 39700*time.Millisecond - 1, time.Minute + 39700*time.Millisecond, 2 * time.Minute} {
		now := t1.Add(q)
		got, want := capacity(l, now, 10), capacity(twin, now, 10)
		require.LessOrEqual(t, got, want, "at t1+%v", q)
	}
	// The refunded units came back: 9 more pass now, as in the twin.
	require.Equal(t, 9, capacity(l, later, 10))
}

// capacity is how many units l admits in one Take at now.
func capacity(l *rolling.Limiter, now time.Time, limit int) int {
	for n := limit; n > 0; n-- {
		if l.Peek(now, n).Allowed {
			return n
		}
	}
	return 0
}
