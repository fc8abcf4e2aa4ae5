package fixedwindow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/fixedwindow"
)

// hourThenMinute returns the two shorter-Window tests' setup: at(m, s),
// 13:m:s on a day in 2026; a Config of 60 a minute whose Clock reads 13:30;
// a limiter of 1000 an hour and a twin of 60 a minute all along, each of
// which took 25 at 13:29:30, 25 at 13:29:45 and 50 at 13:30.
func hourThenMinute(t *testing.T) (at func(m, s int) time.Time, perMinute fixedwindow.Config, l, twin *fixedwindow.Limiter) {
	t.Helper()
	at = func(m, s int) time.Time { return time.Date(2026, 3, 18, 13, m, s, 0, time.UTC) }
	hourly := fixedwindow.Config{Limit: 1000, Window: time.Hour, Clock: mockAt(at(0, 0))}
	perMinute = fixedwindow.Config{Limit: 60, Window: time.Minute, Clock: mockAt(at(30, 0))}
	l, twin = mustNew(t, hourly), mustNew(t, perMinute)
	for _, tk := range []struct {
		at time.Time
		n  int
	}{{at(29, 30), 25}, {at(29, 45), 25}, {at(30, 0), 50}} {
		require.True(t, l.Take(tk.at, tk.n).Allowed)
		require.True(t, twin.Take(tk.at, tk.n).Allowed)
	}
	return at, perMinute, l, twin
}

// TestShorterWindowKeepsRecentUnits: an hour's window of 1000 with 100
// taken from 13:29:30 to 13:30, switched at 13:30 to 60 a minute. The
// limiter cannot tell when in the hour its 100 were taken: all of them may
// be in the minute from 13:30, so that minute counts them. The count moved
// to the minute that holds the hour's start (13:00), and the minute from
// 13:30 began empty: 60 more admitted, 160 within a minute, where a limiter
// of 60 a minute all along admits 10.
func TestShorterWindowKeepsRecentUnits(t *testing.T) {
	at, perMinute, l, twin := hourThenMinute(t)
	require.NoError(t, l.Reconfigure(perMinute))
	got, want := l.Peek(at(30, 10), 0).Remaining, twin.Peek(at(30, 10), 0).Remaining
	require.LessOrEqual(t, got, want, "Remaining at 13:30:10, after the switch at 13:30; a limiter of 60 a minute all along")
	require.Equal(t, 0, got, "100 counted in the minute from 13:30")
	require.Equal(t, 60, l.Peek(at(31, 0), 0).Remaining, "the minute from 13:31 is empty")
}

// TestLongerWindowForgets is the ratekit package documentation's example
// of what a longer Window does not bring back: windows of a second with a
// Limit of 10, 5 taken at 13:00:00 and 1 at 13:00:01.1, switched then to
// windows of 3 seconds, count the 1 (the second from 13:00:01 no longer
// counts the 5) and admit 9 until 13:00:03, where windows of 3 seconds all
// along count 6 and admit 4.
func TestLongerWindowForgets(t *testing.T) {
	at := func(ms int) time.Time {
		return time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
	}
	perSecond := fixedwindow.Config{Limit: 10, Window: time.Second, Clock: mockAt(at(0))}
	per3s := fixedwindow.Config{Limit: 10, Window: 3 * time.Second, Clock: mockAt(at(1100))}
	l, twin := mustNew(t, perSecond), mustNew(t, per3s)
	for _, tk := range []struct{ ms, n int }{{0, 5}, {1100, 1}} {
		require.True(t, l.Take(at(tk.ms), tk.n).Allowed)
		require.True(t, twin.Take(at(tk.ms), tk.n).Allowed)
	}
	require.NoError(t, l.Reconfigure(per3s))
	require.Equal(t, 9, l.Peek(at(2999), 0).Remaining)
	require.Equal(t, 4, twin.Peek(at(2999), 0).Remaining)
	require.Equal(t, 10, l.Peek(at(3000), 0).Remaining)
}

// TestRestoreIntoShorterWindow: the state of an hour's window of 1000 with
// 100 taken from 13:29:30 to 13:30, restored at 13:30 into a limiter of 60
// a minute. The count went to the minute holding the hour's start (13:00),
// and the minute from 13:30 was empty: 60 admitted at 13:30:10, where a
// limiter of 60 a minute all along that took the same Takes admits 10. It
// now goes to the minute holding the hour's last instant, 13:59.
func TestRestoreIntoShorterWindow(t *testing.T) {
	at, perMinute, l, twin := hourThenMinute(t)
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	restored := mustNew(t, perMinute)
	require.NoError(t, restored.UnmarshalBinary(b))
	got, want := restored.Peek(at(30, 10), 0).Remaining, twin.Peek(at(30, 10), 0).Remaining
	require.LessOrEqual(t, got, want, "Remaining at 13:30:10; a limiter of 60 a minute all along")
	require.False(t, restored.Peek(at(59, 30), 1).Allowed, "the minute from 13:59 counts the 100")
	require.Equal(t, 60, restored.Peek(at(60, 0), 0).Remaining)
}
