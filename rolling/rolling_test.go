package rolling_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
)

var t0 = conformance.DefaultStart

// mustNew returns a Limiter for cfg or fails the test.
func mustNew(tb testing.TB, cfg rolling.Config) *rolling.Limiter {
	tb.Helper()
	l, err := rolling.New(cfg)
	require.NoError(tb, err)
	return l
}

// reconfigureLimit is a conformance Subject's Reconfigure: cfg with the
// given Limit.
func reconfigureLimit(cfg rolling.Config) func(ratekit.Limiter, int) error {
	return func(l ratekit.Limiter, limit int) error {
		c := cfg // a copy: the suite calls this from several goroutines at once
		c.Limit = limit
		return l.(*rolling.Limiter).Reconfigure(c)
	}
}

// reconfigureWindow is a conformance Subject's ReconfigureWindow: cfg with
// the given Window, read at now (rolling windows are not aligned: shift
// is ignored).
func reconfigureWindow(cfg rolling.Config) func(ratekit.Limiter, time.Duration, time.Duration, time.Time) error {
	return func(l ratekit.Limiter, window, _ time.Duration, now time.Time) error {
		c := cfg
		c.Window, c.Clock = window, mockAt(now)
		return l.(*rolling.Limiter).Reconfigure(c)
	}
}

// mockAt returns a mock clock stopped at now.
func mockAt(now time.Time) *clock.Mock {
	m := clock.NewMock()
	m.Set(now)
	return m
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		window time.Duration
	}{
		{"10PerMinute", 10, time.Minute},
		{"5PerSecond", 5, time.Second},
		{"1000Per30Days", 1000, 30 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conformance.Run(t, conformance.Subject{
				New: func(tb testing.TB) ratekit.Limiter {
					return mustNew(tb, rolling.Config{Limit: tc.limit, Window: tc.window, Name: "api"})
				},
				Capacity:          tc.limit,
				Policy:            "api",
				Reconfigure:       reconfigureLimit(rolling.Config{Limit: tc.limit, Window: tc.window, Name: "api"}),
				ReconfigureWindow: reconfigureWindow(rolling.Config{Limit: tc.limit, Window: tc.window, Name: "api"}),
				Anchored:          true,
				NewWithHook: func(tb testing.TB, hook func(ratekit.Decision)) ratekit.Limiter {
					return mustNew(tb, rolling.Config{Limit: tc.limit, Window: tc.window, Name: "api", OnLimitReached: hook})
				},
				WithClock: func(tb testing.TB, c clock.Clock) ratekit.Limiter {
					return mustNew(tb, rolling.Config{Limit: tc.limit, Window: tc.window, Name: "api", Clock: c})
				},
				Zero: func() ratekit.Limiter { return new(rolling.Limiter) },
			})
		})
	}
}

func TestConformanceWithHook(t *testing.T) {
	// A hooked limiter writes the notified mark on the first denial; the
	// suite's "a denial changes no state" holds for every decision.
	conformance.Run(t, conformance.Subject{
		New: func(tb testing.TB) ratekit.Limiter {
			return mustNew(tb, rolling.Config{Limit: 4, Window: time.Hour, Name: "h", OnLimitReached: func(ratekit.Decision) {}})
		},
		Capacity:          4,
		Policy:            "h",
		Reconfigure:       reconfigureLimit(rolling.Config{Limit: 4, Window: time.Hour, Name: "h", OnLimitReached: func(ratekit.Decision) {}}),
		ReconfigureWindow: reconfigureWindow(rolling.Config{Limit: 4, Window: time.Hour, Name: "h", OnLimitReached: func(ratekit.Decision) {}}),
		Anchored:          true,
		WithClock: func(tb testing.TB, c clock.Clock) ratekit.Limiter {
			return mustNew(tb, rolling.Config{Limit: 4, Window: time.Hour, Name: "h", OnLimitReached: func(ratekit.Decision) {}, Clock: c})
		},
		Zero: func() ratekit.Limiter { return new(rolling.Limiter) },
	})
}

func TestScript(t *testing.T) {
	// 3 per 10s. The first event at +1s opens [1s, 11s); the next event
	// after 11s opens the next window at its own time, not at 11s.
	l := mustNew(t, rolling.Config{Limit: 3, Window: 10 * time.Second})
	s := time.Second
	conformance.RunScript(t, l, t0, []conformance.Step{
		{At: 0, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 3, ResetAfter: 0},
		{At: 0, Op: conformance.OpTake, N: 0, OK: true, Remaining: 3, ResetAfter: 0},
		{At: 1 * s, Op: conformance.OpTake, N: 1, OK: true, Remaining: 2, ResetAfter: 10 * s},
		{At: 4 * s, Op: conformance.OpTake, N: 2, OK: true, Remaining: 0, ResetAfter: 7 * s},
		{At: 5 * s, Op: conformance.OpTake, N: 1, OK: false, Remaining: 0, RetryAfter: 6 * s, ResetAfter: 6 * s},
		{At: 5 * s, Op: conformance.OpTake, N: 4, OK: false, Remaining: 0, RetryAfter: ratekit.Never, ResetAfter: 6 * s},
		{At: 11*s - 1, Op: conformance.OpTake, N: 1, OK: false, Remaining: 0, RetryAfter: 1, ResetAfter: 1},
		// The window closes at exactly 11s; nothing opens it until an event.
		{At: 11 * s, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 3, ResetAfter: 0},
		{At: 25 * s, Op: conformance.OpTake, N: 3, OK: true, Remaining: 0, ResetAfter: 10 * s},
		{At: 34 * s, Op: conformance.OpTake, N: 1, OK: false, Remaining: 0, RetryAfter: 1 * s, ResetAfter: 1 * s},
		// Refund within the window gives back; outside it does nothing.
		{At: 30 * s, Op: conformance.OpRefund, N: 1},
		{At: 20 * s, Op: conformance.OpRefund, N: 1},
		{At: 35 * s, Op: conformance.OpRefund, N: 1},
		{At: 34 * s, Op: conformance.OpTake, N: 1, OK: true, Remaining: 0, ResetAfter: 1 * s},
		{At: 35 * s, Op: conformance.OpTake, N: 1, OK: true, Remaining: 2, ResetAfter: 10 * s},
	})
}

func TestConfigValidate(t *testing.T) {
	bad := []rolling.Config{
		{},
		{Limit: 0, Window: time.Second},
		{Limit: -1, Window: time.Second},
		{Limit: 1, Window: 0},
		{Limit: 1, Window: -time.Second},
	}
	if math.MaxInt > rolling.MaxLimit { // 64-bit: an int can exceed MaxLimit
		bad = append(bad,
			rolling.Config{Limit: wide(rolling.MaxLimit + 1), Window: time.Second},
			rolling.Config{Limit: math.MaxInt, Window: time.Second})
	}
	for _, cfg := range bad {
		require.ErrorIs(t, cfg.Validate(), ratekit.ErrInvalidConfig, "%+v", cfg)
		l, err := rolling.New(cfg)
		require.ErrorIs(t, err, ratekit.ErrInvalidConfig, "%+v", cfg)
		require.Nil(t, l)
	}
	for _, cfg := range []rolling.Config{
		{Limit: 1, Window: 1},
		{Limit: wide(rolling.MaxLimit), Window: 30 * 24 * time.Hour},
		{Limit: 1, Window: math.MaxInt64},
	} {
		require.NoError(t, cfg.Validate(), "%+v", cfg)
	}
}

func TestZeroAndDeniedTakesOpenNoWindow(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 2, Window: time.Minute})
	require.True(t, l.Take(t0, 0).Allowed)
	require.True(t, l.Idle(t0), "n == 0 opened a window")
	require.False(t, l.Take(t0, 3).Allowed)
	require.False(t, l.Take(t0, -1).Allowed)
	require.True(t, l.Idle(t0), "an impossible request opened a window")

	// The window opens at the first unit, 30s later, not at the Take(0).
	d := l.Take(t0.Add(30*time.Second), 1)
	require.Equal(t, time.Minute, d.ResetAfter)
}

func TestStaleTakeCountsIntoOpenWindow(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 3, Window: time.Minute})
	require.True(t, l.Take(t0, 1).Allowed)
	// Stamped 5s before the window's start: counted into it, never into a
	// window of its own; its ResetAfter is measured from its own stamp.
	d := l.Take(t0.Add(-5*time.Second), 1)
	require.True(t, d.Allowed)
	require.Equal(t, 1, d.Remaining)
	require.Equal(t, 65*time.Second, d.ResetAfter)
	require.True(t, l.Take(t0.Add(-time.Hour), 1).Allowed)
	d = l.Take(time.Time{}, 1)
	require.False(t, d.Allowed, "the zero time must not open a window of its own")
	require.Less(t, d.RetryAfter, ratekit.Never, "a finite wait, not Never")
	// A stale Take's refund is not accepted (errs toward admitting less).
	l.Refund(t0.Add(-5*time.Second), 1)
	require.False(t, l.Peek(t0, 1).Allowed)
}

func TestRefundToZeroClosesWindow(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 5, Window: time.Minute})
	require.True(t, l.Take(t0, 2).Allowed)
	l.Refund(t0.Add(time.Second), 1)
	require.False(t, l.Idle(t0.Add(time.Second)))
	l.Refund(t0.Add(2*time.Second), 10) // more than taken: stops at zero
	require.True(t, l.Idle(t0.Add(2*time.Second)), "every unit given back: no window")
	// The next event opens a fresh window at its own time.
	d := l.Take(t0.Add(50*time.Second), 5)
	require.True(t, d.Allowed)
	require.Equal(t, time.Minute, d.ResetAfter)
	require.False(t, l.Peek(t0.Add(100*time.Second), 1).Allowed, "the new window runs to +110s")
}

func TestLargeCounts(t *testing.T) {
	// 30 days at 1000 events/s is 2.6e9; counts up to 1<<40 and beyond are
	// exact (on 32-bit platforms, up to math.MaxInt).
	big := wide(1 << 40)
	l := mustNew(t, rolling.Config{Limit: big, Window: 30 * 24 * time.Hour})
	require.True(t, l.Take(t0, big-1).Allowed)
	d := l.Take(t0.Add(29*24*time.Hour), 1)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, 24*time.Hour, d.ResetAfter)
	require.False(t, l.Take(t0.Add(30*24*time.Hour-1), 1).Allowed)
	require.True(t, l.Take(t0.Add(30*24*time.Hour), big).Allowed)

	maxLimit := wide(rolling.MaxLimit)
	m := mustNew(t, rolling.Config{Limit: maxLimit, Window: time.Second})
	for i := 0; i < 100; i++ { // every window outside the cell's reach
		now := t0.Add(time.Duration(i) * 1500 * time.Millisecond)
		require.True(t, m.Take(now, maxLimit).Allowed, "window %d", i)
		require.False(t, m.Take(now.Add(999*time.Millisecond), 1).Allowed, "window %d", i)
	}
}

func TestCenturiesApart(t *testing.T) {
	// Times far from the epoch (the zero time saturates at -292 years) and
	// windows opened centuries apart never panic, overflow or over-admit.
	l := mustNew(t, rolling.Config{Limit: 2, Window: 30 * 24 * time.Hour})
	times := []time.Time{
		time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, now := range times {
		require.True(t, l.Take(now, 2).Allowed, "%v", now)
		d := l.Take(now, 1)
		require.False(t, d.Allowed, "%v", now)
		require.Positive(t, d.RetryAfter)
		require.Less(t, d.RetryAfter, ratekit.Never)
		b, err := l.MarshalBinary()
		require.NoError(t, err)
		require.NoError(t, mustNew(t, rolling.Config{Limit: 2, Window: time.Hour}).UnmarshalBinary(b))
	}
	// More than 292 years from the epoch, where time.Time.Sub saturates,
	// time still moves: the window opened in 9999 closes 30 days on, and
	// is open a nanosecond before.
	require.False(t, l.Take(times[3].Add(30*24*time.Hour-1), 1).Allowed)
	require.True(t, l.Take(times[3].Add(30*24*time.Hour), 2).Allowed)
}

func TestLongestWindow(t *testing.T) {
	// A window of 292 years: a denial still waits a finite time, never Never,
	// which is for requests that can never be admitted.
	l := mustNew(t, rolling.Config{Limit: 1, Window: math.MaxInt64})
	d := l.Take(t0, 1)
	require.True(t, d.Allowed)
	require.Less(t, d.ResetAfter, ratekit.Never)
	d = l.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never-1, d.RetryAfter)
	d = l.Take(t0.Add(-time.Hour), 1) // stale: start+window-now exceeds int64
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never-1, d.RetryAfter)
	require.Equal(t, ratekit.Never-1, l.Take(time.Time{}, 1).RetryAfter)
}

func TestOnLimitReachedOncePerWindow(t *testing.T) {
	var got []ratekit.Decision
	l := mustNew(t, rolling.Config{Limit: 2, Window: time.Minute, Name: "min",
		OnLimitReached: func(d ratekit.Decision) { got = append(got, d) }})
	require.True(t, l.Take(t0, 2).Allowed)
	l.Peek(t0, 1)
	l.Take(t0, 3) // can never be admitted: not "limit reached"
	require.Empty(t, got, "Peek and impossible requests do not notify")
	for i := 0; i < 5; i++ {
		require.False(t, l.Take(t0.Add(time.Duration(i)*time.Second), 1).Allowed)
	}
	require.Len(t, got, 1)
	require.Equal(t, ratekit.Decision{Limit: 2, Window: time.Minute, ResetAfter: time.Minute,
		RetryAfter: time.Minute, Policy: "min"}, got[0])

	// A refund makes room; a later denial in the same window does not notify again.
	l.Refund(t0, 1)
	require.True(t, l.Take(t0.Add(10*time.Second), 1).Allowed)
	require.False(t, l.Take(t0.Add(10*time.Second), 1).Allowed)
	require.Len(t, got, 1)

	// The next window notifies again.
	require.True(t, l.Take(t0.Add(2*time.Minute), 2).Allowed)
	require.False(t, l.Take(t0.Add(2*time.Minute), 1).Allowed)
	require.Len(t, got, 2)
}

func TestReconfigure(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 10, Window: time.Hour, Name: "a"})
	require.True(t, l.Take(t0, 6).Allowed)

	// A lower Limit applies to what the open window has taken.
	require.NoError(t, l.Reconfigure(rolling.Config{Limit: 5, Window: time.Hour, Name: "b"}))
	d := l.Take(t0.Add(time.Minute), 1)
	require.False(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, "b", d.Policy)
	require.Equal(t, 59*time.Minute, d.RetryAfter, "the window keeps its start")

	// A longer Window moves the open window's end.
	require.NoError(t, l.Reconfigure(rolling.Config{Limit: 8, Window: 2 * time.Hour}))
	d = l.Take(t0.Add(time.Minute), 2)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, 119*time.Minute, d.ResetAfter)

	// A shorter Window, closed at the instant of the change: the units,
	// which may all have been taken then, count for the new Window from it.
	require.NoError(t, l.Reconfigure(rolling.Config{Limit: 8, Window: 30 * time.Second, Clock: mockAt(t0.Add(time.Minute))}))
	require.False(t, l.Idle(t0.Add(time.Minute)))
	d = l.Peek(t0.Add(time.Minute), 1)
	require.False(t, d.Allowed)
	require.Equal(t, 30*time.Second, d.RetryAfter)
	require.True(t, l.Take(t0.Add(time.Minute+30*time.Second), 8).Allowed)

	// A bad Config changes nothing.
	before := l.Peek(t0.Add(time.Minute), 1)
	require.ErrorIs(t, l.Reconfigure(rolling.Config{Limit: 0, Window: time.Second}), ratekit.ErrInvalidConfig)
	require.Equal(t, before, l.Peek(t0.Add(time.Minute), 1))
}

func TestReconfigureRaisesLimitPastCountWidth(t *testing.T) {
	// The count field widens with the Limit; an open window carries over.
	l := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
	require.True(t, l.Take(t0, 3).Allowed)
	big := wide(1 << 40)
	require.NoError(t, l.Reconfigure(rolling.Config{Limit: big, Window: time.Hour}))
	d := l.Take(t0.Add(time.Second), big-3)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.NoError(t, l.Reconfigure(rolling.Config{Limit: 2, Window: time.Hour}))
	d = l.Peek(t0.Add(time.Second), 1)
	require.False(t, d.Allowed)
	l.Refund(t0.Add(time.Second), big-1)
	require.True(t, l.Take(t0.Add(time.Second), 1).Allowed, "count 1 of 2 after the refund")
}

func TestMarshalSurvivesRestart(t *testing.T) {
	// A 30-day quota half used survives a restart; downtime counts.
	cfg := rolling.Config{Limit: 1000, Window: 30 * 24 * time.Hour, Name: "month"}
	before := mustNew(t, cfg)
	require.True(t, before.Take(t0, 600).Allowed)
	b, err := before.MarshalBinary()
	require.NoError(t, err)

	after := mustNew(t, cfg)
	require.NoError(t, after.UnmarshalBinary(b))
	later := t0.Add(10 * 24 * time.Hour) // ten days of downtime
	d := after.Take(later, 400)
	require.True(t, d.Allowed)
	require.Equal(t, 20*24*time.Hour, d.ResetAfter)
	require.False(t, after.Take(later, 1).Allowed)

	// Downtime longer than the window: no window is open.
	again := mustNew(t, cfg)
	require.NoError(t, again.UnmarshalBinary(b))
	require.True(t, again.Idle(t0.Add(31*24*time.Hour)))
	require.True(t, again.Take(t0.Add(31*24*time.Hour), 1000).Allowed)
}

func TestMarshalWallClock(t *testing.T) {
	// Times from time.Now carry a monotonic reading; the saved start is
	// still the wall-clock instant, read back by a limiter with another epoch.
	l := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
	now := time.Now()
	require.True(t, l.Take(now, 3).Allowed)
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	r := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
	require.NoError(t, r.UnmarshalBinary(b))
	wall := now.Round(0).Add(30 * time.Minute) // no monotonic reading
	d := r.Peek(wall, 1)
	require.False(t, d.Allowed)
	require.InDelta(t, float64(30*time.Minute), float64(d.RetryAfter), float64(time.Millisecond))
}

func TestUnmarshalRejectsOutOfRange(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
	good, err := l.MarshalBinary()
	require.NoError(t, err)
	hdr := good[:4]
	for name, payload := range map[string][]byte{
		"count above MaxLimit":      {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00, 0x00}, // 2^49
		"unknown flags":             {0x01, 0x00, 0x02},
		"start without window":      {0x00, 0x02, 0x00},
		"flags without window":      {0x00, 0x00, 0x01},
		"overlong varint":           {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00},
		"missing the last field":    {0x01, 0x00},
		"an extra field at the end": {0x01, 0x00, 0x00, 0x00},
	} {
		err := l.UnmarshalBinary(append(append([]byte(nil), hdr...), payload...))
		require.ErrorIs(t, err, ratekit.ErrInvalidState, name)
	}
	require.True(t, l.Idle(t0))
}

func TestConvenienceMethodsUseTheClock(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	l := mustNew(t, rolling.Config{Limit: 2, Window: time.Minute, Clock: mock})
	require.True(t, l.Allow())
	require.True(t, l.AllowN(1))
	require.False(t, l.Allow())
	require.False(t, l.AllowN(3))
	mock.Add(time.Minute)
	require.True(t, l.AllowN(2), "the window closed on the mock clock")
}

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Inside the bubble the real clock (Config.Clock nil) is fake time.
		l := mustNew(t, rolling.Config{Limit: 2, Window: time.Minute})
		start := time.Now()
		d, err := l.Wait(t.Context(), 2)
		require.NoError(t, err)
		require.Equal(t, time.Minute, d.ResetAfter)

		time.Sleep(15 * time.Second) // fake time: moves the bubble's clock
		d, err = l.Wait(t.Context(), 1)
		require.NoError(t, err, "waits until the window closes, then opens the next")
		require.True(t, d.Allowed)
		require.Equal(t, time.Minute, time.Since(start))

		_, err = l.Wait(t.Context(), 3)
		require.ErrorIs(t, err, ratekit.ErrExceedsLimit)

		require.True(t, l.Take(time.Now(), 1).Allowed)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err = l.Wait(ctx, 1)
		require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
		require.Equal(t, time.Minute, time.Since(start), "returned at once")
	})
}

func TestHotPathsAllocateNothing(t *testing.T) {
	// Adding, denying, refunding and opening windows within reach of the
	// current cell: no allocation.
	l := mustNew(t, rolling.Config{Limit: 1000, Window: time.Second,
		OnLimitReached: func(ratekit.Decision) {}})
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(100 * time.Millisecond)
		l.Take(now, 400)
		l.Peek(now, 1)
		l.Refund(now, 1)
		l.Idle(now)
	})
	require.Zero(t, allocs)
}
