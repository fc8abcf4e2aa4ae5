package fixedwindow_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
)

// t0 is 2026-03-18 13:01:07.25 UTC, a Wednesday: 52.75s before the next
// minute, 10h58m52.75s before midnight UTC.
var t0 = conformance.DefaultStart

// atT0 is a mock clock stopped at t0, shared by the limiters that do not
// move time (clock.Mock.Set sleeps a millisecond, too slow to call per
// limiter in the conformance suite).
var atT0 = func() *clock.Mock {
	mock := clock.NewMock()
	mock.Set(t0)
	return mock
}()

// mustNew returns a limiter for cfg. Unless cfg sets a Clock, its epoch is
// placed at t0 by a mock clock, so tests do not depend on today's date.
func mustNew(tb testing.TB, cfg fixedwindow.Config) *fixedwindow.Limiter {
	tb.Helper()
	if cfg.Clock == nil {
		cfg.Clock = atT0
	}
	l, err := fixedwindow.New(cfg)
	require.NoError(tb, err)
	return l
}

// reconfigureLimit is a conformance Subject's Reconfigure: cfg with the
// given Limit.
func reconfigureLimit(cfg fixedwindow.Config) func(ratekit.Limiter, int) error {
	return func(l ratekit.Limiter, limit int) error {
		c := cfg // a copy: the suite calls this from several goroutines at once
		c.Limit = limit
		return l.(*fixedwindow.Limiter).Reconfigure(c)
	}
}

// reconfigureWindow is a conformance Subject's ReconfigureWindow: cfg with
// the given Window, its Offset moved by shift, read at now.
func reconfigureWindow(cfg fixedwindow.Config) func(ratekit.Limiter, time.Duration, time.Duration, time.Time) error {
	return func(l ratekit.Limiter, window, shift time.Duration, now time.Time) error {
		c := cfg
		c.Window, c.Offset, c.Clock = window, cfg.Offset+shift, mockAt(now)
		return l.(*fixedwindow.Limiter).Reconfigure(c)
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
		name string
		cfg  fixedwindow.Config
	}{
		{"60PerMinute", fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "api"}},
		// Offset -250ms starts the windows at .250, where t0 is.
		{"2PerSecondOffset", fixedwindow.Config{Limit: 2, Window: time.Second, Offset: -250 * time.Millisecond}},
		// Days from midnight in New York (UTC-5).
		{"10PerDayWithHook", fixedwindow.Config{Limit: 10, Window: 24 * time.Hour, Offset: -5 * time.Hour,
			Name: "daily", OnLimitReached: func(ratekit.Decision) {}}},
		{"RealClockEpoch", fixedwindow.Config{Limit: 5, Window: 30 * 24 * time.Hour, Clock: clock.New()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := conformance.Subject{
				New:               func(tb testing.TB) ratekit.Limiter { return mustNew(tb, tc.cfg) },
				Capacity:          tc.cfg.Limit,
				Policy:            tc.cfg.Name,
				Reconfigure:       reconfigureLimit(tc.cfg),
				ReconfigureWindow: reconfigureWindow(tc.cfg),
				NewWithHook: func(tb testing.TB, hook func(ratekit.Decision)) ratekit.Limiter {
					c := tc.cfg
					c.OnLimitReached = hook
					return mustNew(tb, c)
				},
				WithClock: func(tb testing.TB, c clock.Clock) ratekit.Limiter { return mustNew(tb, withClock(tc.cfg, c)) },
				Zero:      func() ratekit.Limiter { return new(fixedwindow.Limiter) },
			}
			conformance.Run(t, s)
		})
	}
}

// Sender: 60 requests per minute, the window resets at :00.
func TestScriptSenderPerMinute(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "sender"})
	const toMinute = 52750 * time.Millisecond // t0 to 13:02:00
	s := time.Second
	conformance.RunScript(t, l, t0, []conformance.Step{
		{At: 0, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 60},
		{At: 0, Op: conformance.OpTake, N: 1, OK: true, Remaining: 59, ResetAfter: toMinute},
		{At: 10 * s, Op: conformance.OpTake, N: 59, OK: true, Remaining: 0, ResetAfter: toMinute - 10*s},
		{At: 20 * s, Op: conformance.OpTake, N: 1, Remaining: 0, RetryAfter: toMinute - 20*s, ResetAfter: toMinute - 20*s},
		{At: 20 * s, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 0, ResetAfter: toMinute - 20*s},
		{At: 20 * s, Op: conformance.OpTake, N: 61, Remaining: 0, RetryAfter: ratekit.Never, ResetAfter: toMinute - 20*s},
		// 13:02:00 sharp is the next window.
		{At: toMinute, Op: conformance.OpTake, N: 1, OK: true, Remaining: 59, ResetAfter: time.Minute},
		// A Take stamped 1ns earlier is stale: its window's count is gone.
		// It could go through 1ns later, when 13:02's window begins.
		{At: toMinute - 1, Op: conformance.OpTake, N: 1, RetryAfter: 1, ResetAfter: 1 + time.Minute},
		{At: toMinute - 1, Op: conformance.OpTake, N: 60, RetryAfter: 1 + time.Minute, ResetAfter: 1 + time.Minute},
		{At: toMinute - 1, Op: conformance.OpTake, N: 0, OK: true, ResetAfter: 1 + time.Minute},
		// Refunds count only in the current window.
		{At: 30 * s, Op: conformance.OpRefund, N: 1},
		{At: toMinute + s, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 59, ResetAfter: time.Minute - s},
		{At: toMinute + s, Op: conformance.OpRefund, N: 5},
		{At: toMinute + s, Op: conformance.OpPeek, N: 0, OK: true, Remaining: 60},
		{At: toMinute + s, Op: conformance.OpPeek, N: 1, OK: true, Remaining: 59, ResetAfter: time.Minute - s},
	})
}

// Windows are aligned to Unix time plus Offset (the local time of a zone
// Offset east of UTC), not to the first Take or the limiter's creation.
func TestAlignment(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name   string
		window time.Duration
		offset time.Duration
		end    time.Time // end of the window containing t0
	}{
		{"Second", time.Second, 0, time.Date(2026, 3, 18, 13, 1, 8, 0, time.UTC)},
		{"SecondOffset", time.Second, 500 * time.Millisecond, time.Date(2026, 3, 18, 13, 1, 7, 500e6, time.UTC)},
		// Windows start where Unix time + 250ms is a whole second: at .750.
		{"SecondOffsetQuarter", time.Second, 250 * time.Millisecond, time.Date(2026, 3, 18, 13, 1, 7, 750e6, time.UTC)},
		{"SecondOffsetMinusQuarter", time.Second, -250 * time.Millisecond, time.Date(2026, 3, 18, 13, 1, 8, 250e6, time.UTC)},
		{"Minute", time.Minute, 0, time.Date(2026, 3, 18, 13, 2, 0, 0, time.UTC)},
		{"FiveMinutes", 5 * time.Minute, 0, time.Date(2026, 3, 18, 13, 5, 0, 0, time.UTC)},
		{"HalfHour", 30 * time.Minute, 0, time.Date(2026, 3, 18, 13, 30, 0, 0, time.UTC)},
		{"Hour", time.Hour, 0, time.Date(2026, 3, 18, 14, 0, 0, 0, time.UTC)},
		{"DayUTC", day, 0, time.Date(2026, 3, 19, 0, 0, 0, 0, time.UTC)},
		// Midnight in UTC-5 is 05:00 UTC; -5h and 19h are the same modulo a day.
		{"DayUTCMinus5", day, -5 * time.Hour, time.Date(2026, 3, 19, 5, 0, 0, 0, time.UTC)},
		{"DayUTCMinus5Positive", day, 19 * time.Hour, time.Date(2026, 3, 19, 5, 0, 0, 0, time.UTC)},
		// Midnight in UTC+1 is 23:00 UTC, in UTC+5 19:00 UTC.
		{"DayUTCPlus1", day, time.Hour, time.Date(2026, 3, 18, 23, 0, 0, 0, time.UTC)},
		{"DayUTCPlus5", day, 5 * time.Hour, time.Date(2026, 3, 18, 19, 0, 0, 0, time.UTC)},
		// Only Offset modulo Window matters: 3 days + 5h is UTC+5, and
		// -(3 days + 5h) is UTC-5.
		{"DayOffsetBeyondWindow", day, 3*day + 5*time.Hour, time.Date(2026, 3, 18, 19, 0, 0, 0, time.UTC)},
		{"DayOffsetBeyondWindowNegative", day, -3*day - 5*time.Hour, time.Date(2026, 3, 19, 5, 0, 0, 0, time.UTC)},
		// -math.MinInt64 = 2^63 ns = 106751 days + 23:47:16.854775808: the
		// phase is computed without negating Offset.
		{"DayMinOffset", day, math.MinInt64, time.Date(2026, 3, 18, 23, 47, 16, 854775808, time.UTC)},
		// The Unix epoch was a Thursday; 2026-03-18 is a Wednesday. Monday
		// 00:00 UTC is 4 days after a Thursday: Offset -4 days (or 3), and
		// Offset 4 days (or -3) moves the start to Sunday.
		{"WeekFromThursday", 7 * day, 0, time.Date(2026, 3, 19, 0, 0, 0, 0, time.UTC)},
		{"WeekFromMonday", 7 * day, -4 * day, time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC)},
		{"WeekFromMondayPositive", 7 * day, 3 * day, time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC)},
		{"WeekFromSunday", 7 * day, 4 * day, time.Date(2026, 3, 22, 0, 0, 0, 0, time.UTC)},
		// 30 days from the Unix epoch: 20530 days = 684 windows + 10 days.
		{"ThirtyDays", 30 * day, 0, time.Date(2026, 4, 7, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, epoch := range []time.Time{t0, t0.Add(-1000 * day), time.Unix(0, 0), {}} {
				mock := clock.NewMock()
				mock.Set(epoch)
				l := mustNew(t, fixedwindow.Config{Limit: 3, Window: tc.window, Offset: tc.offset, Clock: mock})
				d := l.Take(t0, 1)
				require.True(t, d.Allowed)
				require.Equal(t, tc.end, t0.Add(d.ResetAfter), "epoch %v", epoch)
				// The last instant of the window is in it; the end is not.
				require.Equal(t, 1, l.Take(tc.end.Add(-1), 1).Remaining)
				require.Equal(t, 2, l.Take(tc.end, 1).Remaining)
			}
		})
	}
}

func TestLimitOfTwoToThe31(t *testing.T) {
	need64(t)
	big := wide(1 << 31)
	l := mustNew(t, fixedwindow.Config{Limit: big, Window: time.Second})
	d := l.Take(t0, big)
	require.True(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.False(t, l.Take(t0, 1).Allowed)
	require.Equal(t, ratekit.Never, l.Take(t0, big+1).RetryAfter)
	l.Refund(t0, big-5)
	require.Equal(t, big-5, l.Peek(t0, 0).Remaining)
	d = l.Take(t0.Add(time.Second), big)
	require.True(t, d.Allowed, "next window: %v", d)
	// The same holds with a daily window and the largest count field.
	l = mustNew(t, fixedwindow.Config{Limit: wide(1<<40 + 3), Window: 24 * time.Hour})
	require.True(t, l.Take(t0, wide(1<<40)).Allowed)
	require.Equal(t, 3, l.Take(t0, 0).Remaining)
}

func TestValidate(t *testing.T) {
	bad := []fixedwindow.Config{
		{Limit: 0, Window: time.Second},
		{Limit: -1, Window: time.Second},
		{Limit: 1, Window: 0},
		{Limit: 1, Window: -time.Second},
		{Limit: 1 << 20, Window: time.Microsecond},
	}
	if math.MaxInt > 1<<40 { // 64-bit: an int holds these Limits
		bad = append(bad,
			fixedwindow.Config{Limit: math.MaxInt, Window: time.Second},     // on 32-bit, 2^31-1: valid
			fixedwindow.Config{Limit: wide(1 << 32), Window: time.Second},   // 2^29 windows of 1s: 17 years
			fixedwindow.Config{Limit: wide(1 << 62), Window: math.MaxInt64}, // no room at all
		)
	}
	for _, cfg := range bad {
		err := cfg.Validate()
		require.ErrorIs(t, err, ratekit.ErrInvalidConfig, "%+v", cfg)
		_, err = fixedwindow.New(cfg)
		require.ErrorIs(t, err, ratekit.ErrInvalidConfig, "%+v", cfg)
	}
	good := []fixedwindow.Config{
		{Limit: 1, Window: 1},                       // 2^60 ns either side
		{Limit: wide(1 << 31), Window: time.Second}, // 2^30 s: 34 years
		{Limit: 60, Window: math.MaxInt64, Offset: math.MinInt64},
	}
	if math.MaxInt > 1<<40 { // 64-bit: an int holds these Limits
		good = append(good,
			fixedwindow.Config{Limit: wide(1 << 32), Window: time.Minute},         // 2^29 min: 1000 years
			fixedwindow.Config{Limit: wide(1 << 40), Window: 30 * 24 * time.Hour}, //
			fixedwindow.Config{Limit: wide(1 << 61), Window: math.MaxInt64},       // one window either side
		)
	}
	for _, cfg := range good {
		require.NoError(t, cfg.Validate(), "%+v", cfg)
	}
}

// Times far from the epoch, the zero time included, never panic and never
// admit more than Limit per window.
func TestExtremeTimes(t *testing.T) {
	far := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Unix(0, 0),
		t0.Add(-40 * 8766 * time.Hour),
		t0.Add(40 * 8766 * time.Hour),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(1<<62, 0),
		time.Unix(-1<<62, 0),
	}
	cfgs := []fixedwindow.Config{
		{Limit: 3, Window: time.Minute},
		{Limit: 1, Window: 1},
		{Limit: 2, Window: math.MaxInt64},
	}
	if math.MaxInt > 1<<40 { // 64-bit: 3*Limit below fits an int
		cfgs = append(cfgs, fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second}) // the narrowest span: 34 years
	}
	for _, cfg := range cfgs {
		for _, at := range far {
			l := mustNew(t, cfg)
			require.True(t, l.Idle(at))
			d := l.Take(at, 1)
			require.True(t, d.Allowed, "%+v at %v: %v", cfg, at, d)
			require.Positive(t, d.ResetAfter)
			l.Take(at, cfg.Limit-1)
			d = l.Take(at, 1)
			require.False(t, d.Allowed, "%+v at %v: %v", cfg, at, d)
			require.Positive(t, d.RetryAfter)
			require.False(t, l.Idle(at))
			// Whatever the merging, a later Take at t0 and then a stale one
			// at the far time stay within the limit.
			admitted := 0
			for _, u := range []time.Time{t0, at, t0, at, t0.Add(-time.Nanosecond), at} {
				if l.Take(u, cfg.Limit).Allowed {
					admitted += cfg.Limit
				}
				for l.Take(u, 1).Allowed {
					admitted++
					require.LessOrEqual(t, admitted, 3*cfg.Limit)
				}
			}
			require.LessOrEqual(t, admitted, 3*cfg.Limit)
			_, err := l.MarshalBinary()
			require.NoError(t, err)
		}
	}
}

// Past the span windows merge: the last one never ends, and the first lasts
// until the span begins.
func TestBeyondTheSpan(t *testing.T) {
	need64(t)
	mock := clock.NewMock()
	mock.Set(t0)
	l := mustNew(t, fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second, Clock: mock})
	later := t0.Add(40 * 8766 * time.Hour) // past 2^30 seconds
	mock.Set(later)
	d := l.Take(later, wide(1<<31))
	require.True(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.ResetAfter)
	d = l.Take(later.Add(10*time.Hour), 1)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.RetryAfter, "the merged last window never ends")
	_, err := l.Wait(context.Background(), 1)
	require.ErrorIs(t, err, ratekit.ErrExceedsLimit)

	l = mustNew(t, fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second})
	earlier := t0.Add(-40 * 8766 * time.Hour)
	d = l.Take(earlier, 1)
	require.True(t, d.Allowed)
	// The epoch is the second containing t0; 2^30 windows either side of it.
	spanStart := t0.Truncate(time.Second).Add((1 - 1<<30) * time.Second)
	require.Equal(t, spanStart, earlier.Add(d.ResetAfter), "the first window lasts until the span begins")
	require.Equal(t, wide(1<<31-1), l.Peek(earlier.Add(time.Hour), 0).Remaining, "merged with later windows before the span")
}

func TestOnLimitReachedOncePerWindowUnderRace(t *testing.T) {
	const goroutines, limit, windows = 8, 50, 20
	var calls atomic.Int64
	var mu sync.Mutex
	var notices []ratekit.Decision
	l := mustNew(t, fixedwindow.Config{Limit: limit, Window: time.Minute, Name: "rollbar",
		OnLimitReached: func(d ratekit.Decision) {
			calls.Add(1)
			mu.Lock()
			notices = append(notices, d)
			mu.Unlock()
		}})
	for w := 0; w < windows; w++ {
		now := t0.Add(time.Duration(w) * time.Minute)
		var admitted atomic.Int64
		var start, done sync.WaitGroup
		start.Add(1)
		for g := 0; g < goroutines; g++ {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				for i := 0; i < 3*limit/goroutines+3; i++ {
					if l.Take(now, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		start.Done()
		done.Wait()
		require.EqualValues(t, limit, admitted.Load(), "window %d", w)
		require.EqualValues(t, w+1, calls.Load(), "window %d: OnLimitReached calls", w)
	}
	for _, d := range notices {
		require.False(t, d.Allowed)
		require.Equal(t, "rollbar", d.Policy)
		require.Equal(t, 0, d.Remaining)
		require.Equal(t, 52750*time.Millisecond, d.RetryAfter)
	}
}

func TestOnLimitReachedOnlyForAFullWindow(t *testing.T) {
	calls := 0
	l := mustNew(t, fixedwindow.Config{Limit: 2, Window: time.Minute, OnLimitReached: func(ratekit.Decision) { calls++ }})
	l.Take(t0, -1)
	l.Take(t0, 3)
	require.Zero(t, calls, "n < 0 and n > Limit do not reach the limit")
	l.Take(t0, 1)
	l.Take(t0, 2) // denied: 1 + 2 > 2
	require.Equal(t, 1, calls)
	l.Peek(t0, 2)
	l.Take(t0, 1)
	l.Take(t0, 1)
	require.Equal(t, 1, calls, "once per window")
	l.Refund(t0, 2)
	l.Take(t0, 2)
	l.Take(t0, 1)
	require.Equal(t, 1, calls, "a refund does not re-arm the window")
	l.Take(t0.Add(-time.Minute), 1) // stale
	require.Equal(t, 1, calls)
	l.Take(t0.Add(time.Minute), 2)
	l.Take(t0.Add(time.Minute), 1)
	require.Equal(t, 2, calls, "the next window notifies again")
}

// The callback runs on the Take's goroutine with no lock held: it may call
// back into the limiter, even Reconfigure.
func TestOnLimitReachedMayReenter(t *testing.T) {
	var l *fixedwindow.Limiter
	l = mustNew(t, fixedwindow.Config{Limit: 1, Window: time.Minute, OnLimitReached: func(d ratekit.Decision) {
		require.False(t, l.Take(t0, 1).Allowed)
		require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 2, Window: time.Minute, Name: "raised"}))
	}})
	require.True(t, l.Take(t0, 1).Allowed)
	d := l.Take(t0, 1)
	require.False(t, d.Allowed, "the denial that notified stands")
	d = l.Take(t0, 1)
	require.True(t, d.Allowed, "the raised limit admits one more: %v", d)
	require.Equal(t, "raised", d.Policy)
}

func TestReconfigureLimit(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute})
	require.True(t, l.Take(t0, 50).Allowed)
	require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 10, Window: time.Minute, Name: "lowered"}))
	d := l.Take(t0, 1)
	require.False(t, d.Allowed, "a lower limit applies to the count already taken")
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, 10, d.Limit)
	require.Equal(t, "lowered", d.Policy)
	l.Refund(t0, 45) // 5 left taken
	require.Equal(t, 5, l.Peek(t0, 0).Remaining, "the carried count is exact, refunds included")
	d = l.Take(t0.Add(time.Minute), 10)
	require.True(t, d.Allowed, "the next window has the new limit")

	require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 25, Window: time.Minute}))
	require.Equal(t, 15, l.Peek(t0.Add(time.Minute), 0).Remaining, "a raised limit admits the difference")
	require.Equal(t, fixedwindow.Config{Limit: 25, Window: time.Minute}, l.Config())

	err := l.Reconfigure(fixedwindow.Config{Limit: 0, Window: time.Minute})
	require.ErrorIs(t, err, ratekit.ErrInvalidConfig)
	require.Equal(t, 25, l.Config().Limit, "a rejected config changes nothing")
	require.Equal(t, 15, l.Peek(t0.Add(time.Minute), 0).Remaining)
}

func TestReconfigureWindow(t *testing.T) {
	hour := time.Hour
	at := func(h, m, s int) time.Time { return time.Date(2026, 3, 18, h, m, s, 0, time.UTC) }
	// cfg at h:m:s: the Reconfigure's instant is read on the Config's Clock.
	cfg := func(limit int, window, offset time.Duration, h, m, s int) fixedwindow.Config {
		return fixedwindow.Config{Limit: limit, Window: window, Offset: offset, Clock: mockAt(at(h, m, s))}
	}

	// Minute to hour: the minute's count carries into the hour.
	l := mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute})
	l.Take(at(13, 5, 10), 30)
	require.NoError(t, l.Reconfigure(cfg(100, hour, 0, 13, 5, 20)))
	d := l.Take(at(13, 5, 20), 1)
	require.Equal(t, 69, d.Remaining)
	require.Equal(t, at(14, 0, 0), at(13, 5, 20).Add(d.ResetAfter))

	// Hour to minute, in the hour's first minute: carried (and over the new limit).
	l = mustNew(t, fixedwindow.Config{Limit: 1000, Window: hour})
	l.Take(at(13, 0, 10), 500)
	require.NoError(t, l.Reconfigure(cfg(60, time.Minute, 0, 13, 0, 30)))
	require.False(t, l.Take(at(13, 0, 30), 1).Allowed)
	require.True(t, l.Take(at(13, 1, 0), 60).Allowed)

	// Hour to minute, later in the hour: the units may all have been taken
	// in the current minute, so it counts them; earlier minutes are stale.
	l = mustNew(t, fixedwindow.Config{Limit: 1000, Window: hour})
	l.Take(at(13, 20, 0), 500)
	require.NoError(t, l.Reconfigure(cfg(60, time.Minute, 0, 13, 30, 0)))
	require.False(t, l.Take(at(13, 30, 0), 1).Allowed)
	require.Equal(t, 59, l.Take(at(13, 31, 0), 1).Remaining)
	require.False(t, l.Take(at(13, 20, 0), 1).Allowed, "before the carried window: stale")

	// Hour to minute after the hour ended: its last minute counts it.
	l = mustNew(t, fixedwindow.Config{Limit: 1000, Window: hour})
	l.Take(at(13, 20, 0), 500)
	require.NoError(t, l.Reconfigure(cfg(60, time.Minute, 0, 15, 0, 0)))
	require.False(t, l.Take(at(13, 59, 30), 1).Allowed)
	require.Equal(t, 59, l.Take(at(15, 0, 0), 1).Remaining)

	// Daily window moved from midnight UTC to midnight UTC+1 (23:00 UTC)
	// at 14:00: the new day holding 14:00 counts today's units.
	l = mustNew(t, fixedwindow.Config{Limit: 100, Window: 24 * hour})
	l.Take(at(13, 0, 0), 40)
	require.NoError(t, l.Reconfigure(cfg(100, 24*hour, hour, 14, 0, 0)))
	d = l.Take(at(14, 0, 0), 1)
	require.Equal(t, 59, d.Remaining)
	require.Equal(t, at(23, 0, 0), at(14, 0, 0).Add(d.ResetAfter))
	// Moved to midnight UTC-5 (05:00 UTC) at 14:00: so does the day from
	// 05:00 UTC, though the old day began before it.
	l = mustNew(t, fixedwindow.Config{Limit: 100, Window: 24 * hour})
	l.Take(at(13, 0, 0), 40)
	require.NoError(t, l.Reconfigure(cfg(100, 24*hour, -5*hour, 14, 0, 0)))
	require.Equal(t, 59, l.Take(at(14, 0, 0), 1).Remaining)

	// The OnLimitReached flag carries with the count.
	calls := 0
	hook := func(ratekit.Decision) { calls++ }
	l = mustNew(t, fixedwindow.Config{Limit: 1, Window: time.Minute, OnLimitReached: hook})
	l.Take(t0, 1)
	l.Take(t0, 1)
	require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 1, Window: hour, OnLimitReached: hook, Clock: atT0}))
	l.Take(t0, 1)
	require.Equal(t, 1, calls)
}

// Reconfigure races Takes, Refunds and Peeks: run with -race. While the
// limit moves between 20 and 40 in one window, no interleaving admits more
// than 40.
func TestReconfigureConcurrent(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 40, Window: time.Hour})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if l.Take(t0, 1).Allowed {
					admitted.Add(1)
					if i%3 == 0 {
						l.Refund(t0, 1)
						admitted.Add(-1)
					}
				}
				d := l.Peek(t0, 0)
				if d.Remaining < 0 || d.Remaining > 40 {
					t.Errorf("Peek: %v", d)
				}
			}
		}()
	}
	for i := 0; i < 300; i++ {
		limit := 20 + 20*(i%2)
		require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: limit, Window: time.Hour}))
		if _, err := l.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	require.LessOrEqual(t, admitted.Load(), int64(40))
	require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 40, Window: time.Hour}))
	require.Equal(t, 40-int(admitted.Load()), l.Peek(t0, 0).Remaining, "refunds and takes all accounted for")
}

// Window and Offset changes racing Takes: no panic, no race, and every
// Decision is well-formed.
func TestReconfigureWindowConcurrent(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 10, Window: time.Minute})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				now := t0.Add(time.Duration(i%100) * time.Second)
				d := l.Take(now, 1+i%3)
				if d.Remaining < 0 || d.Remaining > 10 || d.Allowed != (d.RetryAfter == 0) {
					t.Errorf("Take: %v", d)
				}
				l.Refund(now, 1)
				l.Idle(now)
			}
		}()
	}
	windows := []time.Duration{time.Minute, time.Hour, time.Second, 24 * time.Hour}
	for i := 0; i < 200; i++ {
		require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 10, Window: windows[i%4], Offset: time.Duration(i) * time.Second}))
	}
	close(stop)
	wg.Wait()
}

func TestIdle(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 3, Window: time.Minute, OnLimitReached: func(ratekit.Decision) {}})
	require.True(t, l.Idle(t0))
	l.Take(t0, 1)
	require.False(t, l.Idle(t0))
	require.False(t, l.Idle(t0.Add(-time.Minute)), "a stale time is not idle: the limiter would deny it")
	require.True(t, l.Idle(t0.Add(time.Minute)))
	l.Refund(t0, 1)
	require.True(t, l.Idle(t0), "count back to zero")
	l.Take(t0, 3)
	l.Take(t0, 1) // notifies
	l.Refund(t0, 3)
	require.False(t, l.Idle(t0), "a fresh limiter would notify again in this window")
}

func TestAllowAndWait(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	l := mustNew(t, fixedwindow.Config{Limit: 2, Window: time.Minute, Clock: mock})
	require.True(t, l.Allow())
	require.True(t, l.AllowN(1))
	require.False(t, l.Allow())
	require.False(t, l.AllowN(3))
	mock.Add(52750 * time.Millisecond)
	require.True(t, l.AllowN(2))

	_, err := l.Wait(context.Background(), 3)
	require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
	ctx, cancel := mock.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := l.Wait(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, time.Minute, d.RetryAfter)
}

func TestWaitUntilTheWindowEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Inside the bubble the real clock is fake and starts at
		// 2000-01-01 00:00:00 UTC, a window boundary.
		l, err := fixedwindow.New(fixedwindow.Config{Limit: 1, Window: time.Minute})
		require.NoError(t, err)
		start := time.Now()
		time.Sleep(15 * time.Second)
		for i := 0; i < 3; i++ {
			d, err := l.Wait(t.Context(), 1)
			require.NoError(t, err)
			require.True(t, d.Allowed)
		}
		require.Equal(t, 2*time.Minute, time.Since(start), "woken at :00 of each minute")
	})
}

func TestZeroAllocsConvenience(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 1 << 30, Window: time.Second, Clock: clock.New()})
	require.Zero(t, testing.AllocsPerRun(200, func() { l.Allow() }))
	calls := 0
	l = mustNew(t, fixedwindow.Config{Limit: 1, Window: time.Second, OnLimitReached: func(ratekit.Decision) { calls++ }})
	now := t0
	require.Zero(t, testing.AllocsPerRun(200, func() {
		now = now.Add(time.Second)
		l.Take(now, 1)
		l.Take(now, 1) // notifies
	}))
	require.Equal(t, 201, calls)
}

func TestMarshal(t *testing.T) {
	cfg := fixedwindow.Config{Limit: 60, Window: time.Minute, OnLimitReached: func(ratekit.Decision) {}}
	l := mustNew(t, cfg)
	l.Take(t0, 60)
	l.Take(t0, 1) // sets the flag
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	// Header, flags 3, 13:01:00 in Unix seconds, 0ns, 60e9ns, count 60.
	require.Equal(t, []byte{'r', 'k', 2, 1, 3, 0x98, 0x88, 0xd5, 0x9b, 0xd, 0, 0x80, 0xb0, 0x9d, 0xc2, 0xdf, 0x1, 60}, b)

	// Restored in another process, created at another time, in the window:
	// the count and the flag hold.
	calls := 0
	cfg.OnLimitReached = func(ratekit.Decision) { calls++ }
	mock := clock.NewMock()
	mock.Set(t0.Add(-1000 * time.Hour))
	r := mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute, Clock: mock, OnLimitReached: cfg.OnLimitReached})
	require.NoError(t, r.UnmarshalBinary(b))
	require.False(t, r.Take(t0.Add(time.Second), 1).Allowed)
	require.Zero(t, calls, "already notified for this window")
	require.True(t, r.Take(t0.Add(time.Minute), 60).Allowed, "after the window: fresh")

	// Restored after downtime past the window's end: fresh.
	r = mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute})
	require.NoError(t, r.UnmarshalBinary(b))
	require.True(t, r.Idle(t0.Add(10*time.Minute)))
	require.Equal(t, 60, r.Peek(t0.Add(10*time.Minute), 0).Remaining)

	// Restored under another config: placed as Reconfigure places it.
	r = mustNew(t, fixedwindow.Config{Limit: 100, Window: time.Hour})
	require.NoError(t, r.UnmarshalBinary(b))
	require.Equal(t, 40, r.Peek(t0, 0).Remaining)

	// A fresh state encodes no window, and restores a fresh limiter.
	f := mustNew(t, cfg)
	fb, err := f.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, []byte{'r', 'k', 2, 1, 0}, fb)
	require.NoError(t, l.UnmarshalBinary(fb))
	require.Equal(t, f.Peek(t0, 60), l.Peek(t0, 60))
	// Fresh, but its Takes are marked (a refund of one gives nothing back),
	// which a new limiter in its place would not be: Idle only from the
	// window after the marked one, t0's (13:02:00; see the conformance
	// check IdleKeepsRestoreMark).
	require.False(t, l.Idle(t0))
	require.False(t, l.Idle(t0.Add(52750*time.Millisecond-1)))
	require.True(t, l.Idle(t0.Add(52750*time.Millisecond)))
}

// state builds a fixedwindow state: the header, then flags and, if given,
// a window's fields.
func state(flags uint64, sec int64, nsec, window, count uint64) []byte {
	b := binary.AppendUvarint([]byte{'r', 'k', 2, 1}, flags)
	if flags&1 != 0 {
		b = binary.AppendVarint(b, sec)
		b = binary.AppendUvarint(b, nsec)
		b = binary.AppendUvarint(b, window)
		b = binary.AppendUvarint(b, count)
	}
	return b
}

func TestUnmarshalRejects(t *testing.T) {
	l := mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute})
	l.Take(t0, 7)
	min := uint64(time.Minute)
	for name, b := range map[string][]byte{
		"unknown flag":            state(4, 0, 0, 0, 0),
		"notified without window": state(2, 0, 0, 0, 0),
		"nanoseconds":             state(1, 0, 1e9, min, 1),
		"zero window":             state(1, 0, 0, 0, 1),
		"huge window":             state(1, 0, 0, 1<<63, 1),
		"count":                   state(1, 0, 0, min, 1<<62+1),
		"seconds":                 state(1, 1<<62+1, 0, min, 1),
		"negative seconds":        state(1, -1<<62-1, 0, min, 1),
		"empty payload":           {'r', 'k', 2, 1},
	} {
		err := l.UnmarshalBinary(b)
		require.ErrorIs(t, err, ratekit.ErrInvalidState, name)
		require.Equal(t, 53, l.Peek(t0, 0).Remaining, "%s: limiter unchanged", name)
	}
	err := l.UnmarshalBinary([]byte{'r', 'k', 1, 1, 0})
	require.True(t, errors.Is(err, ratekit.ErrInvalidState), "a token bucket's state")

	// The extremes that are valid restore without trouble.
	for _, b := range [][]byte{
		state(3, 1<<62, 999999999, 1<<63-1, 1<<62),
		state(1, -1<<62, 0, 1, 0),
	} {
		r := mustNew(t, fixedwindow.Config{Limit: 60, Window: time.Minute})
		require.NoError(t, r.UnmarshalBinary(b))
		r.Take(t0, 1)
		_, err := r.MarshalBinary()
		require.NoError(t, err)
	}
}

func TestZeroLimiter(t *testing.T) {
	var l fixedwindow.Limiter
	d := l.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.RetryAfter)
	require.Equal(t, 0, d.Limit)
	require.True(t, l.Take(t0, 0).Allowed)
	require.Equal(t, d, l.Peek(t0, 1))
	l.Refund(t0, 1)
	require.True(t, l.Idle(t0))
	require.False(t, l.Allow())
	_, err := l.Wait(context.Background(), 1)
	require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
	require.Equal(t, fixedwindow.Config{}, l.Config())
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	require.ErrorIs(t, l.UnmarshalBinary(b), ratekit.ErrInvalidState)
	require.ErrorIs(t, l.Reconfigure(fixedwindow.Config{}), ratekit.ErrInvalidConfig)

	require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 2, Window: time.Minute, Clock: atT0}))
	require.Equal(t, 1, l.Take(t0, 1).Remaining)
	require.Equal(t, time.Date(2026, 3, 18, 13, 2, 0, 0, time.UTC), t0.Add(l.Take(t0, 1).ResetAfter))
	require.False(t, l.Take(t0, 1).Allowed)
	require.NoError(t, l.UnmarshalBinary(b))
	require.True(t, l.Take(t0, 2).Allowed, "restored the fresh state")
}
