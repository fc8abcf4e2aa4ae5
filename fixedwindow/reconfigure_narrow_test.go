package fixedwindow_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/fixedwindow"
)

// TestReconfigureThroughNarrowWindowKeepsUnits: units taken stay counted
// whatever limits Reconfigure sets and unsets. A day's window counts up to
// 2^48 (a terabyte a day fits), a second's up to 2^32: its word spends the
// other bits on windows enough to span MinSpan. Reconfigured to a second's
// window and back, a day's window that had taken more than a second's
// field holds must still count all of it. The count was capped at the
// second's field, and the units above the cap came back, to be admitted
// again (4,294,967,298 here); now a capped count fills the day's field,
// until the day ends.
func TestReconfigureThroughNarrowWindowKeepsUnits(t *testing.T) {
	need64(t)
	mock := clock.NewMock()
	mock.Set(t0)
	daily := fixedwindow.Config{Limit: wide(1 << 40), Window: 24 * time.Hour, Clock: mock}
	perSecond := fixedwindow.Config{Limit: 10, Window: time.Second, Clock: mock}
	l := mustNew(t, daily)
	taken := wide(1 << 33) // above a second's field
	require.True(t, l.Take(t0, taken).Allowed)
	want := l.Peek(t0, 0).Remaining
	require.NoError(t, l.Reconfigure(perSecond))
	require.NoError(t, l.Reconfigure(daily))
	require.LessOrEqual(t, l.Peek(t0, 0).Remaining, want,
		"%d units taken in a day's window, reconfigured to a second's and back: Remaining", taken)
	require.True(t, l.Peek(t0.Add(24*time.Hour), wide(1<<40)).Allowed, "the next day's window is empty")
}

// TestMarshalKeepsCutCount: a count cut to a narrower field by Reconfigure
// (see TestReconfigureThroughNarrowWindowKeepsUnits) may stand for more than
// it says, and MarshalBinary must not save it as exact. Saved under the
// second's window and restored into a day's, the count read as itself gave
// back the units above the second's field, which the live limiter,
// reconfigured back to the day's window, still counts.
func TestMarshalKeepsCutCount(t *testing.T) {
	need64(t)
	mock := clock.NewMock()
	mock.Set(t0)
	daily := fixedwindow.Config{Limit: wide(1 << 40), Window: 24 * time.Hour, Clock: mock}
	perSecond := fixedwindow.Config{Limit: 10, Window: time.Second, Clock: mock}
	l := mustNew(t, daily)
	require.True(t, l.Take(t0, wide(1<<33)).Allowed)
	require.NoError(t, l.Reconfigure(perSecond))
	b, err := l.MarshalBinary()
	require.NoError(t, err)

	second := mustNew(t, perSecond)
	require.NoError(t, second.UnmarshalBinary(b))
	require.Equal(t, l.Peek(t0, 1), second.Peek(t0, 1), "restored under the Config it was saved under")

	require.NoError(t, l.Reconfigure(daily))
	day := mustNew(t, daily)
	require.NoError(t, day.UnmarshalBinary(b))
	require.LessOrEqual(t, day.Peek(t0, 0).Remaining, l.Peek(t0, 0).Remaining,
		"restored into a day's window: Remaining, against the live limiter reconfigured back")
	require.Equal(t, l.Peek(t0, 1).Allowed, day.Peek(t0, 1).Allowed)
	require.True(t, day.Peek(t0.Add(24*time.Hour), wide(1<<40)).Allowed, "the next day's window is empty")

	// Saved again from the restored limiter, the count is still cut.
	b2, err := second.MarshalBinary()
	require.NoError(t, err)
	again := mustNew(t, daily)
	require.NoError(t, again.UnmarshalBinary(b2))
	require.LessOrEqual(t, again.Peek(t0, 0).Remaining, l.Peek(t0, 0).Remaining)
}
