package concurrency_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/concurrency"
)

// TestZeroReconfiguredIsNew runs one script on a Limiter from New and on a
// zero Limiter given the same Config by Reconfigure, on one clock: a
// saturated limiter whose holders keep their unit 10s (as in
// TestEstimateTracksSteadyHolds), admitted by Take and by TryAcquire in
// turn. They must answer alike at every step and keep the same sampling
// schedule. The zero Limiter used to measure time from the zero time.Time,
// so that every time it was passed saturated to one instant: its
// estimator never sampled (RetryAfter stayed at the 1ms default) and,
// its next sample never ahead of that instant, every admission try-locked
// the sampler.
func TestZeroReconfiguredIsNew(t *testing.T) {
	const limit, hold = 20, 10 * time.Second
	clk := &testClock{}
	cfg := concurrency.Config{Limit: limit, Name: "jobs", Clock: clk}
	fresh, err := concurrency.New(cfg)
	require.NoError(t, err)
	var zero concurrency.Limiter
	require.NoError(t, zero.Reconfigure(cfg))
	both := []*concurrency.Limiter{fresh, &zero}

	take := func(at time.Time, try bool, want bool, step int) {
		t.Helper()
		clk.Set(at)
		for _, l := range both {
			if try {
				require.Equal(t, want, l.TryAcquire(1), "TryAcquire, step %d", step)
			} else {
				require.Equal(t, want, l.Take(at, 1).Allowed, "Take, step %d", step)
			}
		}
		require.Equal(t, fresh.Peek(at, 1), zero.Peek(at, 1), "step %d", step)
		require.Equal(t, fresh.NextSample(), zero.NextSample(), "the next sample, step %d", step)
	}
	gap := hold / limit
	now := t0
	var starts []time.Time
	for i := range limit {
		take(now, i%2 == 0, true, i)
		starts = append(starts, now)
		now = now.Add(gap)
	}
	for i := range 10 * limit {
		now = starts[0].Add(hold)
		take(now, i%2 == 0, false, limit+i)
		for _, l := range both {
			l.Release(1)
		}
		starts = starts[1:]
		take(now, i%2 == 1, true, limit+i)
		starts = append(starts, now)
	}
	d := zero.Peek(now, 1)
	require.Greater(t, d.ResetAfter, hold/2, "sampled: not the default 1ms hold")
}
