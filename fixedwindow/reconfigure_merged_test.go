package fixedwindow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/fixedwindow"
)

// Past the span of its parameters (MinSpan), a limiter's windows merge
// into one that never ends, and "the limiter still never admits more than
// Limit in it". A Reconfigure must keep that count where a Take at the
// same far instant finds it: carried to the merged window's first window
// only, it lands in a window that ends under parameters of another span,
// and the same instant admits a Limit's worth again.
//
// A Limit of 2^31 with one-second windows spans 2^30 windows (34 years)
// either side of the epoch; 40 years on, a Take is in the merged window.

// TestReconfigureSameConfigKeepsMergedWindow: the clock has moved on 40
// years since the parameters were made, so Reconfigure with the very
// Config in force takes parameters centred on the present (as New would),
// which count the far window as a window of its own.
func TestReconfigureSameConfigKeepsMergedWindow(t *testing.T) {
	need64(t)
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.Add(40 * 8766 * time.Hour)
	clk := mockAt(t0)
	cfg := fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second, Clock: clk}
	l := mustNew(t, cfg)
	require.True(t, l.Take(far, wide(1<<31)).Allowed)
	d := l.Take(far, 1)
	require.False(t, d.Allowed, "the merged window is full")
	require.Equal(t, time.Duration(1<<63-1), d.RetryAfter, "the merged window never ends")

	clk.Set(far)
	require.NoError(t, l.Reconfigure(cfg))
	require.False(t, l.Take(far, 1).Allowed, "the same Config, the same instant: the 2^31 taken at it still count")
}

// TestRestoreKeepsMergedWindow: a state saved from the merged window,
// restored into a limiter of the same Config whose parameters were made
// 40 years later (New made them anew: the old ones no longer span MinSpan
// around the present), must not admit at the instant the saver denied.
func TestRestoreKeepsMergedWindow(t *testing.T) {
	need64(t)
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.Add(40 * 8766 * time.Hour)
	cfg := fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second, Clock: mockAt(t0)}
	l := mustNew(t, cfg)
	require.True(t, l.Take(far, wide(1<<31)).Allowed)
	b, err := l.MarshalBinary()
	require.NoError(t, err)

	cfg.Clock = mockAt(far)
	r := mustNew(t, cfg)
	require.False(t, fixedwindow.SameParams(l, r), "parameters made anew around the present")
	require.NoError(t, r.UnmarshalBinary(b))
	require.False(t, r.Take(far, 1).Allowed, "restored: 2^31 taken at this instant")
	require.False(t, r.Take(far.Add(-time.Hour), 1).Allowed, "restored: a stale instant")

	// Restored into its own limiter, the state is the merged window again.
	require.NoError(t, l.UnmarshalBinary(b))
	require.False(t, l.Take(far, 1).Allowed)
	b2, err := l.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, b2)
}

// TestReconfigureLowerLimitKeepsMergedWindow: a lower Limit has a
// narrower count field and so a wider span: the far instant is in a
// window of its own there. A Limit lowered to the count must deny every
// Take until the window ends, and this one never ends.
func TestReconfigureLowerLimitKeepsMergedWindow(t *testing.T) {
	need64(t)
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.Add(40 * 8766 * time.Hour)
	clk := mockAt(t0)
	l := mustNew(t, fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second, Clock: clk})
	require.True(t, l.Take(far, 1<<30).Allowed)

	require.NoError(t, l.Reconfigure(fixedwindow.Config{Limit: 1 << 30, Window: time.Second, Clock: clk}))
	require.False(t, l.Take(far, 1).Allowed, "2^30 taken at this instant, the Limit lowered to 2^30")
}

// TestReconfigureKeepsRestoreMarkOfMergedWindow: a restore marks the
// windows a Refund may no longer give units back in, the merged one
// included. Carried through a Reconfigure to parameters of another span,
// the mark must still cover the far instant: a Refund of a Take stamped
// there before the restore gives back units of the restored state, which
// took them itself.
func TestReconfigureKeepsRestoreMarkOfMergedWindow(t *testing.T) {
	need64(t)
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.Add(40 * 8766 * time.Hour)
	clk := mockAt(t0)
	cfg := fixedwindow.Config{Limit: wide(1 << 31), Window: time.Second, Clock: clk}
	l, other := mustNew(t, cfg), mustNew(t, cfg)
	require.True(t, l.Take(far, 5).Allowed)
	require.True(t, other.Take(far, wide(1<<31)).Allowed)
	b, err := other.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, l.UnmarshalBinary(b))

	clk.Set(far)
	require.NoError(t, l.Reconfigure(cfg))
	l.Refund(far, 5) // the Take from before the restore
	require.False(t, l.Take(far, 1).Allowed, "the restored state took 2^31 at this instant")
}
