package tokenbucket_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/tokenbucket"
)

// TestReconfigureAfterGlitch: a Take far ahead (a clock glitch) moves the
// epoch forward to it; a Reconfigure with the clock back at Start then
// read the change at the fast range's bound, 2^60/q ns before that epoch,
// and counted the debt from there: 5 taken at Start+40 years from a bucket
// of 10 a second, then a Reconfigure to the same Config at Start, admitted
// 10 at the glitch (before: 5) and 10 a nanosecond before it (before: 4).
// Past the carry's cap (3*2^60/q ns, 110 years at q = 1) the old bucket's
// own debt is kept, not cut. Under a slower rate the bucket holds no more
// than the old one at any of those instants; under a faster one the units
// taken refill at the new rate, as Reconfigure documents.
func TestReconfigureAfterGlitch(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const year = 8766 * time.Hour
	for _, ahead := range []time.Duration{37 * year, 40 * year, 111 * year, 150 * year, 250 * year, 291 * year} {
		for _, to := range []struct {
			name  string
			limit int
		}{{"Same", 10}, {"Slower", 5}, {"Faster", 20}} {
			mock := clock.NewMock()
			mock.Set(start)
			cfg := tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Name: "glitch", Clock: mock}
			l := mustNew(t, cfg)
			g := start.Add(ahead)
			require.True(t, l.Take(g, 5).Allowed)
			qs := []time.Duration{-time.Second, -1, 0, 1, 250 * time.Millisecond, 499 * time.Millisecond}
			before := make([]int, len(qs))
			for i, q := range qs {
				before[i] = l.Peek(g.Add(q), 0).Remaining
			}
			nc := cfg
			nc.Limit = to.limit
			require.NoError(t, l.Reconfigure(nc))
			for i, q := range qs {
				got := l.Peek(g.Add(q), 0).Remaining
				switch to.name {
				case "Same":
					require.Equal(t, before[i], got, "%v ahead, %s: holds at glitch%+v", ahead, to.name, q)
				case "Slower":
					require.LessOrEqual(t, got, before[i], "%v ahead, %s: holds at glitch%+v", ahead, to.name, q)
				}
			}
			if to.name == "Slower" {
				// The units taken refill at 5/s: full at Start + 2*ahead
				// + 1s, unless that is past the carry's cap (3*2^60 ns):
				// then at the old TAT plus the new Burst's refill, g+2.5s.
				full := g.Add(2500 * time.Millisecond)
				if ahead < (3<<60-time.Second)/2 {
					full = start.Add(2*ahead + time.Second)
				}
				require.Equal(t, 9, l.Peek(full.Add(-1), 0).Remaining, "%v ahead, Slower: holds a ns before full", ahead)
				require.Equal(t, 10, l.Peek(full, 0).Remaining, "%v ahead, Slower: holds when full", ahead)
			}
			if to.name == "Faster" {
				// The units taken, (ahead+0.5s)/100ms, refill at 20/s:
				// full at Start + ahead/2 + 250ms, to the ns.
				full := start.Add(ahead/2 + 250*time.Millisecond)
				require.Equal(t, 9, l.Peek(full.Add(-1), 0).Remaining, "%v ahead, Faster: holds a ns before full", ahead)
				require.Equal(t, 10, l.Peek(full, 0).Remaining, "%v ahead, Faster: holds when full", ahead)
			}
			if to.name == "Same" {
				// Decisions at the glitch are the old ones, Takes included.
				require.False(t, l.Take(g.Add(-1), 5).Allowed, "%v ahead: Take(glitch-1ns, 5)", ahead)
				require.True(t, l.Take(g, 5).Allowed, "%v ahead: Take(glitch, 5)", ahead)
				require.False(t, l.Take(g, 1).Allowed, "%v ahead: Take(glitch, 1) after 10", ahead)
			}
		}
	}
}

// TestReconfigureAfterFarGlitch: glitches past the 292 years time.Time.Sub
// spans, where the Take moves the epoch to the glitch itself and
// Reconfigure reads the instant of the change on the wall clock (and, past
// 292+36 years, moves the new epoch by more than an int64 of ns).
func TestReconfigureAfterFarGlitch(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, years := range []int{300, 400, 1000, 1_000_000} {
		mock := clock.NewMock()
		mock.Set(start)
		cfg := tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Name: "glitch", Clock: mock}
		l := mustNew(t, cfg)
		g := start.AddDate(years, 0, 0)
		require.True(t, l.Take(g, 5).Allowed)
		require.NoError(t, l.Reconfigure(cfg))
		for _, q := range []time.Duration{-time.Second, -1, 0, 1, 499 * time.Millisecond} {
			require.Equal(t, max(0, 10-int((500*time.Millisecond-q+99_999_999)/(100*time.Millisecond))), l.Peek(g.Add(q), 0).Remaining, "%d years ahead: holds at glitch%+v", years, q)
		}
		require.Equal(t, 10, l.Peek(g.Add(500*time.Millisecond), 0).Remaining, "%d years ahead: full at glitch+0.5s", years)
		require.True(t, l.Take(g, 5).Allowed, "%d years ahead: Take(glitch, 5)", years)
		require.False(t, l.Take(g, 1).Allowed, "%d years ahead: Take(glitch, 1) after 10", years)
	}
}
