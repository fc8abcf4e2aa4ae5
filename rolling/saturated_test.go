package rolling_test

import (
	"math"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/rolling"
)

// Times more than 292 years from the epoch are read by time.Time.Sub as
// that bound (see Time in the package documentation, and
// TestFarTimesExact). Reconfigure and a restore, which move the state to
// another epoch, must keep a window opened at one: converted as the
// instant epoch+292y, it landed in the past of the new epoch, and the same
// far instant admitted a Limit's worth again.

// TestReconfigureKeepsSaturatedWindow: a Limiter made in 2026, full at a
// Take 300 years on, reconfigured to its own Config with its clock there
// (its epoch is then the present's: more than 146 years from the old one).
func TestReconfigureKeepsSaturatedWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.AddDate(300, 0, 0)
	clk := mockAt(t0)
	cfg := rolling.Config{Limit: 3, Window: time.Second, Clock: clk}
	l := mustNew(t, cfg)
	require.True(t, l.Take(far, 3).Allowed)
	require.False(t, l.Take(far, 1).Allowed)

	clk.Set(far)
	require.NoError(t, l.Reconfigure(cfg))
	require.False(t, l.Take(far, 1).Allowed, "3 taken at this instant, the same Config")
}

// TestRestoreKeepsSaturatedWindow: the state of that Limiter, restored
// into one of the same Config made at the far instant.
func TestRestoreKeepsSaturatedWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	far := t0.AddDate(300, 0, 0)
	cfg := rolling.Config{Limit: 3, Window: time.Second, Clock: mockAt(t0)}
	l := mustNew(t, cfg)
	require.True(t, l.Take(far, 3).Allowed)
	b, err := l.MarshalBinary()
	require.NoError(t, err)

	cfg.Clock = mockAt(far)
	r := mustNew(t, cfg)
	require.NoError(t, r.UnmarshalBinary(b))
	require.False(t, r.Take(far, 1).Allowed, "restored: 3 taken at this instant")

	// Restored into its own Limiter, it is the same state again.
	require.NoError(t, l.UnmarshalBinary(b))
	require.False(t, l.Take(far, 1).Allowed)
	b2, err := l.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, b2)
}

// TestReconfigureAtSaturatedBound: Takes around the instant 292 years
// before the epoch (where earlier times saturate), then a Reconfigure to
// the Config in force with the clock there, which moves the epoch near
// them: at every instant around them the limiter admits no more than
// before the Reconfigure (what it counted is carried as counted, see Time
// in the package documentation).
func TestReconfigureAtSaturatedBound(t *testing.T) {
	epoch := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const year = 8766 * time.Hour
	for _, w := range []time.Duration{2, time.Second, year} {
		offs := []time.Duration{-w, -w / 2, -1, 0, 1, w / 2, w - 1, w}
		for _, k := range []time.Duration{0, 1, w - 1, w, -1, -w} {
			r := epoch.Add(math.MinInt64).Add(k)
			for _, a := range offs {
				for _, b := range offs {
					for _, rec := range []time.Duration{-1, 0, 1, w} {
						cfg := rolling.Config{Limit: 4, Window: w, Clock: fixedClock{at: epoch}}
						l := mustNew(t, cfg)
						l.Take(r.Add(a), 2)
						l.Take(r.Add(b), 1)
						qs := []time.Duration{-w, -1, 0, 1, w / 2, w - 1, w, w + 1, 2 * w}
						before := make([]int, len(qs))
						for i, q := range qs {
							before[i] = l.Peek(r.Add(q), 0).Remaining
						}
						cfg.Clock = fixedClock{at: r.Add(rec)}
						require.NoError(t, l.Reconfigure(cfg))
						for i, q := range qs {
							require.LessOrEqual(t, l.Peek(r.Add(q), 0).Remaining, before[i],
								"Window %v, bound%+v, Takes at r%+v and r%+v, Reconfigure at r%+v: Remaining at r%+v", w, k, a, b, rec, q)
						}
					}
				}
			}
		}
	}
}

// fixedClock reads at: New and Reconfigure read nothing but Now (a
// clock.Mock's Set sleeps a millisecond, which made the test slow).
type fixedClock struct {
	clock.Clock
	at time.Time
}

func (c fixedClock) Now() time.Time { return c.at }
