package rolling_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/rolling"
)

// TestEpochFromConfigClock: the limiter's epoch comes from Config.Clock
// (issue 17 item 6), so a limiter whose clock reads centuries away from
// the wall clock (a simulation, a test) measures its windows there. With
// the epoch from time.Now(), times 374 years on saturated time.Time.Sub,
// every instant looked the same, and the first window never closed.
func TestEpochFromConfigClock(t *testing.T) {
	mock := clock.NewMock()
	far := time.Date(2400, 3, 1, 12, 0, 0, 0, time.UTC)
	mock.Set(far)
	for _, tmpl := range []bool{false, true} {
		l := mustNew(t, rolling.Config{Limit: 2, Window: time.Minute, Name: "far", Clock: mock})
		if tmpl {
			l = mustTemplate(t, rolling.Config{Limit: 2, Window: time.Minute, Name: "far", Clock: mock}).New()
		}
		now := mock.Now()
		require.True(t, l.Take(now, 2).Allowed)
		d := l.Take(now.Add(30*time.Second), 1)
		require.False(t, d.Allowed)
		require.Equal(t, 30*time.Second, d.RetryAfter)
		require.True(t, l.Take(now.Add(time.Minute), 1).Allowed, "the window closed a Window after it opened")
		require.Equal(t, time.Minute, l.Peek(now.Add(time.Minute), 0).ResetAfter)

		// Saved in wall-clock terms of that clock, and restored there.
		b, err := l.MarshalBinary()
		require.NoError(t, err)
		r := mustNew(t, rolling.Config{Limit: 2, Window: time.Minute, Clock: mock})
		require.NoError(t, r.UnmarshalBinary(b))
		require.Equal(t, 1, r.Peek(now.Add(time.Minute), 0).Remaining)
		require.Equal(t, 30*time.Second, r.Peek(now.Add(90*time.Second), 0).ResetAfter)
		require.True(t, r.Idle(now.Add(2*time.Minute)))

		// The convenience methods read the same clock.
		mock.Add(10 * time.Minute)
		require.True(t, l.Allow())
		require.True(t, l.Allow())
		require.False(t, l.Allow())
	}
}
