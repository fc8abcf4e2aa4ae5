package tokenbucket_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/tokenbucket"
)

// TestRestoreFarBeforeEpoch: a state restored into a limiter whose epoch
// (its Clock's reading at New) is more than 2^60/q ns after the saved
// TAT decides a Take stamped at the saver's times as the saver did. At
// q = 999999937 that range is 1.15 s: a bucket drained at T and restored a
// day later admitted 50 at T (the TAT, before the fast range, was read as
// full since forever) where the saver admits none. The restore now moves
// the epoch back to the TAT; a Take a day later moves it forward again, as
// it does in the saver.
func TestRestoreFarBeforeEpoch(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		cfg   tokenbucket.Config
		later time.Duration
	}{
		{"FineScaleDay", tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "far"}, 24 * time.Hour},
		{"FineScale2s", tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "far"}, 2 * time.Second},
		{"OneNsYears", tokenbucket.Config{Limit: 3, Window: 1, Burst: 3, Name: "far"}, 15 * 365 * 24 * time.Hour}, // 2^60/3 ns: 12.2 years
	} {
		t.Run(tc.name, func(t *testing.T) {
			mock := clock.NewMock()
			mock.Set(at)
			cfg := tc.cfg
			cfg.Clock = mock
			saver := mustNew(t, cfg)
			require.True(t, saver.Take(at, cfg.Burst).Allowed)
			b, err := saver.MarshalBinary()
			require.NoError(t, err)

			mock.Set(at.Add(tc.later)) // a restart: the new process's epoch
			r := mustNew(t, cfg)
			require.NoError(t, r.UnmarshalBinary(b))
			for _, d := range []time.Duration{-time.Hour, -1, 0, 1, 20, 49, 50, 51, time.Microsecond} {
				for _, n := range []int{1, cfg.Burst} {
					require.Equal(t, saver.Peek(at.Add(d), n), r.Peek(at.Add(d), n), "Peek(T%+v, %d)", d, n)
				}
			}
			// A Take a day on, then one at T: each decided as by the saver.
			for _, d := range []time.Duration{tc.later, 0, 30} {
				require.Equal(t, saver.Take(at.Add(d), 1), r.Take(at.Add(d), 1), "Take(T+%v, 1)", d)
			}
		})
	}
}

// TestRestoreFarBeforeEpochKeepsMark: restoring into a limiter that has
// taken marks its Takes (a Refund of them gives nothing back, see
// UnmarshalBinary), also when the restore moves the epoch back: the mark
// moves on by as much (2 s on, at q = 999999937, within 3*2^60/q ns = 3.46
// s). A day on, the mark cannot move that far: the epoch stays, and the
// Refund still gives nothing back; the TAT is then kept before the fast
// range, and the saver's times are decided as the saver decides them
// (read at the range's bound, the bucket was full there once, and admitted
// 50 at the saver's drained instant; then empty, and admitted nothing).
func TestRestoreFarBeforeEpochKeepsMark(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, later := range []time.Duration{2 * time.Second, 24 * time.Hour} {
		mock := clock.NewMock()
		mock.Set(at)
		cfg := tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "far", Clock: mock}
		saver := mustNew(t, cfg)
		require.True(t, saver.Take(at, 50).Allowed)
		b, err := saver.MarshalBinary()
		require.NoError(t, err)

		then := at.Add(later)
		mock.Set(then)
		l := mustNew(t, cfg)
		require.True(t, l.Take(then, 50).Allowed)
		require.NoError(t, l.UnmarshalBinary(b))
		require.Equal(t, 50, l.Peek(then, 0).Remaining, "+%v: the restored state is full then", later)
		for _, d := range []time.Duration{0, 30, 50, 51} {
			require.Equal(t, saver.Peek(at.Add(d), 1), l.Peek(at.Add(d), 1), "+%v: the saver's time +%v, as the saver decides it", later, d)
		}
		require.True(t, l.Take(then, 50).Allowed)
		l.Refund(then, 50) // stamped at the marked Take's instant: nothing back
		require.Equal(t, 0, l.Peek(then, 0).Remaining, "+%v: a Refund of a Take before the restore", later)
	}
}
