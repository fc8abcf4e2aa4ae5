package concurrency_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/concurrency"
)

// TestEstimateHugeQueue holds MaxLimit units with two Acquire callers of
// MaxLimit queued behind them, so that the units to come back before a
// request fits (held+queued+n−Limit) and the units to come back before
// the limiter is empty (held+queued) are beyond a 32-bit int. Every
// estimate must be the exact one, computed here in int64: on GOARCH=386
// the sums wrapped (RetryAfter and ResetAfter came out at the 1ms floor,
// where 2ms and 3ms are right).
func TestEstimateHugeQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = concurrency.MaxLimit
		l, _ := mustNew(t, limit, "")
		require.True(t, l.Take(t0, limit).Allowed)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, b := goAcquire(l, ctx, limit), goAcquire(l, ctx, limit)
		require.False(t, a.returned() || b.returned(), "queued")
		require.Equal(t, 2, l.Waiting())

		// No sample yet: the hold estimate is its 1ms default.
		const hold = int64(time.Millisecond)
		queued := 2 * int64(limit)
		ceilDiv := func(x, y int64) int64 { return (x + y - 1) / y }
		for _, n := range []int{1, 2, limit / 2, limit - 1, limit} {
			k := int64(limit) + queued + int64(n) - int64(limit)
			want := time.Duration(ceilDiv(hold*k, int64(limit)))
			p, d := l.Peek(t0, n), l.Take(t0, n)
			require.Equal(t, p, d, "Peek and Take of %d", n)
			require.False(t, d.Allowed, "Take(%d)", n)
			require.Equal(t, want, d.RetryAfter, "RetryAfter of %d", n)
			require.Equal(t, time.Duration(hold*(int64(limit)+queued)/int64(limit)), d.ResetAfter, "ResetAfter of %d", n)
		}
		cancel()
		synctest.Wait()
		require.True(t, a.returned() && b.returned())
		require.Equal(t, 0, l.Waiting())
	})
}
