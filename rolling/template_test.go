package rolling_test

import (
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
)

func mustTemplate(tb testing.TB, cfg rolling.Config) *rolling.Template {
	tb.Helper()
	tmpl, err := rolling.NewTemplate(cfg)
	require.NoError(tb, err)
	return tmpl
}

// TestTemplateDecidesAsNew: a Template's New is New of its Config (the
// conformance suite runs on New), so its limiters decide as New's do.
func TestTemplateDecidesAsNew(t *testing.T) {
	for _, cfg := range []rolling.Config{
		{Limit: 5, Window: time.Second, Name: "5PerSecond"},
		{Limit: 4, Window: time.Hour, Name: "hooked", OnLimitReached: func(ratekit.Decision) {}},
	} {
		tmpl := mustTemplate(t, cfg)
		require.Equal(t, cfg.Limit, tmpl.Config().Limit)
		a, b := tmpl.New(), mustNewT(t, cfg)
		for i := range 300 {
			now := conformance.DefaultStart.Add(time.Duration(i) * 170 * time.Millisecond)
			n := i % 3
			require.Equal(t, b.Peek(now, n), a.Peek(now, n), "Peek %d", i)
			require.Equal(t, b.Take(now, n), a.Take(now, n), "Take %d", i)
			if i%7 == 0 {
				a.Refund(now, 1)
				b.Refund(now, 1)
			}
			require.Equal(t, b.Idle(now), a.Idle(now))
		}
	}
}

func mustNewT(tb testing.TB, cfg rolling.Config) *rolling.Limiter {
	tb.Helper()
	l, err := rolling.New(cfg)
	require.NoError(tb, err)
	return l
}

func TestTemplateBadConfig(t *testing.T) {
	bad := []rolling.Config{
		{Limit: 0, Window: time.Second},
		{Limit: 1, Window: -time.Second},
	}
	if math.MaxInt > rolling.MaxLimit { // 64-bit: an int can exceed MaxLimit
		bad = append(bad, rolling.Config{Limit: wide(rolling.MaxLimit + 1), Window: time.Second})
	}
	for _, cfg := range bad {
		tmpl, err := rolling.NewTemplate(cfg)
		require.ErrorIs(t, err, ratekit.ErrInvalidConfig)
		require.Nil(t, tmpl)
	}
}

// TestTemplateLimitersAreIndependent: limiters of one Template share their
// parameters and nothing else (windows, counts, OnLimitReached marks), and
// Reconfigure or UnmarshalBinary of one leaves the others, and the
// Template, as they were.
func TestTemplateLimitersAreIndependent(t *testing.T) {
	rolling.ResetInterned()
	var hits []string
	cfg := rolling.Config{Limit: 3, Window: time.Minute, Name: "token",
		OnLimitReached: func(d ratekit.Decision) { hits = append(hits, d.Policy) }}
	tmpl := mustTemplate(t, cfg)
	a, b := tmpl.New(), tmpl.New()
	require.NotSame(t, a, b)
	require.True(t, rolling.SameParams(a, b))
	require.Equal(t, cfg.Limit, tmpl.Config().Limit)
	require.Equal(t, cfg.Window, tmpl.Config().Window)

	require.True(t, a.Take(t0, 3).Allowed)
	require.False(t, a.Take(t0.Add(time.Second), 1).Allowed)
	require.False(t, a.Take(t0.Add(2*time.Second), 1).Allowed)
	require.Equal(t, []string{"token"}, hits, "once per window of a")
	require.True(t, b.Idle(t0))
	require.Equal(t, 3, b.Peek(t0, 0).Remaining, "b has no window open")
	require.True(t, b.Take(t0.Add(10*time.Second), 3).Allowed)
	require.False(t, b.Take(t0.Add(10*time.Second), 1).Allowed)
	require.Equal(t, []string{"token", "token"}, hits, "b's window has its own mark")
	require.Equal(t, 10*time.Second, a.Peek(t0.Add(50*time.Second), 1).RetryAfter)
	require.Equal(t, 20*time.Second, b.Peek(t0.Add(50*time.Second), 1).RetryAfter)

	// Reconfigure gives a parameters of its own, and leaves b and the
	// Template's new limiters as they were.
	require.NoError(t, a.Reconfigure(rolling.Config{Limit: 10, Window: time.Hour, Name: "upgraded"}))
	require.False(t, rolling.SameParams(a, b), "a has parameters of its own")
	d := a.Take(t0.Add(time.Minute), 1)
	require.True(t, d.Allowed, "the window of a now runs an hour, to 10")
	require.Equal(t, ratekit.Decision{Allowed: true, Limit: 10, Remaining: 6, Window: time.Hour,
		ResetAfter: 59 * time.Minute, Policy: "upgraded"}, d)
	require.Equal(t, "token", b.Peek(t0, 0).Policy)
	require.False(t, b.Take(t0.Add(time.Minute), 1).Allowed, "b keeps its window to 3")
	c := tmpl.New()
	require.True(t, rolling.SameParams(b, c))
	require.Equal(t, 3, c.Peek(t0, 0).Remaining)

	// Restoring a state keeps the shared parameters, and the first cell
	// when the window fits it.
	fresh := tmpl.New()
	now := time.Now()
	require.True(t, fresh.Take(now, 2).Allowed)
	state, err := fresh.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, c.UnmarshalBinary(state))
	require.True(t, rolling.SameParams(b, c))
	require.True(t, rolling.InFirstCell(c), "restored in place")
	require.Equal(t, fresh.Peek(now, 1), c.Peek(now, 1))
	require.True(t, c.Take(now, 1).Allowed)
	require.Equal(t, 1, fresh.Peek(now, 0).Remaining, "fresh is unchanged by c")

	// A restored count above Limit needs a wider count field, for that
	// window only: with its next window c is back on the shared parameters.
	// (c is a fresh limiter: one with a window open gets a refund mark on
	// parameters of its own, and the Refund below would give nothing back.)
	big := mustNew(t, rolling.Config{Limit: 1 << 20, Window: time.Minute})
	require.True(t, big.Take(t0, 1<<20).Allowed)
	state, err = big.MarshalBinary()
	require.NoError(t, err)
	c = tmpl.New()
	require.NoError(t, c.UnmarshalBinary(state))
	require.False(t, rolling.SameParams(b, c))
	require.Equal(t, ratekit.Decision{Limit: 3, Window: time.Minute, ResetAfter: 30 * time.Second,
		RetryAfter: 30 * time.Second, Policy: "token"}, c.Peek(t0.Add(30*time.Second), 1))
	c.Refund(t0.Add(30*time.Second), 1<<20-2) // down to 2: the same window, no new cell
	require.False(t, rolling.SameParams(b, c))
	require.Equal(t, 1, c.Peek(t0.Add(30*time.Second), 0).Remaining)
	require.True(t, c.Take(t0.Add(time.Minute), 3).Allowed)
	require.True(t, rolling.SameParams(b, c))
}

// TestTemplateFirstWindowInPlace: a Template's limiter opens its first
// window in place, at a time read just before it was made (as a Keyed's
// Take reads it before making the key's limiter), however long after the
// Template it is made, even at a Limit whose cells reach only 36 minutes.
func TestTemplateFirstWindowInPlace(t *testing.T) {
	tmpl := mustTemplate(t, rolling.Config{Limit: 1_000_000, Window: time.Hour})
	allocs := testing.AllocsPerRun(100, func() {
		now := time.Now()
		l := tmpl.New()
		l.Take(now, 1)
		l.Take(now.Add(30*time.Minute), 1)
		if !rolling.InFirstCell(l) {
			t.Fatal("the window did not open in the limiter's first cell")
		}
	})
	require.EqualValues(t, 1, allocs, "the Limiter alone")
}

// TestTemplateMemory measures a Template's limiter: 32 bytes, one
// allocation (New's: see TestNewMemory).
func TestTemplateMemory(t *testing.T) {
	require.EqualValues(t, 32, unsafe.Sizeof(rolling.Limiter{}))
	tmpl := mustTemplate(t, rolling.Config{Limit: 100, Window: time.Minute})
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { tmpl.New() }))

	perLimiter := conformance.BytesPer(100_000, tmpl.New)
	t.Logf("%.1f bytes per Template limiter", perLimiter)
	require.LessOrEqual(t, perLimiter, 33.0)

}
