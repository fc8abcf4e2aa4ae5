package concurrency_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEstimateRecoversFromAFarTime: one Take stamped far in the future
// (year 9999, a clock set wrong once) must not stop the hold-time
// estimator for good. The limiter then sees steady 10s holds, as in
// TestEstimateTracksSteadyHolds, and its estimates must converge to them.
// The sampler spaced its next sample from the far time, so every later
// time was "too soon" and the estimate stayed at its default for the
// limiter's life.
func TestEstimateRecoversFromAFarTime(t *testing.T) {
	const limit, hold = 100, 10 * time.Second
	for _, far := range []time.Time{
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		t0.AddDate(1, 0, 0),
	} {
		l, _ := mustNew(t, limit, "jobs")
		require.True(t, l.Take(far, 1).Allowed)
		l.Release(1)
		gap := hold / limit
		now := t0
		var starts []time.Time
		for i := 0; i < limit; i++ {
			require.True(t, l.Take(now, 1).Allowed)
			starts = append(starts, now)
			now = now.Add(gap)
		}
		for i := 0; i < 20*limit; i++ {
			now = starts[0].Add(hold)
			require.False(t, l.Take(now, 1).Allowed, "saturated")
			l.Release(1)
			starts = starts[1:]
			require.True(t, l.Take(now, 1).Allowed)
			starts = append(starts, now)
		}
		d := l.Peek(now, 1)
		require.InEpsilon(t, float64(hold), float64(d.ResetAfter), 0.05, "after a Take at %v: ResetAfter %v", far, d.ResetAfter)
		require.InEpsilon(t, float64(gap), float64(d.RetryAfter), 0.05, "after a Take at %v: RetryAfter %v", far, d.RetryAfter)
	}
}
