package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestCounterReconfigureThroughHookKeepsUnits: units taken stay counted
// whatever limits Reconfigure sets and unsets. A Counter of a day's Window
// without OnLimitReached counts up to MaxCounterLimit; one with the hook
// keeps a bit for its mark and counts up to MaxCounterLimitWithHook, half
// as much. Reconfigured through a hooked Config (with a low Limit) and
// back, a Counter that had taken more than the hooked layout holds must
// still count all of it. It capped its counts at the hooked field, and
// the units above the cap came back, to be admitted again (1000 here);
// now a count at the cap reads as a full field in a wider one.
func TestCounterReconfigureThroughHookKeepsUnits(t *testing.T) {
	const window = 24 * time.Hour
	big, small := slidingwindow.MaxCounterLimit(window), slidingwindow.MaxCounterLimitWithHook(window)
	require.Greater(t, big, small+1000, "the hook halves a day's field")
	clk := clock.NewMock()
	clk.Set(fuzzStart)
	plain := slidingwindow.Config{Limit: big, Window: window, Clock: clk}
	hooked := slidingwindow.Config{Limit: 10, Window: window, Clock: clk, OnLimitReached: func(ratekit.Decision) {}}
	c, err := slidingwindow.NewCounter(plain)
	require.NoError(t, err)
	taken := small + 1000
	require.True(t, c.Take(fuzzStart, taken).Allowed)
	want := c.Peek(fuzzStart, 0).Remaining // big - taken
	require.NoError(t, c.Reconfigure(hooked))
	require.False(t, c.Peek(fuzzStart, 1).Allowed, "over-full under the lower Limit")
	require.NoError(t, c.Reconfigure(plain))
	require.LessOrEqual(t, c.Peek(fuzzStart, 0).Remaining, want,
		"%d units taken, reconfigured through a hooked Config and back: Remaining", taken)
	// What the hooked field could not hold counts as a full field: no more
	// than two Windows of under-admission.
	require.True(t, c.Peek(fuzzStart.Add(2*window), big).Allowed, "two Windows on, the Counter is empty")
}

// TestCounterMarshalKeepsCutCount: a count cut to a hooked Config's
// narrower field (see TestCounterReconfigureThroughHookKeepsUnits) may
// stand for more than it says, and MarshalBinary must not save it as
// exact. Saved under the hooked Config and restored into a plain one, the
// count read as itself gave back the units above the hooked field, which
// the live Counter, reconfigured back, still counts. Version 1 cannot say
// so (a count above a field is corrupt), so such a state is version 2,
// or version 3 (which carries the cut flags too) when, as here, the Limit
// also went down.
func TestCounterMarshalKeepsCutCount(t *testing.T) {
	const window = 24 * time.Hour
	big, small := slidingwindow.MaxCounterLimit(window), slidingwindow.MaxCounterLimitWithHook(window)
	clk := clock.NewMock()
	clk.Set(fuzzStart)
	plain := slidingwindow.Config{Limit: big, Window: window, Clock: clk}
	hooked := slidingwindow.Config{Limit: 10, Window: window, Clock: clk, OnLimitReached: func(ratekit.Decision) {}}
	c, err := slidingwindow.NewCounter(plain)
	require.NoError(t, err)
	require.True(t, c.Take(fuzzStart, small+1000).Allowed)
	require.NoError(t, c.Reconfigure(hooked))
	b, err := c.MarshalBinary()
	require.NoError(t, err)

	h, err := slidingwindow.NewCounter(hooked)
	require.NoError(t, err)
	require.NoError(t, h.UnmarshalBinary(b))
	require.Equal(t, c.Peek(fuzzStart, 1), h.Peek(fuzzStart, 1), "restored under the Config it was saved under")

	require.NoError(t, c.Reconfigure(plain))
	r, err := slidingwindow.NewCounter(plain)
	require.NoError(t, err)
	require.NoError(t, r.UnmarshalBinary(b))
	require.LessOrEqual(t, r.Peek(fuzzStart, 0).Remaining, c.Peek(fuzzStart, 0).Remaining,
		"restored into the plain Config: Remaining, against the live Counter reconfigured back")
	require.True(t, r.Peek(fuzzStart.Add(2*window), big).Allowed, "two Windows on, the Counter is empty")

	// Saved again from the hooked restore, the count is still cut.
	b2, err := h.MarshalBinary()
	require.NoError(t, err)
	r2, err := slidingwindow.NewCounter(plain)
	require.NoError(t, err)
	require.NoError(t, r2.UnmarshalBinary(b2))
	require.LessOrEqual(t, r2.Peek(fuzzStart, 0).Remaining, c.Peek(fuzzStart, 0).Remaining)

	// A state with no cut count stays version 1, as before version 2.
	p, err := slidingwindow.NewCounter(plain)
	require.NoError(t, err)
	p.Take(fuzzStart, 5)
	b3, err := p.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(1), b3[3], "format version of an exact state")
	require.Equal(t, byte(3), b[3], "format version of a cut state whose Limit went down")
}

// TestCounterUnmarshalRejectsBadCut: a version 2 state must say which
// counts are cut, with known flags; a version 3 must have its field of
// what a forgotten window holds; a version 4 is refused by name.
func TestCounterUnmarshalRejectsBadCut(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(fuzzStart)
	cfg := slidingwindow.Config{Limit: 10, Window: time.Hour, Clock: clk, OnLimitReached: func(ratekit.Decision) {}}
	c, err := slidingwindow.NewCounter(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Reconfigure(slidingwindow.Config{Limit: 10, Window: time.Hour, Clock: clk}))
	require.True(t, c.Take(fuzzStart, 3).Allowed)
	good, err := c.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(1), good[3])
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"v2 without flags", append([]byte{'r', 'k', good[2], 2}, good[4:]...)},
		{"v2 flags 0", append(append([]byte{'r', 'k', good[2], 2}, good[4:]...), 0)},
		{"v2 flags 8", append(append([]byte{'r', 'k', good[2], 2}, good[4:]...), 8)}, // 4 is cutLast
		{"v3", append(append([]byte{'r', 'k', good[2], 3}, good[4:]...), 1)},
	} {
		l, err := slidingwindow.NewCounter(cfg)
		require.NoError(t, err)
		require.True(t, l.Take(fuzzStart, 1).Allowed)
		err = l.UnmarshalBinary(tc.b)
		require.ErrorIs(t, err, ratekit.ErrInvalidState, tc.name)
		require.Equal(t, 9, l.Peek(fuzzStart, 0).Remaining, "%s: a rejected state changed the Counter", tc.name)
	}
	v4 := append(append([]byte{'r', 'k', good[2], 4}, good[4:]...), 1)
	l, err := slidingwindow.NewCounter(cfg)
	require.NoError(t, err)
	require.ErrorContains(t, l.UnmarshalBinary(v4), "format version 4, this build reads 1, 2 and 3")
}
