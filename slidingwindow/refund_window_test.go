package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/slidingwindow"
)

// A Counter whose word a Take moved ahead, and which was then refunded to
// nothing, judges stale times before that word's window as holding the
// windows it forgot (decideStale). A change of Window carried such a word
// as a fresh one: 1 taken at Start+0.667s and X at Start+2.75s refunded,
// then windows of 2.5s, and Start-1s admitted 2 of 2 where it admitted
// nothing before the change (and a Counter that never saw X admits
// nothing there either). The carry keeps the word's place.
func TestCounterWindowChangeKeepsRefundedPlace(t *testing.T) {
	start := fuzzStart
	cfg := slidingwindow.Config{Limit: 2, Window: time.Second, Clock: mockAt(start)}
	for _, nw := range []time.Duration{2500 * time.Millisecond, 300 * time.Millisecond, 3 * time.Second} {
		c, err := slidingwindow.NewCounter(cfg)
		require.NoError(t, err)
		require.True(t, c.Take(start.Add(666666666), 1).Allowed)
		x := start.Add(2750 * time.Millisecond)
		require.True(t, c.Take(x, 1).Allowed)
		c.Refund(x, 1)
		stale := start.Add(-time.Second)
		before := c.Peek(stale, 1).Allowed
		require.False(t, before, "a stale time before the moved word's window, before the change")
		k := cfg
		k.Window, k.Clock = nw, mockAt(x)
		require.NoError(t, c.Reconfigure(k))
		require.False(t, c.Peek(stale, 1).Allowed, "Window %v: a stale time before the moved word's window admits after the change", nw)
		b, err := c.MarshalBinary()
		require.NoError(t, err)
		r, err := slidingwindow.NewCounter(cfg)
		require.NoError(t, err)
		require.NoError(t, r.UnmarshalBinary(b))
		require.False(t, r.Peek(stale, 1).Allowed, "Window %v: restored into the first Window, a stale time admits", nw)
	}
}
