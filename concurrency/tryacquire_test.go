package concurrency_test

import (
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/concurrency"
)

// TestTryAcquire pins TryAcquire's answers: Take's Allowed, for every n,
// with units held, with an Acquire caller queued, and on the zero Limiter.
func TestTryAcquire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustNew(t, 3, "q")
		for _, step := range []struct {
			n    int
			want bool
			held int
		}{
			{0, true, 0}, {-1, false, 0}, {4, false, 0}, {math.MaxInt, false, 0}, {math.MinInt, false, 0},
			{2, true, 2}, {2, false, 2}, {math.MaxInt, false, 2}, {1, true, 3}, {1, false, 3}, {0, true, 3},
		} {
			require.Equal(t, step.want, l.TryAcquire(step.n), "TryAcquire(%d)", step.n)
			require.Equal(t, step.held, l.Held(), "after TryAcquire(%d)", step.n)
		}
		l.Release(1)
		// A queued Acquire is served first: TryAcquire denies, as Take does.
		a := goAcquire(l, t.Context(), 2)
		require.False(t, a.returned())
		require.False(t, l.TryAcquire(1), "a caller is queued")
		require.True(t, l.TryAcquire(0))
		l.Release(2)
		synctest.Wait()
		require.True(t, a.returned())
		require.NoError(t, a.err)
		a.release()
		require.Equal(t, 0, l.Held())
		require.Zero(t, l.RejectedReleases())

		// After Reconfigure the new Limit applies at once.
		require.NoError(t, l.Reconfigure(concurrency.Config{Limit: 1, Name: "q"}))
		require.False(t, l.TryAcquire(2))
		require.True(t, l.TryAcquire(1))
		require.False(t, l.TryAcquire(1))
	})

	var zero concurrency.Limiter
	require.True(t, zero.TryAcquire(0))
	require.False(t, zero.TryAcquire(1))
	require.True(t, zero.Idle(t0))
}

// TestTryAcquireSamplesEvery64Units: TryAcquire reads the Config's clock
// once per 64 units admitted, not per call, and a denial never reads it.
func TestTryAcquireSamplesEvery64Units(t *testing.T) {
	clk := &countingClock{}
	l, err := concurrency.New(concurrency.Config{Limit: 100, Clock: clk})
	require.NoError(t, err)
	clk.reads.Store(0) // New read it once, for the estimator's epoch
	for range 640 {
		require.True(t, l.TryAcquire(1))
		l.Release(1)
	}
	require.Equal(t, int64(10), clk.reads.Load())
	// 3 units at a time cross a multiple of 64 every 64 units too: units
	// 640+1..640+192 cross it at 704, 768, 832.
	for range 64 {
		require.True(t, l.TryAcquire(3))
		l.Release(3)
	}
	require.Equal(t, int64(13), clk.reads.Load())
	// A request of 64 units or more crosses one every time.
	require.True(t, l.TryAcquire(100))
	require.Equal(t, int64(14), clk.reads.Load())
	require.False(t, l.TryAcquire(1))
	require.Equal(t, int64(14), clk.reads.Load(), "a denial reads no clock")
}

// TestTryAcquireFeedsEstimate is TestEstimateTracksSteadyHolds with every
// admission a TryAcquire, timed only by the Config's clock: its samples
// alone bring the estimate to the true hold.
func TestTryAcquireFeedsEstimate(t *testing.T) {
	const limit, hold = 100, 10 * time.Second
	l, clk := mustNew(t, limit, "jobs")
	gap := hold / limit
	now := t0
	var starts []time.Time
	for i := 0; i < limit; i++ {
		clk.Set(now)
		require.True(t, l.TryAcquire(1))
		starts = append(starts, now)
		now = now.Add(gap)
	}
	for i := 0; i < 20*limit; i++ {
		now = starts[0].Add(hold)
		clk.Set(now)
		require.False(t, l.TryAcquire(1), "saturated")
		l.Release(1)
		starts = starts[1:]
		require.True(t, l.TryAcquire(1))
		starts = append(starts, now)
	}
	d := l.Peek(now, 1)
	require.False(t, d.Allowed)
	require.InEpsilon(t, float64(hold), float64(d.ResetAfter), 0.05, "ResetAfter %v", d.ResetAfter)
	require.InEpsilon(t, float64(gap), float64(d.RetryAfter), 0.05, "RetryAfter %v", d.RetryAfter)
}

func TestTryAcquireZeroAllocs(t *testing.T) {
	l, clk := mustNew(t, 100, "")
	allocs := testing.AllocsPerRun(1000, func() {
		clk.Add(time.Millisecond)
		if l.TryAcquire(1) {
			l.Release(1)
		}
		l.TryAcquire(1000)
	})
	require.Zero(t, allocs)
}
