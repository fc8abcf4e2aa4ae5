package tokenbucket_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/tokenbucket"
)

// TestReconfigureKeepsFullBucketForEarlierTimes: a bucket full at the
// instant of a Reconfigure (here a fresh one, reconfigured to its own
// Config) admits a Take stamped an hour before the Clock's reading, as it
// did before the change and as a fresh New of the Config does. It failed
// before: Reconfigure re-anchored the full bucket's TAT at the Clock's now,
// so the earlier Take was denied for an hour (fixedwindow, rolling and
// slidingwindow admit it).
func TestReconfigureKeepsFullBucketForEarlierTimes(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(time.Date(2026, 3, 18, 14, 0, 0, 0, time.UTC))
	cfg := tokenbucket.Config{Limit: 10, Window: time.Minute, Burst: 10, Clock: mock}
	l, err := tokenbucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	earlier := mock.Now().Add(-time.Hour)
	if d := l.Peek(earlier, 1); !d.Allowed {
		t.Fatalf("fresh bucket, Peek an hour before the clock = %v; want allowed", d)
	}
	if err := l.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if d := l.Peek(earlier, 1); !d.Allowed {
		t.Fatalf("after Reconfigure to the same Config, Peek an hour before the clock = %v; want allowed, as before", d)
	}
}

// TestReconfigureKeepsRefilledTAT: a bucket drained two hours before the
// Clock's reading, and full again since, keeps the instant it was full at
// through a Reconfigure: to its own Config every decision stays (5 units
// at half its refill, where re-anchored at the Clock's reading it held
// none for an hour and a half); to a faster rate the instant stays too; to
// a slower one (10 per 2 minutes) it moves to the instant the bucket was
// last empty plus Burst units of the new rate, never past the Clock's
// reading, so that no stale Take finds more than the old bucket held.
func TestReconfigureKeepsRefilledTAT(t *testing.T) {
	mock := clock.NewMock()
	now := time.Date(2026, 3, 18, 14, 0, 0, 0, time.UTC)
	mock.Set(now)
	cfg := tokenbucket.Config{Limit: 10, Window: time.Minute, Burst: 10, Clock: mock}
	drained := now.Add(-2 * time.Hour)
	for _, tc := range []struct {
		name string
		into tokenbucket.Config
		full time.Duration // after drained
	}{
		{"Same", cfg, time.Minute},
		{"Faster", tokenbucket.Config{Limit: 20, Window: time.Minute, Burst: 10, Clock: mock}, time.Minute},
		{"Slower", tokenbucket.Config{Limit: 10, Window: 2 * time.Minute, Burst: 10, Clock: mock}, 2 * time.Minute},
		{"SlowerThanTheClock", tokenbucket.Config{Limit: 1, Window: 24 * time.Hour, Burst: 10, Clock: mock}, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, cfg)
			require.True(t, l.Take(drained, 10).Allowed)
			half := l.Peek(drained.Add(30*time.Second), 0)
			require.Equal(t, 5, half.Remaining)
			require.NoError(t, l.Reconfigure(tc.into))
			if tc.name == "Same" {
				require.Equal(t, half, l.Peek(drained.Add(30*time.Second), 0))
			}
			require.Equal(t, tc.into.Burst, l.Peek(drained.Add(tc.full), 0).Remaining, "full at drained+%v", tc.full)
			require.Less(t, l.Peek(drained.Add(tc.full-1), 0).Remaining, tc.into.Burst, "not full 1 ns before")
		})
	}
}
