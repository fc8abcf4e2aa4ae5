package fixedwindow_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
)

// mustTemplate returns a Template of cfg, its epoch placed at t0 unless cfg
// sets a Clock (as mustNew does).
func mustTemplate(tb testing.TB, cfg fixedwindow.Config) *fixedwindow.Template {
	tb.Helper()
	if cfg.Clock == nil {
		cfg.Clock = atT0
	}
	tmpl, err := fixedwindow.NewTemplate(cfg)
	require.NoError(tb, err)
	return tmpl
}

// drain uses up l's window at t0 and sets its OnLimitReached flag, if any.
func drain(tb testing.TB, l *fixedwindow.Limiter) {
	tb.Helper()
	require.True(tb, l.Take(t0, l.Config().Limit).Allowed)
	require.False(tb, l.Take(t0, 1).Allowed)
}

// TestTemplateDecidesAsNew: a Template's New is New of its Config (the
// conformance suite runs on New), so its limiters decide as New's do.
func TestTemplateDecidesAsNew(t *testing.T) {
	cfg := fixedwindow.Config{Limit: 3, Window: time.Hour, Offset: -5*time.Hour - 30*time.Minute, Name: "ist"}
	tmpl := mustTemplate(t, cfg)
	require.Equal(t, cfg.Limit, tmpl.Config().Limit)
	require.Equal(t, cfg.Offset, tmpl.Config().Offset)
	a, b := tmpl.New(), mustNew(t, cfg)
	for i := range 200 {
		now := t0.Add(time.Duration(i) * 7 * time.Minute)
		n := i % 3
		require.Equal(t, b.Peek(now, n), a.Peek(now, n), "Peek %d", i)
		require.Equal(t, b.Take(now, n), a.Take(now, n), "Take %d", i)
		if i%5 == 0 {
			a.Refund(now, 1)
			b.Refund(now, 1)
		}
		require.Equal(t, b.Idle(now), a.Idle(now))
	}
	// Windows from half past the hour: t0 (13:01:07 UTC) is in 12:30-13:30.
	require.Equal(t, time.Date(2026, 3, 18, 13, 30, 0, 0, time.UTC), t0.Add(tmpl.New().Take(t0, 1).ResetAfter))
}

// TestTemplateOnLimitReachedPerLimiter: the "once per window" of
// OnLimitReached is each limiter's own. Two limiters of one Template each
// call it once per window, however many Takes race on each.
func TestTemplateOnLimitReachedPerLimiter(t *testing.T) {
	var calls atomic.Int64
	tmpl := mustTemplate(t, fixedwindow.Config{Limit: 5, Window: time.Minute,
		OnLimitReached: func(ratekit.Decision) { calls.Add(1) }})
	a, b := tmpl.New(), tmpl.New()
	for m := range 5 {
		now := t0.Add(time.Duration(m) * time.Minute)
		var wg sync.WaitGroup
		for g := range 4 {
			l := []*fixedwindow.Limiter{a, b}[g%2]
			wg.Go(func() {
				for range 25 {
					l.Take(now, 1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 2*(m+1), calls.Load(), "minute %d: once per limiter", m)
	}
	// One limiter's notice leaves the other's to come.
	now := t0.Add(5 * time.Minute)
	require.False(t, a.Take(t0, 1).Allowed, "stale")
	require.EqualValues(t, 10, calls.Load(), "a stale Take does not notify")
	require.True(t, a.Take(now, 5).Allowed)
	require.False(t, a.Take(now, 1).Allowed)
	require.False(t, a.Take(now, 1).Allowed)
	require.EqualValues(t, 11, calls.Load())
	require.True(t, b.Take(now, 5).Allowed)
	require.False(t, b.Take(now, 1).Allowed)
	require.EqualValues(t, 12, calls.Load())
}

// TestTemplateLimitersAreIndependent: limiters of one Template share their
// parameters and nothing else, and Reconfigure or UnmarshalBinary of one
// leaves the others, and the Template, as they were.
func TestTemplateLimitersAreIndependent(t *testing.T) {
	fixedwindow.ResetInterned()
	cfg := fixedwindow.Config{Limit: 10, Window: time.Minute, Name: "api"}
	tmpl := mustTemplate(t, cfg)
	a, b, c := tmpl.New(), tmpl.New(), tmpl.New()
	require.True(t, fixedwindow.SameParams(a, b))
	require.True(t, fixedwindow.SameParams(b, c))

	require.Equal(t, 7, a.Take(t0, 3).Remaining)
	require.Equal(t, 9, b.Take(t0, 1).Remaining)
	require.Equal(t, 10, c.Peek(t0, 0).Remaining)

	// Reconfigure gives a parameters of its own.
	require.NoError(t, a.Reconfigure(fixedwindow.Config{Limit: 4, Window: time.Minute, Name: "low"}))
	require.False(t, fixedwindow.SameParams(a, b))
	require.True(t, fixedwindow.SameParams(b, c))
	dec := a.Take(t0, 1)
	require.Equal(t, "low", dec.Policy)
	require.Equal(t, 0, dec.Remaining, "a's count of 3 carried over")
	require.Equal(t, cfg.Name, b.Config().Name)
	require.Equal(t, cfg.Name, tmpl.Config().Name)
	require.Equal(t, 9, b.Peek(t0, 0).Remaining, "b is unchanged by a")
	require.Equal(t, 10, tmpl.New().Peek(t0, 0).Remaining, "new limiters are fresh, with the Template's Config")

	// UnmarshalBinary of b's state into c: c gets b's count, b keeps its
	// own, and c keeps the shared parameters.
	saved, err := b.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, c.UnmarshalBinary(saved))
	require.True(t, fixedwindow.SameParams(b, c))
	require.Equal(t, 9, c.Peek(t0, 0).Remaining)
	require.Equal(t, 8, c.Take(t0, 1).Remaining)
	require.Equal(t, 9, b.Peek(t0, 0).Remaining, "b is unchanged by c")

	// A state of New's limiter restores into a Template's as into New's.
	n := mustNew(t, cfg)
	n.Take(t0, 6)
	saved, err = n.MarshalBinary()
	require.NoError(t, err)
	d := tmpl.New()
	require.NoError(t, d.UnmarshalBinary(saved))
	require.True(t, fixedwindow.SameParams(b, d))
	require.Equal(t, n.Take(t0, 1), d.Take(t0, 1))
}

// TestTemplateUnmarshalWideCount: a restored count too wide for the shared
// parameters' count field (a count saved under a higher Limit) gives the
// limiter parameters of its own, and it decides as New's limiter would.
func TestTemplateUnmarshalWideCount(t *testing.T) {
	cfg := fixedwindow.Config{Limit: 10, Window: time.Minute, OnLimitReached: func(ratekit.Decision) {}}
	tmpl := mustTemplate(t, cfg)
	a, b := tmpl.New(), tmpl.New()
	wide := state(1, t0.Unix()-7, 0, uint64(time.Minute), 1000) // 1000 units at 13:01:00
	require.NoError(t, a.UnmarshalBinary(wide))
	require.False(t, fixedwindow.SameParams(a, b))
	n := mustNew(t, cfg)
	require.NoError(t, n.UnmarshalBinary(wide))
	for _, at := range []time.Time{t0, t0.Add(time.Minute)} {
		for _, k := range []int{0, 1, 10} {
			require.Equal(t, n.Peek(at, k), a.Peek(at, k))
		}
	}
	require.Equal(t, 10, b.Peek(t0, 0).Remaining, "b is unchanged by a")
	drain(t, b)
	require.Equal(t, n.Take(t0, 1), a.Take(t0, 1))
}

// TestTemplateConcurrentReplacements: Reconfigure and UnmarshalBinary of
// one limiter racing Takes on it and on its siblings; the siblings see
// none of it.
func TestTemplateConcurrentReplacements(t *testing.T) {
	fixedwindow.ResetInterned()
	cfg := fixedwindow.Config{Limit: 40, Window: time.Hour}
	tmpl := mustTemplate(t, cfg)
	a, b := tmpl.New(), tmpl.New()
	saved, err := tmpl.New().MarshalBinary()
	require.NoError(t, err)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var admittedB int
	for g := range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if d := a.Take(t0, 1); d.Remaining < 0 || d.Remaining > 40 {
					t.Errorf("Take: %v", d)
				}
				if g == 0 && b.Take(t0, 1).Allowed {
					admittedB++
				}
			}
		})
	}
	for i := range 200 {
		if i%2 == 0 {
			require.NoError(t, a.UnmarshalBinary(saved))
		} else {
			require.NoError(t, a.Reconfigure(fixedwindow.Config{Limit: 20 + i%21, Window: time.Hour}))
		}
	}
	close(stop)
	wg.Wait()
	require.Equal(t, 40-min(admittedB, 40), b.Peek(t0, 0).Remaining)
	require.Equal(t, cfg.Limit, b.Config().Limit)
	require.True(t, fixedwindow.SameParams(b, tmpl.New()))
}

// TestTemplateMemory: a Template's limiter is one 32-byte allocation, and
// its hot path allocates nothing.
func TestTemplateMemory(t *testing.T) {
	require.EqualValues(t, 32, unsafe.Sizeof(fixedwindow.Limiter{}))
	tmpl := mustTemplate(t, fixedwindow.Config{Limit: 60, Window: time.Minute, OnLimitReached: func(ratekit.Decision) {}})
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { tmpl.New() }))
	l := tmpl.New()
	require.Zero(t, testing.AllocsPerRun(100, func() {
		l.Take(t0, 1)
		l.Peek(t0, 1)
		l.Refund(t0, 1)
		l.Idle(t0)
	}))

	perLimiter := conformance.BytesPer(100_000, tmpl.New)
	t.Logf("%.1f bytes per Template limiter", perLimiter)
	require.LessOrEqual(t, perLimiter, 33.0)
}

// TestNewMemory: New per key, with one Config, costs what a Template's New
// does: one 32-byte allocation, the parameters shared, the state inline.
func TestNewMemory(t *testing.T) {
	cfg := fixedwindow.Config{Limit: 60, Window: time.Minute, Clock: atT0, OnLimitReached: func(ratekit.Decision) {}}
	mustNew(t, cfg)
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { _, _ = fixedwindow.New(cfg) }))
	perNew := conformance.BytesPer(100_000, func() *fixedwindow.Limiter {
		l, _ := fixedwindow.New(cfg)
		return l
	})
	t.Logf("%.1f bytes per New limiter", perNew)
	require.LessOrEqual(t, perNew, 33.0)
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.True(t, fixedwindow.SameParams(a, b))
	require.True(t, fixedwindow.Inline(a))
}
