package tokenbucket_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/tokenbucket"
)

// TestRestoreCenturiesBeforeEpoch: a state saved more than 292 years
// before the restoring limiter's epoch (a saver on a Clock of 1700, the
// restorer's of 2026) cannot move the epoch back by int64 nanoseconds.
// It moves the epoch back by Unix time instead, so that the saver's times
// are decided as the saver decided them; it used to read them at the fast
// range's bound, full: at q = 999999937 a Take stamped at the saver's
// drained instant was admitted 49 more where the saver admits none.
func TestRestoreCenturiesBeforeEpoch(t *testing.T) {
	then := time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, cfg := range []tokenbucket.Config{
		{Limit: 10, Window: time.Second, Burst: 10, Name: "q1"},
		{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "fine"},
	} {
		mock := clock.NewMock()
		mock.Set(then)
		cfg.Clock = mock
		saver := mustNew(t, cfg)
		require.True(t, saver.Take(then, cfg.Burst).Allowed)
		b, err := saver.MarshalBinary()
		require.NoError(t, err)

		mock.Set(now)
		l := mustNew(t, cfg)
		require.NoError(t, l.UnmarshalBinary(b))
		for _, d := range []time.Duration{-time.Hour, 0, 1, 20, time.Second / 2, time.Second} {
			require.Equal(t, saver.Peek(then.Add(d), 1), l.Peek(then.Add(d), 1), "%s: Peek(then%+v), then 326 years before the restorer's epoch", cfg.Name, d)
		}
		// The present is decided as the restored state says: full.
		require.Equal(t, cfg.Burst, l.Peek(now, 0).Remaining, cfg.Name)
		require.True(t, l.Take(now, cfg.Burst).Allowed, cfg.Name)

		// Restored into a limiter that has taken, whose restore mark
		// cannot move back that far: no more than the saver at its times.
		u := mustNew(t, cfg)
		require.True(t, u.Take(now, 1).Allowed)
		require.NoError(t, u.UnmarshalBinary(b))
		require.False(t, u.Peek(then, 1).Allowed, "%s: a used restorer, at the saver's drained instant", cfg.Name)
		require.Equal(t, cfg.Burst, u.Peek(now, 0).Remaining, cfg.Name)
	}
}
