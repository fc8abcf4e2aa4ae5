package rolling_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
)

// TestInterning: New shares parameters between the limiters of equal
// Configs, and only theirs (see conformance.Interning).
func TestInterning(t *testing.T) {
	mock, other := clock.NewMock(), clock.NewMock()
	mock.Set(t0)
	other.Set(t0)
	hook := func(ratekit.Decision) {}
	cfg := rolling.Config{Limit: 6, Window: time.Minute, Name: "per-user", Clock: mock, OnLimitReached: hook}
	with := func(f func(*rolling.Config)) rolling.Config { c := cfg; f(&c); return c }
	conformance.Interning[rolling.Config, *rolling.Limiter]{
		New: rolling.New, SameParams: rolling.SameParams, Interned: rolling.Interned, Start: t0,
		Config: cfg,
		Others: map[string]rolling.Config{
			"Limit":          with(func(c *rolling.Config) { c.Limit = 7 }),
			"Window":         with(func(c *rolling.Config) { c.Window = time.Hour }),
			"Name":           with(func(c *rolling.Config) { c.Name = "per-org" }),
			"Clock":          with(func(c *rolling.Config) { c.Clock = other }),
			"OnLimitReached": with(func(c *rolling.Config) { c.OnLimitReached = func(ratekit.Decision) {} }),
			"no hook":        with(func(c *rolling.Config) { c.OnLimitReached = nil }),
		},
		Numbered: func(i int) rolling.Config {
			return rolling.Config{Limit: 1 + i%7, Window: time.Second, Name: fmt.Sprint(i)}
		},
		Template: func(c rolling.Config) *rolling.Limiter { return mustTemplate(t, c).New() },
		Unhashable: &rolling.Config{Limit: 2, Window: time.Second,
			Clock: unhashableClock{Clock: clock.NewMock(), tags: []string{"x"}}},
		Reconfigure: (*rolling.Limiter).Reconfigure,
		Inline:      rolling.InFirstCell,
		Config2:     with(func(c *rolling.Config) { c.Limit, c.Name = 12, "b" }),
		PerKey:      33,
	}.Run(t)
}

// unhashableClock is a clock.Clock whose dynamic value cannot be a map key.
type unhashableClock struct {
	clock.Clock
	tags []string
}

// TestReconfigureSameConfig: a Reconfigure to the Config a limiter has
// changes nothing, in place: the window opened in the inline block stays
// there, on the shared parameters.
func TestReconfigureSameConfig(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	cfg := rolling.Config{Limit: 3, Window: time.Minute, Name: "a", Clock: mock}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.True(t, a.Take(t0, 2).Allowed)
	require.True(t, rolling.InFirstCell(a), "the window opened in place")
	require.NoError(t, a.Reconfigure(cfg))
	require.True(t, rolling.InFirstCell(a), "the same Config: in place")
	require.True(t, rolling.SameParams(a, b))
	require.Equal(t, 1, a.Peek(t0, 0).Remaining)
}

// TestRestoreMarkIsDropped: a restore into a limiter with a window open
// gives it parameters of its own that carry the refund mark (see
// UnmarshalBinary). Once a window opens after the mark, no Refund can
// reach the mark any more, and the limiter goes back to the parameters its
// Config shares: the private copy is not kept for good.
func TestRestoreMarkIsDropped(t *testing.T) {
	cfg := rolling.Config{Limit: 10, Window: time.Minute}
	l, sibling, saved := mustNew(t, cfg), mustNew(t, cfg), mustNew(t, cfg)
	require.True(t, saved.Take(t0, 10).Allowed)
	state, err := saved.MarshalBinary()
	require.NoError(t, err)
	require.True(t, l.Take(t0.Add(time.Second), 1).Allowed)
	require.NoError(t, l.UnmarshalBinary(state))
	require.False(t, rolling.SameParams(l, sibling), "marked: parameters of its own")

	// The mark holds while a window opens at or before it.
	l.Refund(t0.Add(time.Second), 1)
	require.False(t, l.Peek(t0.Add(time.Second), 1).Allowed)
	require.False(t, rolling.SameParams(l, sibling))

	// A window after the mark: shared parameters again, and a refund
	// stamped at the mark still gives nothing back.
	next := t0.Add(2 * time.Minute)
	require.True(t, l.Take(next, 4).Allowed)
	require.True(t, rolling.SameParams(l, sibling), "back on the shared parameters")
	l.Refund(t0.Add(time.Minute), 4)
	require.Equal(t, 6, l.Peek(next, 0).Remaining)
	l.Refund(next, 4)
	require.Equal(t, 10, l.Peek(next, 0).Remaining)
}
