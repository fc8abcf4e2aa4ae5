package rolling_test

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/rolling"
)

// TestMarshalAcrossUnixNanoRange: a window saved and restored by limiters
// whose clocks read near 2262-04-11, where int64 Unix nanoseconds end,
// closes when it would have, whichever side of that instant the epochs and
// the window are. The epoch comes from Config.Clock, so a simulation's
// clock may read there. On main, an epoch past it wrapped (time.UnixNano
// is undefined there), and a restore into a limiter of an epoch before it
// forgot a full window; a window opened past it was saved saturated, an
// hour early, and closed an hour early once restored.
func TestMarshalAcrossUnixNanoRange(t *testing.T) {
	end := time.Unix(0, 1<<63-1).UTC() // 2262-04-11 23:47:16.854775807
	for _, tc := range []struct {
		name                  string
		saver, restorer, open time.Time // the clocks' readings, the window's start
	}{
		{"epochs either side, window after", end.Add(24 * time.Hour), end.Add(-24 * time.Hour), end.Add(24 * time.Hour)},
		{"epochs either side, window before", end.Add(-24 * time.Hour), end.Add(24 * time.Hour), end.Add(-time.Hour)},
		{"epochs before, window after", end.Add(-time.Hour), end.Add(-2 * time.Hour), end.Add(time.Hour)},
		{"epochs after", end.Add(time.Hour), end.Add(2 * time.Hour), end.Add(3 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const window = 3 * time.Hour
			mk := func(at time.Time) *rolling.Limiter {
				clk := clock.NewMock() // a clock of its own: parameters of its own, as in another process
				clk.Set(at)
				return mustNew(t, rolling.Config{Limit: 2, Window: window, Clock: clk})
			}
			saved := mk(tc.saver)
			require.True(t, saved.Take(tc.open, 2).Allowed)
			b, err := saved.MarshalBinary()
			require.NoError(t, err)
			restored := mk(tc.restorer)
			require.NoError(t, restored.UnmarshalBinary(b))
			for _, after := range []time.Duration{0, time.Minute, window / 2, window - 1, window} {
				now := tc.open.Add(after)
				require.Equal(t, saved.Peek(now, 1), restored.Peek(now, 1), "Peek at the window's start + %v", after)
			}
			again, err := restored.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, b, again, "a restored state marshals as it was saved")
		})
	}
}

// TestUnmarshalRejectsStartPastTime: a version 2 start past the last
// second time.Time holds is out of range (time.Unix would wrap it into the
// distant past, and the window would be read as long closed).
func TestUnmarshalRejectsStartPastTime(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
	require.True(t, l.Take(t0, 3).Allowed)
	fresh, err := l.MarshalBinary()
	require.NoError(t, err)
	state := func(sec int64) []byte {
		b := append([]byte{}, fresh[:3]...)
		b = append(b, 2)                  // version 2
		b = binary.AppendUvarint(b, 3)    // count
		b = binary.AppendVarint(b, sec)   // start, Unix seconds
		b = binary.AppendUvarint(b, 0)    // nanoseconds
		return binary.AppendUvarint(b, 0) // flags
	}
	for _, sec := range []int64{math.MaxInt64, math.MaxInt64 - 62_135_596_800 + 1} {
		err := l.UnmarshalBinary(state(sec))
		require.ErrorIs(t, err, ratekit.ErrInvalidState, "start %d s", sec)
	}
	require.False(t, l.Peek(t0, 1).Allowed, "a rejected state changes nothing")
	require.NoError(t, l.UnmarshalBinary(state(math.MaxInt64-62_135_596_800)))
	require.False(t, l.Peek(t0, 1).Allowed, "a window opened in the far future is open now")
}

// An unknown format version names both versions this build reads.
func TestUnmarshalUnknownVersionNamesBoth(t *testing.T) {
	l, err := rolling.New(rolling.Config{Limit: 1, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b[3] = 9
	err = l.UnmarshalBinary(b)
	if !errors.Is(err, ratekit.ErrInvalidState) || !strings.Contains(err.Error(), "format version 9, this build reads 1, 2 and 3") {
		t.Fatalf("UnmarshalBinary of version 9: %v", err)
	}
}
