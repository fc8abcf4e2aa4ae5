package ratekit_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
)

// farTimes are the instants TestTakeAllJointFarTimes draws from besides
// steps around t0: the zero time, the first and last years time.Time
// formats, centuries either side, and the ends of int64 Unix nanoseconds.
func farTimes() []time.Time {
	return []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		t0.AddDate(-300, 0, 0), t0.AddDate(-100, 0, 0), t0.AddDate(100, 0, 0), t0.AddDate(300, 0, 0),
		time.Unix(0, math.MaxInt64), time.Unix(0, math.MinInt64),
		time.Unix(math.MaxInt64/2, 0), time.Unix(math.MinInt64/2, 0),
	}
}

// TestTakeAllJointFarTimes holds TakeAll over members that are decided
// together (or, when a member's decision needs a new block or a hook, on
// the general path) to its meaning at any time a caller may pass: far past
// and future, the zero time, stale ones. TakeAll must admit exactly when
// every member, asked alone, would (Peek before the call); and a twin set
// that takes exactly the admitted TakeAlls' units, member by member, with
// no rollback, bounds every member: a member never admits more than its
// twin, at the call's time, at t0 or at any far time. (A member may admit
// less: a general-path rollback after a Take at a later time gives back
// less than it took, as a Refund may. TestTakeAllJointMatchesGeneral
// compares the joint path with the general one, so it keeps time moving
// forward.) The rolling windows are members but not checked: a rollback
// of a window they opened at a later time leaves no window, and a stale
// time then finds full capacity where the twin still counts the earlier
// window's units. rolling's refunds are exact only from the refunded
// Take's stamp on (conformance's Subject.Anchored), and the joint path
// leaves such a Take, which needs a new block, to the general path.)
func TestTakeAllJointFarTimes(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 19))
	far := farTimes()
	joint, twin := jointSet(t), jointSet(t)
	probes := append([]time.Time{t0}, far...)
	now := t0
	for i := range 2000 {
		switch r := rng.IntN(10); {
		case r < 5:
			now = now.Add(time.Duration(rng.IntN(3000)-1000) * time.Millisecond)
		case r < 7:
			now = far[rng.IntN(len(far))]
		default:
			now = t0.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		}
		perm := rng.Perm(len(joint))[:2+rng.IntN(3)]
		n := rng.IntN(7) - 1
		var js []ratekit.Limiter
		all := true
		for _, m := range perm {
			js = append(js, joint[m])
			if !joint[m].Peek(now, n).Allowed {
				all = false
			}
		}
		d := ratekit.TakeAll(now, n, js...)
		if d.Allowed != all {
			t.Fatalf("call %d: TakeAll(%v, %d) over %v = %v; each member's own Peek says %v",
				i, now, n, policies(js), d, all)
		}
		if all {
			for _, m := range perm {
				twin[m].Take(now, n)
			}
		}
		for m := range joint[:4] { // not the rolling windows: see below
			for _, at := range append(probes, now) {
				if got, want := capacity(joint[m], at), capacity(twin[m], at); got > want {
					t.Fatalf("call %d: after TakeAll(%v, %d) over %v (allowed %v), member %d admits %d at %v; "+
						"its twin, which took only what was admitted, %d",
						i, now, n, policies(js), all, m, got, at, want)
				}
			}
		}
	}
}

// capacity is how many units l admits at now in one Take, up to 64: the
// most a jointSet member's Peek allows, found by bisection.
func capacity(l ratekit.Limiter, now time.Time) int {
	lo, hi := 0, 64
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if l.Peek(now, mid).Allowed {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
