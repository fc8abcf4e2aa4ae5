package rolling_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
)

// TestNewSharesParams: New with equal Configs shares one parameter set (an
// OnLimitReached compared by identity, the Clock as an interface value),
// so that a factory calling New per key costs what a Template's limiter
// does; Configs that differ in anything do not share, and sharing
// parameters is sharing nothing else.
func TestNewSharesParams(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	hook := func(ratekit.Decision) {}
	cfg := rolling.Config{Limit: 3, Window: time.Minute, Name: "per-user", Clock: mock, OnLimitReached: hook}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.NotSame(t, a, b)
	require.True(t, rolling.SameParams(a, b), "equal Configs share")
	require.True(t, rolling.SameParams(a, mustTemplate(t, cfg).New()), "a Template's limiters are New's")

	other := clock.NewMock()
	other.Set(t0)
	for name, c := range map[string]rolling.Config{
		"Limit":          {Limit: 4, Window: time.Minute, Name: "per-user", Clock: mock, OnLimitReached: hook},
		"Window":         {Limit: 3, Window: time.Hour, Name: "per-user", Clock: mock, OnLimitReached: hook},
		"Name":           {Limit: 3, Window: time.Minute, Name: "per-org", Clock: mock, OnLimitReached: hook},
		"Clock":          {Limit: 3, Window: time.Minute, Name: "per-user", Clock: other, OnLimitReached: hook},
		"OnLimitReached": {Limit: 3, Window: time.Minute, Name: "per-user", Clock: mock, OnLimitReached: func(ratekit.Decision) {}},
		"no hook":        {Limit: 3, Window: time.Minute, Name: "per-user", Clock: mock},
	} {
		l := mustNew(t, c)
		require.False(t, rolling.SameParams(a, l), name)
		require.Equal(t, c.Limit, l.Peek(t0, 0).Limit, name)
		require.Equal(t, c.Name, l.Peek(t0, 0).Policy, name)
	}

	// Shared parameters, separate states.
	require.True(t, a.Take(t0, 3).Allowed)
	require.False(t, a.Take(t0, 1).Allowed)
	require.Equal(t, 3, b.Peek(t0, 0).Remaining)
	require.True(t, b.Idle(t0))
	require.Equal(t, 3, mustNew(t, cfg).Peek(t0, 0).Remaining)
}

// TestNewMemory: New per key costs a 32-byte limiter, one allocation, its
// parameters shared (#17: no more per key than a Template's).
func TestNewMemory(t *testing.T) {
	cfg := rolling.Config{Limit: 600, Window: time.Minute, Name: "per-key", OnLimitReached: func(ratekit.Decision) {}}
	mustNew(t, cfg) // interned once
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { _, _ = rolling.New(cfg) }))
	perKey := conformance.BytesPer(100_000, func() *rolling.Limiter {
		l, _ := rolling.New(cfg)
		return l
	})
	t.Logf("%.1f bytes per New limiter", perKey)
	require.LessOrEqual(t, perKey, 33.0)
}

// TestInternBounded: distinct Configs beyond the intern table's bound do
// not grow it without end (a Config per key, say named by its key), and
// every limiter still decides by its own Config.
func TestInternBounded(t *testing.T) {
	var ls []*rolling.Limiter
	for i := range cell.MaxInterned + 100 {
		ls = append(ls, mustNew(t, rolling.Config{Limit: 1 + i%7, Window: time.Second, Name: fmt.Sprint(i)}))
	}
	require.LessOrEqual(t, rolling.Interned(), cell.MaxInterned)
	for i, l := range ls {
		require.Equal(t, 1+i%7, l.Peek(t0, 0).Limit)
		require.Equal(t, fmt.Sprint(i), l.Peek(t0, 0).Policy)
	}
}

// unhashableClock is a clock.Clock whose dynamic value cannot be a map key.
type unhashableClock struct {
	clock.Clock
	tags []string
}

// TestNewUnhashableClock: a Config whose Clock cannot be hashed is not
// interned, and New neither panics nor fails.
func TestNewUnhashableClock(t *testing.T) {
	cfg := rolling.Config{Limit: 2, Window: time.Second, Clock: unhashableClock{Clock: clock.NewMock(), tags: []string{"x"}}}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.False(t, rolling.SameParams(a, b))
	require.True(t, a.Take(t0, 2).Allowed)
	require.False(t, a.Take(t0, 1).Allowed)
	require.True(t, b.Take(t0, 2).Allowed)
}

// TestReconfigureLeavesSiblings: a limiter's Reconfigure moves its state
// to parameters of the new Config, out of its inline block; its siblings,
// which shared its old parameters, are as they were, and a Reconfigure to
// the Config it has already changes nothing, in place.
func TestReconfigureLeavesSiblings(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	cfg := rolling.Config{Limit: 3, Window: time.Minute, Name: "a", Clock: mock}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.True(t, a.Take(t0, 2).Allowed)
	require.True(t, rolling.InFirstCell(a), "the window opened in place")
	require.NoError(t, a.Reconfigure(cfg))
	require.True(t, rolling.InFirstCell(a), "the same Config: in place")
	require.True(t, rolling.SameParams(a, b))

	require.NoError(t, a.Reconfigure(rolling.Config{Limit: 5, Window: time.Minute, Name: "b", Clock: mock}))
	require.False(t, rolling.InFirstCell(a))
	require.False(t, rolling.SameParams(a, b))
	require.Equal(t, 3, a.Peek(t0.Add(time.Second), 0).Remaining, "the window and its count carried over")
	require.Equal(t, "b", a.Config().Name)
	require.Equal(t, cfg, b.Config())
	require.True(t, b.Idle(t0))
	require.Equal(t, 3, b.Peek(t0, 0).Remaining)
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
