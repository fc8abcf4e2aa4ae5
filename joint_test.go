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

// general hides a member's Joint method, so that TakeAll decides it on the
// general path, Take by Take with refunds.
type general struct{ ratekit.Limiter }

// jointSet returns a token bucket, a fixed window and a sliding Counter,
// small enough that random TakeAlls deny often, and Rollbar's case: a
// second fixed window on the same subject; then Rollbar's user and system
// limits as rolling windows, and a rolling window of Limit 2^40, whose
// block reaches 1 ms, so that nearly every window it opens needs a new
// block, which the joint path leaves to the general one.
func jointSet(t *testing.T) []ratekit.Limiter { return jointSetOn(t, nil) }

// jointSetOn is jointSet with the members' Clock clk (nil: the real one),
// which New reads for their epoch.
func jointSetOn(t *testing.T, clk clock.Clock) []ratekit.Limiter {
	tb, err := tokenbucket.New(tokenbucket.Config{Limit: 5, Window: time.Second, Burst: 4, Name: "tb", Clock: clk})
	require.NoError(t, err)
	fw, err := fixedwindow.New(fixedwindow.Config{Limit: 7, Window: 2 * time.Second, Name: "fw", Clock: clk})
	require.NoError(t, err)
	sc, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 6, Window: time.Second, Name: "sc", Clock: clk})
	require.NoError(t, err)
	day, err := fixedwindow.New(fixedwindow.Config{Limit: 20, Window: 24 * time.Hour, Name: "day", Clock: clk})
	require.NoError(t, err)
	user, err := rolling.New(rolling.Config{Limit: 9, Window: 3 * time.Second, Name: "user", Clock: clk})
	require.NoError(t, err)
	system, err := rolling.New(rolling.Config{Limit: 5, Window: time.Second, Name: "system", Clock: clk})
	require.NoError(t, err)
	wide, err := rolling.New(rolling.Config{Limit: wide(1 << 40), Window: 50 * time.Millisecond, Name: "wide", Clock: clk})
	require.NoError(t, err)
	return []ratekit.Limiter{tb, fw, sc, day, user, system, wide}
}

// TestTakeAllJointMatchesGeneral runs the same random PeekAlls and TakeAlls (member
// subsets and orders, a member listed twice, n from -1 to 5, times that
// advance or stand still) on two sets of twins: one decided together under
// locks, one on the general path. Every Decision, and every member's state
// after it (Peek), must be the same: the joint path is an implementation of
// TakeAll, not a new semantics. (Times do not go back here: after a stale
// time a general-path rollback may give back less than it took, which the
// joint path, having taken nothing, never has to.)
func TestTakeAllJointMatchesGeneral(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 17))
	joint, gen := jointSet(t), jointSet(t)
	now := t0
	for i := range 3000 {
		now = now.Add(time.Duration(max(rng.IntN(400)-100, 0)) * time.Millisecond)
		k := 2 + rng.IntN(3)
		var js, gs []ratekit.Limiter
		for range k {
			m := rng.IntN(len(joint))
			js = append(js, joint[m])
			gs = append(gs, general{gen[m]})
		}
		n := rng.IntN(7) - 1
		pj, pg := ratekit.PeekAll(now, n, js...), ratekit.PeekAll(now, n, gs...)
		require.Equal(t, pg, pj, "call %d: PeekAll(+%v, %d) over %v", i, now.Sub(t0), n, policies(js))
		dj, dg := ratekit.TakeAll(now, n, js...), ratekit.TakeAll(now, n, gs...)
		require.Equal(t, dg, dj, "call %d: TakeAll(+%v, %d) over %v", i, now.Sub(t0), n, policies(js))
		if distinct(js) {
			// (A member listed twice is peeked twice, for n each, and
			// taken twice: there PeekAll may admit what TakeAll refuses.)
			require.Equal(t, pj, dj, "call %d: PeekAll(+%v, %d) over %v said what TakeAll then did", i, now.Sub(t0), n, policies(js))
		}
		for m := range joint {
			require.Equal(t, gen[m].Peek(now, 1), joint[m].Peek(now, 1), "call %d: member %d after", i, m)
		}
	}
}

// distinct reports whether no limiter is listed twice in ls.
func distinct(ls []ratekit.Limiter) bool {
	for i := range ls {
		for j := range i {
			if ls[i] == ls[j] {
				return false
			}
		}
	}
	return true
}

// TestTakeEachJointMatchesGeneral is TestTakeAllJointMatchesGeneral for
// TakeEach, with a cost per member: the same Verdicts, index and states.
func TestTakeEachJointMatchesGeneral(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 18))
	joint, gen := jointSet(t), jointSet(t)
	now := t0
	for i := range 3000 {
		now = now.Add(time.Duration(max(rng.IntN(400)-100, 0)) * time.Millisecond)
		var ja, ga []ratekit.Ask
		for _, m := range rng.Perm(len(joint))[:2+rng.IntN(3)] {
			n := rng.IntN(7) - 1
			ja = append(ja, ratekit.Ask{Limiter: joint[m], N: n})
			ga = append(ga, ratekit.Ask{Limiter: general{gen[m]}, N: n})
		}
		dj, ij := ratekit.TakeEach(now, ja)
		dg, ig := ratekit.TakeEach(now, ga)
		require.Equal(t, dg, dj, "call %d", i)
		require.Equal(t, ig, ij, "call %d", i)
		for k := range ja {
			require.Equal(t, ga[k].Verdict, ja[k].Verdict, "call %d: verdict %d", i, k)
		}
		for m := range joint {
			require.Equal(t, gen[m].Peek(now, 1), joint[m].Peek(now, 1), "call %d: member %d after", i, m)
		}
	}
}

func policies(ls []ratekit.Limiter) []string {
	var ps []string
	for _, l := range ls {
		ps = append(ps, l.Peek(time.Time{}, 0).Policy)
	}
	return ps
}

// TestTakeAllJointDenialLeavesAll: Rollbar's case, a user's daily quota
// and a system limit on one token; events the system limit refuses use up
// none of the user's quota, and no refund was needed to get there.
func TestTakeAllJointDenialLeavesAll(t *testing.T) {
	ls := jointSet(t)
	tb, day := ls[0], ls[3]
	for tb.Take(t0, 1).Allowed {
	}
	before := day.Peek(t0, 1)
	for range 5 {
		d := ratekit.TakeAll(t0, 1, day, tb)
		require.False(t, d.Allowed)
		require.Equal(t, "tb", d.Policy)
		require.Equal(t, time.Second/5, d.RetryAfter)
	}
	require.Equal(t, before, day.Peek(t0, 1))
	require.Zero(t, testing.AllocsPerRun(100, func() { ratekit.TakeAll(t0, 1, day, ls[1], ls[2]) }))
	all := ratekit.AllOf(day, ls[1], ls[2])
	require.Zero(t, testing.AllocsPerRun(100, func() { ratekit.PeekAll(t0, 1, day, ls[1], ls[2]); all.Peek(t0, 1) }))
}

// FuzzTakeAllJoint is TestTakeAllJointMatchesGeneral driven by the fuzzer:
// each three bytes are a call (a PeekAll, then a TakeAll), the time step in tens of milliseconds, which
// members in which order (two to four of them, distinct, so that the joint
// path decides), and n from -1 to 6 (bits 0-2 of the third byte), or the
// least or greatest int (bits 4-5: 1, 2), at a time with a monotonic
// reading (bit 3) or without. Joint and general twins must return
// the same Decisions and be left in the same states.
func FuzzTakeAllJoint(f *testing.F) {
	f.Add([]byte{0, 0x1b, 1, 0, 0x1b, 5, 3, 0xe4, 2})
	f.Add([]byte{0, 0x4e, 7, 0, 0x4e, 7, 100, 0x93, 0, 1, 0x39, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		// Epochs with no monotonic reading, so that a time with one is
		// counted on the wall clock as the same time without one is:
		// members made on the real clock count a time with a reading on
		// the monotonic clock, which drifts from the wall clock by a few
		// ns, and then a time would go back (see
		// TestTakeAllJointMatchesGeneral).
		mk := clock.NewMock()
		mk.Set(t0)
		joint, gen := jointSetOn(t, mk), jointSetOn(t, mk)
		now := t0
		mono := time.Now()
		for len(ops) >= 3 {
			step, sel, nb := ops[0], ops[1], ops[2]
			ops = ops[3:]
			now = now.Add(time.Duration(step) * 10 * time.Millisecond)
			// sel: the top two bits say how many members (2 to 4 wrap to
			// 2..4), the rest a permutation's seed.
			perm := rand.New(rand.NewPCG(uint64(sel), 0)).Perm(len(joint))
			k := 2 + int(sel>>6)%3
			var js, gs []ratekit.Limiter
			for _, m := range perm[:k] {
				js = append(js, joint[m])
				gs = append(gs, general{gen[m]})
			}
			n := int(nb%8) - 1
			switch nb >> 4 & 3 {
			case 1:
				n = math.MinInt
			case 2:
				n = math.MaxInt
			}
			at := now
			if nb&8 != 0 {
				// The same instant with a monotonic reading: the
				// members count it with Sub, not cell.Epoch.Since.
				at = mono.Add(now.Sub(mono.Round(0)))
			}
			now := at
			if pj, pg := ratekit.PeekAll(now, n, js...), ratekit.PeekAll(now, n, gs...); pj != pg {
				t.Fatalf("PeekAll(+%v, %d) over %v: joint %v, general %v", now.Sub(t0), n, policies(js), pj, pg)
			}
			dj, dg := ratekit.TakeAll(now, n, js...), ratekit.TakeAll(now, n, gs...)
			if dj != dg {
				t.Fatalf("TakeAll(+%v, %d) over %v: joint %v, general %v", now.Sub(t0), n, policies(js), dj, dg)
			}
			for m := range joint {
				if pj, pg := joint[m].Peek(now, 1), gen[m].Peek(now, 1); pj != pg {
					t.Fatalf("after TakeAll(+%v, %d): member %d joint %v, general %v", now.Sub(t0), n, m, pj, pg)
				}
			}
		}
	})
}

// refusing embeds a token bucket and overrides its Take: it refuses
// everything. TakeAll must ask it, not decide the bucket inside it on its
// own: the embedded Joint method is promoted to refusing, and must send
// TakeAll to the general path, which calls refusing's Take.
type refusing struct{ *tokenbucket.Limiter }

func (refusing) Take(time.Time, int) ratekit.Decision {
	return ratekit.Decision{RetryAfter: time.Hour, Policy: "refusing"}
}

func TestTakeAllAsksAnEmbeddingMember(t *testing.T) {
	ls := jointSet(t)
	tb, fw := ls[0].(*tokenbucket.Limiter), ls[1]
	before := fw.Peek(t0, 1)
	for _, m := range []ratekit.Limiter{refusing{tb}, &refusing{tb}} {
		d := ratekit.TakeAll(t0, 1, fw, m)
		require.False(t, d.Allowed)
		require.Equal(t, "refusing", d.Policy)
		d = ratekit.AllOf(m, fw).Take(t0, 1)
		require.False(t, d.Allowed)
		require.Equal(t, "refusing", d.Policy)
		d, i := ratekit.TakeEach(t0, []ratekit.Ask{{Limiter: fw, N: 1}, {Limiter: m, N: 1}})
		require.False(t, d.Allowed)
		require.Equal(t, 1, i)
	}
	require.Equal(t, before, fw.Peek(t0, 1), "refused, the window took nothing")
	require.Equal(t, 4, tb.Peek(t0, 0).Remaining, "the bucket was never taken from")
}

// TestTakeAllJointCallsOnLimitReached: the first denial of a full window
// (fixed, rolling) or run (sliding Counter) calls its OnLimitReached once, whether
// TakeAll decides the members together or not: the joint path leaves that
// denial, which writes, to the general one.
func TestTakeAllJointCallsOnLimitReached(t *testing.T) {
	var fwCalls, scCalls int
	fw, err := fixedwindow.New(fixedwindow.Config{Limit: 2, Window: time.Minute, Name: "fw",
		OnLimitReached: func(ratekit.Decision) { fwCalls++ }})
	require.NoError(t, err)
	sc, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 3, Window: time.Minute, Name: "sc",
		OnLimitReached: func(ratekit.Decision) { scCalls++ }})
	require.NoError(t, err)
	tb, err := tokenbucket.New(tokenbucket.Config{Limit: 100, Window: time.Second, Burst: 100})
	require.NoError(t, err)
	all := ratekit.AllOf(tb, fw)
	for range 2 {
		require.True(t, all.Take(t0, 1).Allowed)
	}
	for range 3 {
		require.False(t, all.Take(t0, 1).Allowed)
	}
	require.Equal(t, 1, fwCalls, "fixed window: one call for the window's first denial")
	for range 3 {
		require.True(t, ratekit.TakeAll(t0, 1, tb, sc).Allowed)
	}
	for range 3 {
		require.False(t, ratekit.TakeAll(t0, 1, sc, tb).Allowed)
	}
	require.Equal(t, 1, scCalls, "sliding Counter: one call for the run's first denial")
	var rwCalls int
	rw, err := rolling.New(rolling.Config{Limit: 2, Window: time.Minute, Name: "rw",
		OnLimitReached: func(ratekit.Decision) { rwCalls++ }})
	require.NoError(t, err)
	for range 2 {
		require.True(t, ratekit.TakeAll(t0, 1, rw, tb).Allowed)
	}
	for range 3 {
		require.False(t, ratekit.TakeAll(t0, 1, tb, rw).Allowed)
	}
	require.Equal(t, 1, rwCalls, "rolling window: one call for the window's first denial")
	require.Equal(t, 93, tb.Peek(t0, 0).Remaining, "denied TakeAlls took nothing from the bucket")
}
