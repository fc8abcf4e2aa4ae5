package rolling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/rolling"
)

// Times more than 292 years from the epoch saturate (see Time in the
// package documentation): a window opened at one starts at the saturated
// instant, and every later time is that instant too, so the window never
// closes for them. Reconfigure and a restore, which move the state to
// another epoch, must keep it so: converted as the instant epoch+292y, it
// lands in the past of the new epoch, and the same far instant admits a
// Limit's worth again.

// TestReconfigureKeepsSaturatedWindow: a Limiter made in 2026, full at a
// Take 300 years on, reconfigured to its own Config with its clock there
// (its epoch is then the present's: more than 146 years from the old one).
func TestReconfigureKeepsSaturatedWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.AddDate(300, 0, 0)
	clk := mockAt(t0)
	cfg := rolling.Config{Limit: 3, Window: time.Second, Clock: clk}
	l := mustNew(t, cfg)
	require.True(t, l.Take(far, 3).Allowed)
	require.False(t, l.Take(far, 1).Allowed)

	clk.Set(far)
	require.NoError(t, l.Reconfigure(cfg))
	require.False(t, l.Take(far, 1).Allowed, "3 taken at this instant, the same Config")
}

// TestRestoreKeepsSaturatedWindow: the state of that Limiter, restored
// into one of the same Config made at the far instant.
func TestRestoreKeepsSaturatedWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.AddDate(300, 0, 0)
	cfg := rolling.Config{Limit: 3, Window: time.Second, Clock: mockAt(t0)}
	l := mustNew(t, cfg)
	require.True(t, l.Take(far, 3).Allowed)
	b, err := l.MarshalBinary()
	require.NoError(t, err)

	cfg.Clock = mockAt(far)
	r := mustNew(t, cfg)
	require.NoError(t, r.UnmarshalBinary(b))
	require.False(t, r.Take(far, 1).Allowed, "restored: 3 taken at this instant")

	// Restored into its own Limiter, it is the same state again.
	require.NoError(t, l.UnmarshalBinary(b))
	require.False(t, l.Take(far, 1).Allowed)
	b2, err := l.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, b2)
}
