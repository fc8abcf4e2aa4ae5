package fixedwindow_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
)

// TestInterning: New shares parameters between the limiters of equal
// Configs, an OnLimitReached compared by identity, and never between
// Configs that decide or notify differently (see conformance.Interning).
func TestInterning(t *testing.T) {
	hook := func(ratekit.Decision) {}
	cfg := fixedwindow.Config{Limit: 7, Window: time.Minute, Name: "share", Clock: atT0, OnLimitReached: hook}
	with := func(f func(*fixedwindow.Config)) fixedwindow.Config { c := cfg; f(&c); return c }
	conformance.Interning[fixedwindow.Config, *fixedwindow.Limiter]{
		New: fixedwindow.New, SameParams: fixedwindow.SameParams, Interned: fixedwindow.Interned, Start: t0,
		Config: cfg,
		Others: map[string]fixedwindow.Config{
			"Limit":          with(func(c *fixedwindow.Config) { c.Limit = 8 }),
			"Window":         with(func(c *fixedwindow.Config) { c.Window = time.Hour }),
			"Offset":         with(func(c *fixedwindow.Config) { c.Offset = time.Second }),
			"Name":           with(func(c *fixedwindow.Config) { c.Name = "other" }),
			"OnLimitReached": with(func(c *fixedwindow.Config) { c.OnLimitReached = func(ratekit.Decision) {} }),
			"no hook":        with(func(c *fixedwindow.Config) { c.OnLimitReached = nil }),
		},
		Numbered: func(i int) fixedwindow.Config {
			return fixedwindow.Config{Limit: 1 + i%7, Window: time.Second, Name: fmt.Sprint(i), Clock: atT0}
		},
		Template: func(c fixedwindow.Config) *fixedwindow.Limiter { return mustTemplate(t, c).New() },
	}.Run(t)
}

// TestNewRecentres: a New whose clock reads a time too far from the
// shared parameters' epoch for them to cover MinSpan either side of it
// gets new parameters, centred on its time, which later News share.
func TestNewRecentres(t *testing.T) {
	need64(t)
	mock := clock.NewMock()
	mock.Set(t0)
	// Limit 1<<31 with 1s windows: 2^30 windows either side, 34 years, so
	// the present may stray about 4 years from the epoch.
	cfg := fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second, Clock: mock}
	a := mustNew(t, cfg)
	mock.Add(365 * 24 * time.Hour)
	b := mustNew(t, cfg)
	require.True(t, fixedwindow.SameParams(a, b), "a year on: still covered")
	mock.Add(10 * 365 * 24 * time.Hour)
	c, d := mustNew(t, cfg), mustNew(t, cfg)
	require.False(t, fixedwindow.SameParams(a, c), "11 years on: recentred")
	require.True(t, fixedwindow.SameParams(c, d))
	// c tells windows apart 30 years after its New; a cannot.
	late := mock.Now().Add(fixedwindow.MinSpan)
	require.True(t, c.Take(late, 1).Allowed)
	require.True(t, c.Take(late.Add(time.Second), wide(1<<31)).Allowed, "the next window is a window of its own")
}

// TestNeverSealed: a Take refunded to nothing in the epoch window leaves a
// state that the old layout packed as 1<<63, cell.Sealed; a reader would
// then wait for a replacement that never comes. The state stays live.
func TestNeverSealed(t *testing.T) {
	for _, cfg := range []fixedwindow.Config{
		{Limit: 1, Window: time.Minute},
		{Limit: 60, Window: time.Minute, OnLimitReached: func(ratekit.Decision) {}},
		{Limit: wide(1 << 31), Window: time.Second},
		{Limit: 1 << 20, Window: time.Millisecond},
	} {
		l := mustNew(t, cfg)
		require.True(t, l.Take(t0, 1).Allowed)
		l.Refund(t0, 2) // more than was taken: stops at nothing
		require.False(t, fixedwindow.IsSealed(l), "%+v", cfg)
		require.True(t, l.Idle(t0))
		require.Equal(t, cfg.Limit, l.Peek(t0, 0).Remaining)
	}
}

// TestZeroLimiterRacingReconfigure: first configurations of a zero Limiter
// racing each other and Takes: one wins, and every Take decides under the
// zero Config or a whole one.
func TestZeroLimiterRacingReconfigure(t *testing.T) {
	for range 50 {
		var l fixedwindow.Limiter
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				cfg := fixedwindow.Config{Limit: 10 * (i + 1), Window: time.Minute, Clock: atT0}
				if err := l.Reconfigure(cfg); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				d := l.Take(t0, 1)
				if !(d.Limit == 0 && !d.Allowed || d.Limit > 0 && d.Allowed) {
					t.Errorf("%+v", d)
				}
			})
		}
		wg.Wait()
		require.Positive(t, l.Config().Limit)
		require.LessOrEqual(t, l.Peek(t0, 0).Remaining, l.Config().Limit)
	}
}
