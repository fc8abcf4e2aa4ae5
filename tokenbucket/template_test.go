package tokenbucket_test

import (
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/tokenbucket"
)

func mustTemplate(tb testing.TB, cfg tokenbucket.Config) *tokenbucket.Template {
	tb.Helper()
	tmpl, err := tokenbucket.NewTemplate(cfg)
	require.NoError(tb, err)
	return tmpl
}

// TestTemplateDecidesAsNew: a Template's New is New of its Config (the
// conformance suite runs on New), so its limiters decide as New's do.
func TestTemplateDecidesAsNew(t *testing.T) {
	for _, cfg := range []tokenbucket.Config{
		{Limit: 10, Window: time.Second, Burst: 10, Name: "api"},
		{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "fine"},
	} {
		cfg.Clock = atT0()
		tmpl := mustTemplate(t, cfg)
		require.Equal(t, cfg.Burst, tmpl.Config().Burst)
		a, b := tmpl.New(), mustNew(t, cfg)
		for i := range 300 {
			now := t0.Add(time.Duration(i) * 37 * time.Millisecond)
			n := i % 4
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

func TestTemplateBadConfig(t *testing.T) {
	tmpl, err := tokenbucket.NewTemplate(tokenbucket.Config{Limit: 1, Window: time.Second})
	require.ErrorIs(t, err, ratekit.ErrInvalidConfig)
	require.ErrorContains(t, err, "Burst")
	require.Nil(t, tmpl)
}

// TestTemplateLimitersAreIndependent: limiters of one Template share their
// parameters and nothing else, and Reconfigure or UnmarshalBinary of one
// leaves the others, and the Template, as they were.
func TestTemplateLimitersAreIndependent(t *testing.T) {
	tokenbucket.ResetInterned()
	cfg := tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 3, Name: "per-ip", Clock: atT0()}
	tmpl := mustTemplate(t, cfg)
	a, b := tmpl.New(), tmpl.New()
	require.NotSame(t, a, b)
	require.True(t, tokenbucket.SameParams(a, b))
	require.Equal(t, cfg, a.Config())

	require.True(t, a.Take(t0, 3).Allowed)
	require.False(t, a.Take(t0, 1).Allowed)
	require.Equal(t, 3, b.Peek(t0, 0).Remaining, "b is full")

	require.NoError(t, a.Reconfigure(tokenbucket.Config{Limit: 120, Window: time.Minute, Burst: 6, Clock: atT0()}))
	require.False(t, tokenbucket.SameParams(a, b), "a has parameters of its own")
	require.Equal(t, 3, b.Peek(t0, 0).Limit)
	require.Equal(t, cfg, b.Config())
	require.Equal(t, cfg, tmpl.Config())
	c := tmpl.New()
	require.True(t, tokenbucket.SameParams(b, c))
	require.Equal(t, 3, c.Peek(t0, 0).Remaining)

	// Restoring a state keeps the shared parameters (no new epoch needed).
	require.True(t, b.Take(t0, 2).Allowed)
	state, err := b.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, c.UnmarshalBinary(state))
	require.True(t, tokenbucket.SameParams(b, c))
	require.Equal(t, b.Peek(t0, 1), c.Peek(t0, 1))
	require.True(t, c.Take(t0, 1).Allowed)
	require.Equal(t, 1, b.Peek(t0, 0).Remaining, "b is unchanged by c")
}

// TestTemplateFineScaleMovesItsEpoch: at q = 999999937 the fast path covers
// 1.15 s either side of the epoch. Limiters made once the Template's epoch
// is over half that behind share fresh parameters, not the stale ones, and
// every limiter decides correctly either way.
func TestTemplateFineScaleMovesItsEpoch(t *testing.T) {
	mock := mockAt(t0)
	cfg := tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 10, Clock: mock}
	tmpl := mustTemplate(t, cfg)
	a := tmpl.New()
	mock.Add(500 * time.Millisecond) // under half the range: the epoch stays
	b := tmpl.New()
	require.True(t, tokenbucket.SameParams(a, b))
	mock.Add(200 * time.Millisecond) // 0.7 s: over half
	c, d := tmpl.New(), tmpl.New()
	require.False(t, tokenbucket.SameParams(a, c))
	require.True(t, tokenbucket.SameParams(c, d))

	later := t0.Add(time.Hour)
	for _, l := range []*tokenbucket.Limiter{a, b, c, d} {
		require.True(t, l.Take(later, 10).Allowed)
		dec := l.Take(later, 1)
		require.False(t, dec.Allowed)
		require.Equal(t, time.Duration(2), dec.RetryAfter, "one unit every 1.00000006 ns, rounded up")
	}

	// At q = 1 (any rate whose interval is whole nanoseconds) the range is
	// 36 years: New reads no clock and never moves the epoch.
	coarse := mustTemplate(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: mock})
	e := coarse.New()
	mock.Add(time.Hour)
	require.True(t, tokenbucket.SameParams(e, coarse.New()))
}

func TestTemplateMemory(t *testing.T) {
	require.EqualValues(t, 32, unsafe.Sizeof(tokenbucket.Limiter{}))
	tmpl := mustTemplate(t, tokenbucket.Config{Limit: 600, Window: time.Minute, Burst: 600})
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { tmpl.New() }))

	perLimiter := conformance.BytesPer(100_000, tmpl.New)
	t.Logf("%.1f bytes per Template limiter", perLimiter)
	require.LessOrEqual(t, perLimiter, 33.0)

	// New's limiters are the same: they share the parameters too.
	perNew := conformance.BytesPer(1000, func() *tokenbucket.Limiter {
		l, _ := tokenbucket.New(tmpl.Config())
		return l
	})
	t.Logf("%.1f bytes per New limiter", perNew)
	require.LessOrEqual(t, perNew, 33.0)
}
