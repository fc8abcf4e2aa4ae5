package rolling_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/rolling"
)

// TestRestoreCarriesWindow: an hour's window opened at 13:00 with units
// taken up to 13:30, restored into a minute's Window, counts its units
// until 14:00:59.999999999 and at every earlier time (UnmarshalBinary's
// example). Before version 3 the state recorded no Window and the window
// closed at 13:01, admitting the whole Limit from then on where a limiter
// of a minute's Window all along still counted the 13:30 units.
func TestRestoreCarriesWindow(t *testing.T) {
	at13 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	hour := mustNew(t, rolling.Config{Limit: 10, Window: time.Hour})
	require.True(t, hour.Take(at13, 4).Allowed)
	require.True(t, hour.Take(at13.Add(30*time.Minute), 6).Allowed)
	b, err := hour.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, byte(3), b[3], "an open window is saved as version 3")

	minute := mustNew(t, rolling.Config{Limit: 10, Window: time.Minute})
	require.NoError(t, minute.UnmarshalBinary(b))
	last := at13.Add(time.Hour + time.Minute - 2) // the carried window's last instant
	for _, at := range []time.Time{at13, at13.Add(time.Minute), at13.Add(30 * time.Minute), at13.Add(time.Hour), last} {
		require.Equal(t, 0, minute.Peek(at, 0).Remaining, "at %v", at.Format(time.TimeOnly))
	}
	require.Equal(t, 10, minute.Peek(last.Add(1), 0).Remaining, "closed at 14:00:59.999999999")

	// A longer Window keeps the start: closes at 13:00 plus two hours.
	two := mustNew(t, rolling.Config{Limit: 10, Window: 2 * time.Hour})
	require.NoError(t, two.UnmarshalBinary(b))
	require.Equal(t, 0, two.Peek(at13.Add(2*time.Hour-1), 0).Remaining)
	require.Equal(t, 10, two.Peek(at13.Add(2*time.Hour), 0).Remaining)

	// Restored into its own Window, the state marshals back as it was.
	own := mustNew(t, rolling.Config{Limit: 10, Window: time.Hour})
	require.NoError(t, own.UnmarshalBinary(b))
	again, err := own.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, again)
}

// TestRestoreOldVersions: version 1 and 2 states, the bytes the code
// before version 3 wrote, restore as they did: their start is kept
// whatever the Window (they record none), so restored into a minute's
// Window an hour's window opened at 13:00 closes at 13:01. A limiter with
// no window open still saves version 1, which those builds read.
func TestRestoreOldVersions(t *testing.T) {
	at13 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	hdr := func(v byte) []byte {
		b, err := mustNew(t, rolling.Config{Limit: 1, Window: time.Second}).MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, []byte{b[0], b[1], b[2], 1, 0, 0, 0}, b, "no window open: version 1")
		return []byte{b[0], b[1], b[2], v}
	}
	v1 := binary.AppendUvarint(binary.AppendVarint(binary.AppendUvarint(hdr(1), 10), at13.UnixNano()), 0)
	v2 := binary.AppendUvarint(binary.AppendUvarint(binary.AppendVarint(binary.AppendUvarint(hdr(2), 10), at13.Unix()), 0), 0)
	for name, b := range map[string][]byte{"v1": v1, "v2": v2} {
		minute := mustNew(t, rolling.Config{Limit: 10, Window: time.Minute})
		require.NoError(t, minute.UnmarshalBinary(b), name)
		require.Equal(t, 0, minute.Peek(at13.Add(time.Minute-1), 0).Remaining, name)
		require.Equal(t, 10, minute.Peek(at13.Add(time.Minute), 0).Remaining, name)
		hour := mustNew(t, rolling.Config{Limit: 10, Window: time.Hour})
		require.NoError(t, hour.UnmarshalBinary(b), name)
		require.Equal(t, 0, hour.Peek(at13.Add(time.Hour-1), 0).Remaining, name)
		require.Equal(t, 10, hour.Peek(at13.Add(time.Hour), 0).Remaining, name)
		again, err := hour.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, windowState(v1, 10, at13.Unix(), 0, 0, uint64(time.Hour)), again, name)
	}
}

// TestUnmarshalRejectsBadVersion3: a version 3 state with no window open,
// a Window of 0 or past 2^63-1 ns, or cut short is refused with
// ErrInvalidState and changes nothing.
func TestUnmarshalRejectsBadVersion3(t *testing.T) {
	l := mustNew(t, rolling.Config{Limit: 10, Window: time.Minute})
	require.True(t, l.Take(t0, 3).Allowed)
	before := l.Peek(t0, 0)
	used, err := l.MarshalBinary()
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"count 0":     windowState(used, 0, t0.Unix(), 0, 0, 60e9),
		"window 0":    windowState(used, 1, t0.Unix(), 0, 0, 0),
		"window 2^63": windowState(used, 1, t0.Unix(), 0, 0, math.MaxInt64+1),
		"truncated":   used[:len(used)-1],
		"trailing":    append(windowState(used, 1, t0.Unix(), 0, 0, 60e9), 0),
	} {
		err := l.UnmarshalBinary(b)
		require.True(t, errors.Is(err, ratekit.ErrInvalidState), "%s: %v", name, err)
		require.Equal(t, before, l.Peek(t0, 0), name)
	}
}
