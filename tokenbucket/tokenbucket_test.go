package tokenbucket_test

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

const day = 24 * time.Hour

var t0 = conformance.DefaultStart

// mockAt returns a mock clock set to at. (Mock.Set sleeps a millisecond, so
// tests that build many limiters share atT0.)
func mockAt(at time.Time) *clock.Mock {
	m := clock.NewMock()
	m.Set(at)
	return m
}

// atT0 is a mock clock that stays at t0, for limiters whose clock is only
// read for their epoch.
var atT0 = sync.OnceValue(func() *clock.Mock { return mockAt(t0) })

// mustNew builds a limiter or fails the test.
func mustNew(tb testing.TB, cfg tokenbucket.Config) *tokenbucket.Limiter {
	tb.Helper()
	l, err := tokenbucket.New(cfg)
	require.NoError(tb, err)
	return l
}

// reconfigureBurst is a conformance Subject's Reconfigure: cfg with the
// given Burst, read at t0 (the suite's Start) whatever clock New used.
func reconfigureBurst(cfg tokenbucket.Config) func(ratekit.Limiter, int) error {
	return func(l ratekit.Limiter, burst int) error {
		c := cfg // a copy: the suite calls this from several goroutines at once
		c.Burst, c.Clock = burst, atT0()
		return l.(*tokenbucket.Limiter).Reconfigure(c)
	}
}

// reconfigureWindow is a conformance Subject's ReconfigureWindow: cfg with
// the Window that makes a Decision report window (Burst·Window/Limit, the
// time to refill Burst), read at now; a token bucket has no alignment, so
// shift is ignored.
func reconfigureWindow(cfg tokenbucket.Config) func(ratekit.Limiter, time.Duration, time.Duration, time.Time) error {
	return func(l ratekit.Limiter, window, _ time.Duration, now time.Time) error {
		c := cfg
		w := new(big.Int).Mul(big.NewInt(int64(window)), big.NewInt(int64(cfg.Limit)))
		c.Window = time.Duration(max(w.Quo(w, big.NewInt(int64(cfg.Burst))).Int64(), 1))
		c.Clock = mockAt(now)
		return l.(*tokenbucket.Limiter).Reconfigure(c)
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  tokenbucket.Config
	}{
		{"10PerSecond", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Name: "api"}},
		{"7Per10s", tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 5, Name: "odd"}},
		{"1Per30Days", tokenbucket.Config{Limit: 1, Window: 30 * day, Burst: 3, Name: "monthly"}},
		{"1e9PerSecond", tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: 100}},
		// q = 999999937: the fast path covers 1.15 s either side of the
		// epoch, so the suite's hour and 400-day steps rebase, and its
		// ten-year-stale times take the exact path before the range.
		{"FineScale", tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "fine"}},
		// The real clock's epoch (now) is months after the suite's instants.
		{"RealClockEpoch", tokenbucket.Config{Limit: 25, Window: time.Second, Burst: 25, Name: "sanity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conformance.Run(t, conformance.Subject{
				New: func(tb testing.TB) ratekit.Limiter {
					cfg := tc.cfg
					if tc.name != "RealClockEpoch" {
						cfg.Clock = atT0()
					}
					return mustNew(tb, cfg)
				},
				Capacity:          tc.cfg.Burst,
				Policy:            tc.cfg.Name,
				Reconfigure:       reconfigureBurst(tc.cfg),
				ReconfigureWindow: reconfigureWindow(tc.cfg),
				WithClock:         func(tb testing.TB, c clock.Clock) ratekit.Limiter { return mustNew(tb, withClock(tc.cfg, c)) },
				Zero:              func() ratekit.Limiter { return new(tokenbucket.Limiter) },
			})
		})
	}
}

// TestScript7Per10s checks exact decisions where the emission interval,
// 10s/7 = 1428571428.571428... ns, is not a whole number of nanoseconds.
func TestScript7Per10s(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 2, Clock: atT0()})
	const T = 1428571429 // ceil(10s/7)
	conformance.RunScript(t, l, t0, []conformance.Step{
		{At: 0, Op: conformance.OpTake, N: 1, OK: true, Remaining: 1, ResetAfter: T},
		{At: 0, Op: conformance.OpTake, N: 1, OK: true, Remaining: 0, ResetAfter: 2857142858}, // ceil(2857142857.14)
		{At: 0, Op: conformance.OpTake, N: 1, Remaining: 0, RetryAfter: T, ResetAfter: 2857142858},
		{At: T - 1, Op: conformance.OpPeek, N: 1, Remaining: 0, RetryAfter: 1, ResetAfter: 1428571430},
		// At ceil(T) one unit has refilled, and 0.428571 ns of the next.
		{At: T, Op: conformance.OpTake, N: 1, OK: true, Remaining: 0, ResetAfter: 2857142857},
		{At: T, Op: conformance.OpTake, N: 1, Remaining: 0, RetryAfter: 1428571429, ResetAfter: 2857142857},
		{At: T, Op: conformance.OpRefund, N: 1},
		{At: T, Op: conformance.OpPeek, N: 2, Remaining: 1, RetryAfter: 1428571429, ResetAfter: 1428571429},
		{At: 10 * time.Second, Op: conformance.OpPeek, N: 2, OK: true, Remaining: 0, ResetAfter: 2857142858},
	})
}

// TestExactOver30Days drives a bucket of Burst 2 at 100003 per 30 days (an
// interval of 25919222423.327... ns) through a whole window: drained at 0,
// then taking each unit at the instant RetryAfter names, the k-th unit comes
// at exactly ceil(k*Window/Limit), so exactly Limit+1 are admitted in
// [0, Window) and the next at Window itself. Rounding the interval to whole
// ns either way would miss by a third of a ns per unit, 33 µs over the window.
// (With Burst 1 the bucket is full at each instant it is polled, and a full
// bucket rightly drops the fraction that overflows it; Burst 2 keeps it
// below full, so every fraction counts.)
func TestExactOver30Days(t *testing.T) {
	const limit = 100_003
	const window = 30 * day
	l := mustNew(t, tokenbucket.Config{Limit: limit, Window: window, Burst: 2, Clock: atT0()})
	require.True(t, l.Take(t0, 2).Allowed)
	at, k := time.Duration(0), int64(0)
	for at < window {
		d := l.Take(t0.Add(at), 1)
		if !d.Allowed {
			at += d.RetryAfter
			continue
		}
		k++
		want := new(big.Int).Mul(big.NewInt(k), big.NewInt(int64(window)))
		want.Add(want, big.NewInt(limit-1))
		want.Quo(want, big.NewInt(limit))
		if int64(at) != want.Int64() {
			t.Fatalf("unit %d admitted at %d ns; want ceil(k*Window/Limit) = %d", k, at, want.Int64())
		}
	}
	require.Equal(t, int64(limit-1), k, "units admitted in (0, Window) after the burst")
	require.Equal(t, window, at, "the next one is due exactly at Window")
	require.True(t, l.Take(t0.Add(window), 1).Allowed)
}

func TestValidate(t *testing.T) {
	type validateCase struct {
		cfg  tokenbucket.Config
		want string // "" for valid
	}
	cases := []validateCase{
		{tokenbucket.Config{Limit: 0, Window: time.Second, Burst: 1}, "Limit must be positive, got 0"},
		{tokenbucket.Config{Limit: -3, Window: time.Second, Burst: 1}, "Limit must be positive, got -3"},
		{tokenbucket.Config{Limit: 1, Window: 0, Burst: 1}, "Window must be positive"},
		{tokenbucket.Config{Limit: 1, Window: -time.Second, Burst: 1}, "Window must be positive"},
		{tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 0}, "Burst must be positive, got 0"},
		{tokenbucket.Config{}, "Limit must be positive"},
		// The edges the issue names.
		{tokenbucket.Config{Limit: 1, Window: 30 * day, Burst: 1}, ""},
		{tokenbucket.Config{Limit: 1, Window: 30 * day, Burst: 444}, ""},
		{tokenbucket.Config{Limit: 1, Window: 30 * day, Burst: 445}, "must be at most 2^60/1 ns"},
		{tokenbucket.Config{Limit: 1, Window: math.MaxInt64, Burst: 1}, "takes over 2^60/1 ns"},
		{tokenbucket.Config{Limit: 1, Window: 1 << 60, Burst: 1}, ""},
		{tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 1}, ""},
	}
	// The cases whose counts pass 2^31: an int holds them on 64-bit platforms.
	if math.MaxInt > 1<<40 {
		cases = append(cases,
			// The edges the issue names.
			validateCase{tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: wide(1 << 40)}, ""},
			validateCase{tokenbucket.Config{Limit: 1, Window: 30 * day, Burst: wide(1 << 40)}, "Burst at most 444 at this rate"},
			validateCase{tokenbucket.Config{Limit: 1, Window: time.Second, Burst: wide(1 << 40)}, "Burst at most 1152921504 at this rate"},
			validateCase{tokenbucket.Config{Limit: wide(math.MaxInt64), Window: math.MaxInt64, Burst: wide(math.MaxInt64)}, "Burst at most 1152921504606846976"},
			// The time scale: Window/Limit = 1/2^32 ns fits, 1/(2^32+1) does not.
			validateCase{tokenbucket.Config{Limit: wide(1 << 32), Window: 1, Burst: wide(1 << 40)}, ""},
			validateCase{tokenbucket.Config{Limit: wide(1<<32 + 1), Window: 1, Burst: 1}, "time scale of 1/4294967297 ns"},
			validateCase{tokenbucket.Config{Limit: wide(3 << 32), Window: 3, Burst: 1}, ""},
		)
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		_, newErr := tokenbucket.New(tc.cfg)
		if tc.want == "" {
			require.NoError(t, err, "%+v", tc.cfg)
			require.NoError(t, newErr)
			continue
		}
		require.ErrorIs(t, err, ratekit.ErrInvalidConfig, "%+v", tc.cfg)
		require.ErrorContains(t, err, tc.want)
		require.ErrorIs(t, newErr, ratekit.ErrInvalidConfig)
	}
}

// TestEdges runs the extreme rates and bursts, checking exact values.
func TestEdges(t *testing.T) {
	t.Run("1e9PerSecondBurst2^40", func(t *testing.T) {
		need64(t)
		big := wide(1 << 40)
		l := mustNew(t, tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: big, Clock: atT0()})
		d := l.Take(t0, big)
		require.True(t, d.Allowed)
		require.Equal(t, ratekit.Decision{Allowed: true, Limit: big, Window: 1 << 40, ResetAfter: 1 << 40}, d)
		d = l.Take(t0, 1)
		require.Equal(t, time.Duration(1), d.RetryAfter)
		d = l.Take(t0.Add(1<<40), big)
		require.True(t, d.Allowed, "full again after 2^40 ns")
		require.Equal(t, ratekit.Never, l.Take(t0, big+1).RetryAfter)
		require.Equal(t, ratekit.Never, l.Take(t0, math.MaxInt).RetryAfter)
		// Half refilled at +2^39 ns.
		d = l.Peek(t0.Add(1<<40+1<<39), 1)
		require.Equal(t, wide(1<<39-1), d.Remaining)
	})
	t.Run("1Per30DaysBurst444", func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 1, Window: 30 * day, Burst: 444, Clock: atT0()})
		d := l.Take(t0, 444)
		require.True(t, d.Allowed)
		require.Equal(t, 444*30*day, d.ResetAfter)
		require.Equal(t, 444*30*day, d.Window)
		d = l.Take(t0, 1)
		require.Equal(t, 30*day, d.RetryAfter)
		d = l.Take(t0, 444)
		require.Equal(t, 444*30*day, d.RetryAfter)
		require.True(t, l.Take(t0.Add(30*day), 1).Allowed)
		require.False(t, l.Take(t0.Add(30*day), 1).Allowed)
	})
	t.Run("2^32PerNs", func(t *testing.T) {
		need64(t)
		// The finest time scale: 2^32 units per ns, Burst 2^40: 256 ns to refill.
		l := mustNew(t, tokenbucket.Config{Limit: wide(1 << 32), Window: 1, Burst: wide(1 << 40), Clock: atT0()})
		d := l.Take(t0, wide(1<<40))
		require.Equal(t, ratekit.Decision{Allowed: true, Limit: wide(1 << 40), Window: 256, ResetAfter: 256}, d)
		d = l.Take(t0.Add(1), wide(1<<32))
		require.True(t, d.Allowed, "2^32 units refill per ns")
		require.False(t, l.Take(t0.Add(1), 1).Allowed)
		// Far from the epoch (2^28 ns at this scale) the limiter rebases.
		for _, at := range []time.Duration{time.Second, time.Hour, 400 * day} {
			require.True(t, l.Take(t0.Add(at), wide(1<<40)).Allowed)
			d = l.Take(t0.Add(at), 1)
			require.Equal(t, time.Duration(1), d.RetryAfter)
		}
	})
	t.Run("ExtremeTimes", func(t *testing.T) {
		for _, cfg := range []tokenbucket.Config{
			{Limit: 1, Window: 30 * day, Burst: 444},
			{Limit: 1e9, Window: time.Second, Burst: wide(1 << 40)},
			{Limit: wide(1 << 32), Window: 1, Burst: wide(1 << 40)},
			{Limit: 7, Window: 10 * time.Second, Burst: 3},
		} {
			l := mustNew(t, tokenbucket.Config{Limit: cfg.Limit, Window: cfg.Window, Burst: cfg.Burst, Clock: atT0()})
			times := []time.Time{{}, time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64),
				time.Unix(math.MaxInt64/2, 0), t0, t0.Add(-1), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
			for _, at := range times {
				for _, n := range []int{-1, 0, 1, cfg.Burst, cfg.Burst + 1, math.MaxInt, math.MinInt} {
					p := l.Peek(at, n)
					d := l.Take(at, n)
					require.Equal(t, p, d, "Peek and Take differ at %v n=%d", at, n)
					require.GreaterOrEqual(t, d.Remaining, 0)
					require.LessOrEqual(t, d.Remaining, cfg.Burst)
					require.GreaterOrEqual(t, d.ResetAfter, time.Duration(0))
					require.GreaterOrEqual(t, d.RetryAfter, time.Duration(0))
					l.Refund(at, n)
					l.Idle(at)
				}
			}
		}
	})
}

// TestStaleTimeNeverMints is the scenario of golang/go#71360: goroutines read
// the clock, then contend; a Take stamped earlier than one already applied
// must not find more capacity than there was at the later time.
func TestStaleTimeNeverMints(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: atT0()})
	late := t0.Add(time.Second)
	require.True(t, l.Take(late, 10).Allowed)
	for _, back := range []time.Duration{1, time.Millisecond, 100 * time.Millisecond, time.Second, time.Hour} {
		d := l.Take(late.Add(-back), 1)
		require.False(t, d.Allowed, "stale by %v", back)
		require.Equal(t, 100*time.Millisecond+back, d.RetryAfter, "RetryAfter is measured from the stale time")
	}
	// Interleaved stamps within one second admit at most Burst + 10.
	l = mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: atT0()})
	rng := rand.New(rand.NewPCG(1, 2))
	admitted := 0
	for i := 0; i < 1000; i++ {
		if l.Take(t0.Add(time.Duration(rng.Int64N(int64(time.Second)))), 1).Allowed {
			admitted++
		}
	}
	require.LessOrEqual(t, admitted, 20)
}

func TestRefund(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 5, Clock: atT0()})
	require.True(t, l.Take(t0, 3).Allowed)
	l.Refund(t0, 1)
	require.Equal(t, 3, l.Peek(t0, 0).Remaining)
	l.Refund(t0, 100) // more than was taken: stops at full at t0
	require.Equal(t, 5, l.Peek(t0, 0).Remaining)
	require.True(t, l.Idle(t0))
	// A refund never moves the TAT forward.
	l.Refund(t0.Add(time.Hour), 1)
	require.True(t, l.Idle(t0))
	// A refund at a time after the take stops at full at that time.
	require.True(t, l.Take(t0, 5).Allowed)
	l.Refund(t0.Add(2*time.Second), 5)
	d := l.Peek(t0.Add(2*time.Second), 0)
	require.Equal(t, 5, d.Remaining)
	require.Equal(t, 3, l.Peek(t0, 0).Remaining, "at t0 the 2 s before the refund's time still count as taken")
}

func TestIdle(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 1, Clock: atT0()})
	require.True(t, l.Idle(time.Time{}))
	require.True(t, l.Take(t0, 1).Allowed)
	T := time.Duration(1428571429) // ceil(10s/7)
	require.False(t, l.Idle(t0.Add(T-1)))
	require.True(t, l.Idle(t0.Add(T)))
	require.False(t, l.Idle(t0.Add(-time.Hour)), "full at a later time only")
}

// TestRebaseKeepsDecisions drives a limiter whose fast path covers only
// 1.15 s either side of its epoch through hours of traffic, side by side with
// the exact model: moving the epoch changes no decision.
func TestRebaseKeepsDecisions(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 1000, Clock: atT0()}
	l := mustNew(t, cfg)
	m := model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, "", t0)
	rng := rand.New(rand.NewPCG(5, 6))
	now := t0
	steps := []time.Duration{0, 1, 7, 999, time.Microsecond, time.Millisecond, 700 * time.Millisecond, 3 * time.Second, time.Minute}
	for i := 0; i < 5000; i++ {
		now = now.Add(steps[rng.IntN(len(steps))])
		at := now.Add(-time.Duration(rng.Int64N(int64(500 * time.Millisecond)))) // stale, within the fast path
		n := rng.IntN(1200)
		switch rng.IntN(4) {
		case 0:
			require.Equal(t, m.Peek(at, n), l.Peek(at, n), "Peek at step %d", i)
		case 1:
			l.Refund(at, n)
			m.Refund(at, n)
		default:
			require.Equal(t, m.Take(now, n), l.Take(now, n), "Take at step %d", i)
		}
	}
}

// TestFarStaleDenialIsExact: a time far before the epoch (here, after a
// rebase) is decided at the fast path's bound, and a denial still reports
// RetryAfter and ResetAfter exactly, measured from the time passed in.
func TestFarStaleDenialIsExact(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 10, Clock: atT0()}
	l := mustNew(t, cfg)
	m := model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, "", t0)
	late := t0.Add(time.Hour) // rebases
	require.Equal(t, m.Take(late, 10), l.Take(late, 10))
	for _, back := range []time.Duration{2 * time.Second, time.Hour, 10 * 365 * day} {
		at := late.Add(-back)
		require.Equal(t, m.Take(at, 3), l.Take(at, 3), "stale by %v", back)
	}
	d := l.Take(time.Time{}, 1)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never-1, d.RetryAfter, "saturates below Never")
}

// TestConcurrentTakeBounded races Takes at spread instants; the total admitted
// stays within what 100 ms of refill allows, and the bucket ends drained.
func TestConcurrentTakeBounded(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 1000, Window: time.Second, Burst: 100, Clock: atT0()})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				at := t0.Add(time.Duration(i) * 50 * time.Microsecond) // 100 ms in all
				if l.Take(at, 1).Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// Within 100 ms: Burst 100 plus at most 100 refilled; every goroutine
	// reaches the last instant, so the bucket ends drained there.
	require.LessOrEqual(t, admitted.Load(), int64(200))
	require.Equal(t, 0, l.Peek(t0.Add(100*time.Millisecond-50*time.Microsecond), 0).Remaining)
}

func TestErrorsAreSentinels(t *testing.T) {
	_, err := tokenbucket.New(tokenbucket.Config{})
	require.True(t, errors.Is(err, ratekit.ErrInvalidConfig))
}

func TestZeroAllocs(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 7, Window: 10 * time.Millisecond, Burst: 3, Name: "odd"})
	now := time.Now()
	for name, f := range map[string]func(){
		"Take":   func() { now = now.Add(time.Millisecond); l.Take(now, 1) },
		"Denied": func() { l.Take(now, 3) },
		"Peek":   func() { l.Peek(now, 2) },
		"Refund": func() { l.Refund(now, 1) },
		"Idle":   func() { l.Idle(now) },
		"Allow":  func() { l.Allow() },
		"AllowN": func() { l.AllowN(2) },
	} {
		if allocs := testing.AllocsPerRun(100, f); allocs != 0 {
			t.Errorf("%s allocates %v times per call; want 0", name, allocs)
		}
	}
}

func TestAllowRealClock(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 2})
	require.True(t, l.AllowN(0))
	require.True(t, l.Allow())
	require.False(t, l.AllowN(2))
	require.True(t, l.AllowN(1))
	require.False(t, l.Allow())
	require.False(t, l.AllowN(3), "more than Burst")
	require.False(t, l.AllowN(-1))
	d := l.Take(time.Now(), 1)
	require.False(t, d.Allowed)
	// The Take reads the clock after the Allows did: an hour at most.
	require.Positive(t, d.RetryAfter)
	require.LessOrEqual(t, d.RetryAfter, time.Hour, "Allow reads the real clock")
}

// TestAllowRealClockConcurrent: goroutines calling Allow and AllowN on the
// real clock, while Reconfigure keeps replacing the state's block (same
// rate, so every replacement seals the block and carries the TAT), admit
// exactly Burst: nothing refills within the test at one unit an hour. It
// drives Allow's lost compare-and-swaps and sealed blocks into allowAt.
func TestAllowRealClockConcurrent(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1000}
	l := mustNew(t, cfg)
	var admitted, replaced atomic.Int64
	var wg, rwg sync.WaitGroup
	stop := make(chan struct{})
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if err := l.Reconfigure(cfg); err != nil {
					t.Error(err)
					return
				}
				replaced.Add(1)
			}
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 600 {
				if g%2 == 0 && l.Allow() {
					admitted.Add(1)
				} else if g%2 == 1 && l.AllowN(1) {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	t.Logf("%d replacements", replaced.Load())
	require.Equal(t, int64(cfg.Burst), admitted.Load())
	require.False(t, l.Allow())
}
