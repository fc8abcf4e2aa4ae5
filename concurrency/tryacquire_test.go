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

// TestTryAcquireDuringReconfigure: TryAcquire and Release take their fast
// path on the Limit and gen packed beside the state word, which
// Reconfigure publishes before the CAS that puts the new configuration in
// effect. Run at that point, inside Reconfigure, they must still decide
// under the old Limit: TryAcquire neither admits over it nor refuses what
// it admits, and the Limit that Reconfigure then applies counts the units
// taken meanwhile.
func TestTryAcquireDuringReconfigure(t *testing.T) {
	for _, tc := range []struct {
		name        string
		from, to    int
		held        int
		during      bool // TryAcquire(1) inside Reconfigure
		after       bool // TryAcquire(1) once Reconfigure returns
		heldAtFinal int
	}{
		// Raising 3 -> 5 with 3 held: the old Limit 3 is full until the
		// CAS, then 2 more fit.
		{"raise", 3, 5, 3, false, true, 4},
		// Lowering 5 -> 3 with 3 held: the old Limit 5 admits one more,
		// which the new Limit 3 then counts (4 held, nothing fits).
		{"lower", 5, 3, 3, true, false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := concurrency.New(concurrency.Config{Limit: tc.from, Name: "a"})
			require.NoError(t, err)
			require.True(t, l.TryAcquire(tc.held))
			ran := false
			defer concurrency.SetReconfigureHook(func() {
				ran = true
				require.Equal(t, tc.during, l.Peek(t0, 1).Allowed, "Peek(1) during Reconfigure %d -> %d", tc.from, tc.to)
				require.Equal(t, tc.during, l.TryAcquire(1), "TryAcquire(1) during Reconfigure %d -> %d", tc.from, tc.to)
			})()
			require.NoError(t, l.Reconfigure(concurrency.Config{Limit: tc.to, Name: "b"}))
			require.True(t, ran, "the hook did not run")
			require.Equal(t, tc.after, l.TryAcquire(1), "TryAcquire(1) after Reconfigure")
			require.Equal(t, tc.heldAtFinal, l.Held())
			// Release's fast path under the new configuration, and its
			// refusal of more than is held.
			l.Release(tc.heldAtFinal + 1)
			require.Equal(t, uint64(1), l.RejectedReleases())
			l.Release(tc.heldAtFinal)
			require.Zero(t, l.Held())
			require.Equal(t, uint64(1), l.RejectedReleases())
		})
	}
}
