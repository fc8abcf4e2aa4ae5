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
