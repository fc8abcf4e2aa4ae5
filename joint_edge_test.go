package ratekit_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// edgeEpochs are the instants the members of edgeSet take as their epochs
// (a mock clock's reading in New): 1970, t0, just inside and just outside
// 2^32 s either side of 1970 (where cell.Epoch stops serving and members
// count every time with Sub), and the first and last years.
func edgeEpochs() []time.Time {
	const s32 = 1 << 32
	return []time.Time{
		time.Unix(0, 0), t0,
		time.Unix(s32-1, 999_999_999), time.Unix(s32, 0), time.Unix(-s32+1, 0), time.Unix(-s32, 999_999_999),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
}

// edgeSet is jointSet's token bucket, fixed window, sliding Counter and
// rolling window, each made with a mock clock at epoch.
func edgeSet(t *testing.T, epoch time.Time) []ratekit.Limiter {
	mk := clock.NewMock()
	mk.Set(epoch)
	tb, err := tokenbucket.New(tokenbucket.Config{Limit: 5, Window: time.Second, Burst: 4, Name: "tb", Clock: mk})
	require.NoError(t, err)
	fw, err := fixedwindow.New(fixedwindow.Config{Limit: 7, Window: 2 * time.Second, Name: "fw", Clock: mk})
	require.NoError(t, err)
	sc, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 6, Window: time.Second, Name: "sc", Clock: mk})
	require.NoError(t, err)
	ro, err := rolling.New(rolling.Config{Limit: 5, Window: time.Second, Name: "ro", Clock: mk})
	require.NoError(t, err)
	return []ratekit.Limiter{tb, fw, sc, ro}
}

// edgeNow returns the call times of TestTakeAllJointEdgeTimes around base:
// steps forward from it, with and without a monotonic reading (mono, a
// time.Now, carries one; its wall clock is moved onto base's by Add).
// Times only move forward: after a stale time a general-path rollback may
// give back less than it took (see TestTakeAllJointMatchesGeneral).
func edgeNow(rng *rand.Rand, base, mono time.Time, i int) time.Time {
	at := base.Add(time.Duration(i) * 137 * time.Millisecond)
	if rng.IntN(2) == 0 {
		// The same wall clock with a monotonic reading, where time.Time
		// can carry one (1885 to 2157): Wall gives NoWall.
		if m := mono.Add(at.Sub(mono.Round(0))); m.Equal(at) {
			return m
		}
	}
	return at
}

// TestTakeAllJointEdgeTimes runs TestTakeAllJointMatchesGeneral's
// differential check on members whose epochs are at the edges of
// cell.Epoch's reach, at call times near and across those edges, with and
// without monotonic readings, and with members of different epochs in one
// call: the joint path counts a time by one subtraction (cell.Wall and
// Epoch.Since) where the general path calls Sub, and the two must agree
// on every Decision and leave the same states.
func TestTakeAllJointEdgeTimes(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 23))
	epochs := edgeEpochs()
	mono := time.Now()
	for _, base := range epochs {
		joint, gen := edgeTwins(t, epochs)
		for i := range 400 {
			now := edgeNow(rng, base, mono, i/2)
			k := 2 + rng.IntN(3)
			var js, gs []ratekit.Limiter
			for _, m := range rng.Perm(len(joint))[:k] {
				js = append(js, joint[m])
				gs = append(gs, general{gen[m]})
			}
			n := edgeN(rng)
			pj, pg := ratekit.PeekAll(now, n, js...), ratekit.PeekAll(now, n, gs...)
			require.Equal(t, pg, pj, "base %v call %d: PeekAll(%v, %d) over %v", base, i, now, n, policies(js))
			dj, dg := ratekit.TakeAll(now, n, js...), ratekit.TakeAll(now, n, gs...)
			require.Equal(t, dg, dj, "base %v call %d: TakeAll(%v, %d) over %v", base, i, now, n, policies(js))
			for m := range joint {
				require.Equal(t, gen[m].Peek(now, 1), joint[m].Peek(now, 1), "base %v call %d: member %d after", base, i, m)
			}
		}
	}
}

// edgeTwins returns twin sets of edgeSet members at every epoch, one for
// the joint path and one for the general: a call mixes members of
// different epochs.
func edgeTwins(t *testing.T, epochs []time.Time) (joint, gen []ratekit.Limiter) {
	for _, e := range epochs {
		joint = append(joint, edgeSet(t, e)...)
		gen = append(gen, edgeSet(t, e)...)
	}
	return joint, gen
}

// edgeN returns a unit count for an edge-times call: mostly -1 to 5, and
// sometimes the ends of int, one past the members' limits, or zero.
func edgeN(rng *rand.Rand) int {
	switch rng.IntN(12) {
	case 0:
		return math.MinInt
	case 1:
		return math.MaxInt
	case 2:
		return 8 // over every edgeSet member's Limit and Burst
	case 3:
		return 0
	}
	return rng.IntN(7) - 1
}

// TestTakeEachJointEdgeTimes is TestTakeAllJointEdgeTimes for TakeEach,
// with a cost per member (edgeN's): the same Decision, index, Verdicts and
// states on the joint path as on the general one.
func TestTakeEachJointEdgeTimes(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 24))
	epochs := edgeEpochs()
	mono := time.Now()
	for _, base := range epochs {
		joint, gen := edgeTwins(t, epochs)
		for i := range 400 {
			now := edgeNow(rng, base, mono, i/2)
			var ja, ga []ratekit.Ask
			for _, m := range rng.Perm(len(joint))[:2+rng.IntN(3)] {
				n := edgeN(rng)
				ja = append(ja, ratekit.Ask{Limiter: joint[m], N: n})
				ga = append(ga, ratekit.Ask{Limiter: general{gen[m]}, N: n})
			}
			dj, ij := ratekit.TakeEach(now, ja)
			dg, ig := ratekit.TakeEach(now, ga)
			require.Equal(t, dg, dj, "base %v call %d at %v", base, i, now)
			require.Equal(t, ig, ij, "base %v call %d at %v", base, i, now)
			for k := range ja {
				require.Equal(t, ga[k].Verdict, ja[k].Verdict, "base %v call %d at %v: verdict %d", base, i, now, k)
			}
			for m := range joint {
				require.Equal(t, gen[m].Peek(now, 1), joint[m].Peek(now, 1), "base %v call %d: member %d after", base, i, m)
			}
		}
	}
}
