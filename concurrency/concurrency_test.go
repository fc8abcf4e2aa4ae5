package concurrency_test

import (
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

var t0 = conformance.DefaultStart

// testClock is a clock.Clock whose Now is set by the test. The Limiter
// reads only Now; any other method would panic on the nil embedded Clock.
// (clock.Mock's Set and Add sleep a real millisecond each, to let its
// timers' goroutines run, which makes thousands of them slow.)
type testClock struct {
	clock.Clock
	now atomic.Int64 // ns since t0
}

func (c *testClock) Now() time.Time                  { return t0.Add(time.Duration(c.now.Load())) }
func (c *testClock) Set(at time.Time)                { c.now.Store(int64(at.Sub(t0))) }
func (c *testClock) Add(d time.Duration)             { c.now.Add(int64(d)) }
func (c *testClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// mustNew returns a Limiter of limit units named name on a testClock set to
// t0, failing tb on error.
func mustNew(tb testing.TB, limit int, name string) (*concurrency.Limiter, *testClock) {
	tb.Helper()
	clk := &testClock{}
	l, err := concurrency.New(concurrency.Config{Limit: limit, Name: name, Clock: clk})
	require.NoError(tb, err)
	return l, clk
}

func TestConformance(t *testing.T) {
	for _, limit := range []int{2, 100, 500} { // 100 mutations, 500 queries (Sanity)
		t.Run("", func(t *testing.T) {
			conformance.Run(t, conformance.Subject{
				New: func(tb testing.TB) ratekit.Limiter {
					l, _ := mustNew(tb, limit, "dataset-mutations")
					return l
				},
				Capacity: limit,
				Policy:   "dataset-mutations",
				Holder:   true,
				WithClock: func(tb testing.TB, c clock.Clock) ratekit.Limiter {
					l, err := concurrency.New(concurrency.Config{Limit: limit, Name: "dataset-mutations", Clock: c})
					require.NoError(tb, err)
					return l
				},
				Reconfigure: func(l ratekit.Limiter, limit int) error {
					return l.(*concurrency.Limiter).Reconfigure(concurrency.Config{Limit: limit, Name: "dataset-mutations"})
				},
				Zero: func() ratekit.Limiter { return new(concurrency.Limiter) },
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []int{0, -1, math.MinInt}
	if concurrency.MaxLimit < math.MaxInt { // not on 32-bit platforms
		bad = append(bad, asInt(concurrency.MaxLimit+1), math.MaxInt)
	}
	for _, limit := range bad {
		_, err := concurrency.New(concurrency.Config{Limit: limit})
		require.ErrorIs(t, err, ratekit.ErrInvalidConfig, "Limit %d", limit)
	}
	for _, limit := range []int{1, concurrency.MaxLimit} {
		l, err := concurrency.New(concurrency.Config{Limit: limit})
		require.NoError(t, err)
		require.True(t, l.Take(t0, limit).Allowed)
		require.Equal(t, limit, l.Held())
	}
}

func TestZeroLimiterAdmitsNothing(t *testing.T) {
	var l concurrency.Limiter
	require.True(t, l.Take(t0, 0).Allowed)
	d := l.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.RetryAfter)
	require.True(t, l.Idle(t0))
}

// TestScript pins the decisions of a Limiter of 3 at fixed instants: no
// history (1ms hold), then a steady history.
func TestScript(t *testing.T) {
	l, _ := mustNew(t, 3, "q")
	const (
		ms = time.Millisecond
	)
	conformance.RunScript(t, l, t0, []conformance.Step{
		{At: 0, Op: conformance.OpPeek, N: 3, OK: true, Remaining: 0, ResetAfter: ms},
		{At: 0, Op: conformance.OpTake, N: 2, OK: true, Remaining: 1, ResetAfter: ms},
		// 1 held over the limit: one of 2 holders must go, hold·1/2 = 0.5ms,
		// floored at MinRetry.
		{At: 0, Op: conformance.OpTake, N: 2, OK: false, Remaining: 1, RetryAfter: ms, ResetAfter: ms},
		{At: 0, Op: conformance.OpTake, N: 1, OK: true, Remaining: 0, ResetAfter: ms},
		{At: 0, Op: conformance.OpTake, N: 4, OK: false, Remaining: 0, RetryAfter: ratekit.Never, ResetAfter: ms},
		{At: 0, Op: conformance.OpRefund, N: 3},
		{At: 0, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 3},
	})
}

// TestEstimateTracksSteadyHolds drives a saturated limiter whose holders
// each keep their unit exactly 10s, replacing each one as it leaves, and
// checks that the estimates converge: ResetAfter near 10s, and RetryAfter
// near 10s/limit for one unit.
func TestEstimateTracksSteadyHolds(t *testing.T) {
	const limit, hold = 100, 10 * time.Second
	l, _ := mustNew(t, limit, "jobs")
	// Holders start at an even spread, one every hold/limit.
	gap := hold / limit
	now := t0
	var starts []time.Time
	for i := 0; i < limit; i++ {
		require.True(t, l.Take(now, 1).Allowed)
		starts = append(starts, now)
		now = now.Add(gap)
	}
	// Run for 20 hold times: whenever the oldest holder's time is up it
	// releases, and a client that was denied takes its place.
	for i := 0; i < 20*limit; i++ {
		now = starts[0].Add(hold)
		require.False(t, l.Take(now, 1).Allowed, "saturated")
		l.Release(1)
		starts = starts[1:]
		require.True(t, l.Take(now, 1).Allowed)
		starts = append(starts, now)
	}
	d := l.Peek(now, 1)
	require.False(t, d.Allowed)
	require.InEpsilon(t, float64(hold), float64(d.ResetAfter), 0.05, "ResetAfter %v", d.ResetAfter)
	require.InEpsilon(t, float64(gap), float64(d.RetryAfter), 0.05, "RetryAfter %v", d.RetryAfter)
	// Five units must wait for five to leave.
	d5 := l.Peek(now, 5)
	require.InEpsilon(t, float64(5*gap), float64(d5.RetryAfter), 0.05, "RetryAfter(5) %v", d5.RetryAfter)
	// An idle hour changes nothing about the estimate.
	for range limit {
		l.Release(1)
	}
	later := now.Add(time.Hour)
	require.True(t, l.Take(later, limit).Allowed)
	require.InEpsilon(t, float64(hold), float64(l.Peek(later, 1).ResetAfter), 0.05)
}

// TestEstimateBounds checks that estimates stay positive and finite when
// time jumps: the zero time, far past and far future, backwards.
func TestEstimateBounds(t *testing.T) {
	l, _ := mustNew(t, 10, "")
	times := []time.Time{
		{}, t0, t0.Add(-100 * 365 * 24 * time.Hour), t0.Add(290 * 365 * 24 * time.Hour),
		t0.Add(time.Nanosecond), t0.Add(23 * time.Hour), t0.Add(47 * time.Hour), t0,
		time.Unix(math.MaxInt64, 999999999), time.Unix(math.MinInt64, 0),
	}
	for round := 0; round < 3; round++ {
		for _, at := range times {
			for i := 0; i < 9; i++ {
				require.True(t, l.Take(at, 1).Allowed)
			}
			d := l.Take(at, 2)
			require.False(t, d.Allowed)
			require.GreaterOrEqual(t, d.RetryAfter, ratekit.MinRetry)
			require.LessOrEqual(t, d.RetryAfter, 24*time.Hour)
			require.GreaterOrEqual(t, d.ResetAfter, ratekit.MinRetry)
			require.LessOrEqual(t, d.ResetAfter, 24*time.Hour)
			l.Release(9)
		}
	}
}

// TestReleaseMisuseChangesNothing: releasing more than is held, twice, or
// a negative count is refused without a panic, changes nothing and is
// counted.
func TestReleaseMisuseChangesNothing(t *testing.T) {
	l, _ := mustNew(t, 5, "")
	require.True(t, l.Take(t0, 3).Allowed)
	before := l.Peek(t0, 1)
	l.Release(5)
	l.Release(-1)
	l.Refund(t0, 4)
	require.Equal(t, before, l.Peek(t0, 1), "a refused Release changes nothing")
	require.Equal(t, 3, l.Held())
	require.Equal(t, uint64(3), l.RejectedReleases())
	l.Release(0)
	l.Release(3)
	l.Release(3) // a second release
	require.Equal(t, uint64(4), l.RejectedReleases())
	require.True(t, l.Idle(t0))
	require.True(t, l.Take(t0, 5).Allowed, "the limiter still admits its Limit")
	require.False(t, l.Take(t0, 1).Allowed)
}

func TestReconfigureLowerAppliesToHeld(t *testing.T) {
	l, mock := mustNew(t, 10, "old")
	require.True(t, l.Take(t0, 8).Allowed)
	require.ErrorIs(t, l.Reconfigure(concurrency.Config{Limit: 0}), ratekit.ErrInvalidConfig)
	require.NoError(t, l.Reconfigure(concurrency.Config{Limit: 5, Name: "new", Clock: mock}))
	d := l.Take(t0, 1)
	require.False(t, d.Allowed, "8 held over a limit of 5")
	require.Equal(t, 5, d.Limit)
	require.Equal(t, "new", d.Policy)
	require.Zero(t, d.Remaining)
	require.Equal(t, ratekit.Never, l.Take(t0, 6).RetryAfter)
	l.Release(3)
	require.False(t, l.Take(t0, 1).Allowed, "5 held: still full")
	l.Release(1)
	require.True(t, l.Take(t0, 1).Allowed)
	require.NoError(t, l.Reconfigure(concurrency.Config{Limit: 7, Name: "new", Clock: mock}))
	require.Equal(t, 2, l.Peek(t0, 0).Remaining)
}

func TestAllowUsesClock(t *testing.T) {
	l, mock := mustNew(t, 4, "")
	require.True(t, l.Allow())
	require.True(t, l.AllowN(3))
	require.False(t, l.Allow())
	// The first admission, at t0, opened an interval leaving 1 held; the
	// next that samples comes 1s later on the mock clock and finds 2 held:
	// min(1, 2)·1s over the 4 units admitted since (3 at t0 that did not
	// sample, 1 now) is a 250ms hold.
	l.Release(2)
	mock.Add(time.Second)
	require.True(t, l.Allow())
	require.Equal(t, 250*time.Millisecond, l.Peek(mock.Now(), 1).ResetAfter)
}

func TestMarshalKeepsEstimateNotHeld(t *testing.T) {
	l, _ := mustNew(t, 4, "")
	require.True(t, l.Take(t0, 4).Allowed)
	l.Release(1)
	require.True(t, l.Take(t0.Add(time.Second), 1).Allowed) // samples 3·1s/1 = 3s
	b, err := l.MarshalBinary()
	require.NoError(t, err)

	r, _ := mustNew(t, 4, "")
	require.NoError(t, r.UnmarshalBinary(b))
	require.Zero(t, r.Held(), "held units are not restored")
	require.True(t, r.Take(t0, 4).Allowed)
	require.Equal(t, 3*time.Second, r.Peek(t0, 1).ResetAfter, "the estimate is")

	for name, bad := range map[string][]byte{
		"over 24h":       append(b[:4:4], 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
		"other alg":      {'r', 'k', 1, 1, 0},
		"future version": {'r', 'k', 6, 2, 0},
	} {
		err := r.UnmarshalBinary(bad)
		require.ErrorIs(t, err, ratekit.ErrInvalidState, name)
	}
	require.Equal(t, 3*time.Second, r.Peek(t0, 1).ResetAfter, "rejected states change nothing")
}

func TestAllOfRateAndConcurrency(t *testing.T) {
	conc, _ := mustNew(t, 2, "concurrent")
	rate, err := slidingwindow.NewLog(slidingwindow.Config{Limit: 3, Window: time.Second, Name: "per-second"})
	require.NoError(t, err)
	all := ratekit.AllOf(rate, conc)
	require.True(t, all.Take(t0, 1).Allowed)
	require.True(t, all.Take(t0, 1).Allowed)
	d := all.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, "concurrent", d.Policy)
	require.Equal(t, 1, rate.Peek(t0, 0).Remaining, "the denied request did not count against the rate")
	all.Release(1)
	require.Equal(t, 1, conc.Held())
	require.True(t, all.Take(t0, 1).Allowed)
	d = all.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, "per-second", d.Policy, "the longest RetryAfter binds")
	require.Equal(t, 2, conc.Held(), "the rate denial rolled back the concurrency unit")
	require.False(t, errors.Is(nil, ratekit.ErrExceedsLimit))
}

func TestZeroAllocs(t *testing.T) {
	l, _ := mustNew(t, 100, "")
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond) // samples every time
		if l.Take(now, 1).Allowed {
			l.Release(1)
		}
		l.Peek(now, 2)
		l.Refund(now, 0)
	})
	require.Zero(t, allocs)
	require.True(t, l.Take(now, 100).Allowed)
	allocs = testing.AllocsPerRun(1000, func() { l.Take(now, 3) })
	require.Zero(t, allocs, "a denial")
}
