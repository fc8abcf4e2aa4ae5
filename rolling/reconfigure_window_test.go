package rolling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/rolling"
)

// TestShorterWindowKeepsRecentUnits: an hour's window of 1000 opened at
// 13:00 with 100 taken by 13:30, switched at 13:30 to 60 a minute. The
// limiter cannot tell when in the hour its 100 were taken: all of them may
// be in a minute's window a limiter of 60 a minute all along would have
// open at 13:30. The window kept its start, 13:00, and closed at once: 60
// more admitted at 13:30:10, where that twin (its minute opened at 13:29:50,
// with 50) admits 10.
func TestShorterWindowKeepsRecentUnits(t *testing.T) {
	at := func(m, s int) time.Time { return time.Date(2026, 3, 18, 13, m, s, 0, time.UTC) }
	hourly := rolling.Config{Limit: 1000, Window: time.Hour, Clock: mockAt(at(0, 0))}
	perMinute := rolling.Config{Limit: 60, Window: time.Minute, Clock: mockAt(at(30, 0))}
	l, twin := mustNew(t, hourly), mustNew(t, perMinute)
	for _, tk := range []struct {
		at time.Time
		n  int
	}{{at(0, 0), 50}, {at(29, 50), 50}} {
		require.True(t, l.Take(tk.at, tk.n).Allowed)
		require.True(t, twin.Take(tk.at, tk.n).Allowed)
	}
	require.NoError(t, l.Reconfigure(perMinute))
	got, want := l.Peek(at(30, 10), 0).Remaining, twin.Peek(at(30, 10), 0).Remaining
	require.LessOrEqual(t, got, want, "Remaining at 13:30:10, after the switch at 13:30; a limiter of 60 a minute all along")
	// The 100 count for a minute from 13:30, the latest instant they can
	// have been taken at.
	require.Equal(t, 0, got)
	require.Equal(t, 60, l.Peek(at(31, 0), 0).Remaining)
}
