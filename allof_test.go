package ratekit_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
)

var t0 = conformance.DefaultStart

func TestCounterConforms(t *testing.T) {
	// The suite checks itself on the simplest Holder there is.
	conformance.Run(t, conformance.Subject{
		New:      func(testing.TB) ratekit.Limiter { return newCounter("ctr", 10, time.Second, time.Second) },
		Capacity: 10,
		Policy:   "ctr",
		Holder:   true,
		// AllOf has no Reconfigure: each member is reconfigured on its own.
		NoReconfigure: "a composite: its members are reconfigured each on its own",
	})
}

func TestTakeAllBindsLeastRemaining(t *testing.T) {
	day := newCounter("day", 100, time.Hour, 24*time.Hour)
	minute := newCounter("minute", 10, time.Second, time.Minute)
	d := ratekit.TakeAll(t0, 3, day, minute)
	require.True(t, d.Allowed)
	require.Equal(t, "minute", d.Policy, "the member with the least Remaining binds")
	require.Equal(t, 7, d.Remaining)
	require.Equal(t, 3, day.Used())
	require.Equal(t, 3, minute.Used())
}

func TestTakeAllTieBindsLongestReset(t *testing.T) {
	short := newCounter("short", 10, time.Second, time.Minute)
	long := newCounter("long", 10, time.Second, time.Hour)
	for _, members := range [][]ratekit.Limiter{{short, long}, {long, short}} {
		d := ratekit.TakeAll(t0, 1, members...)
		require.True(t, d.Allowed)
		require.Equal(t, "long", d.Policy, "equal Remaining: the longest ResetAfter binds")
		require.Equal(t, time.Hour, d.ResetAfter)
		ratekit.ReleaseAll(1, members...)
	}
}

func TestTakeAllDenialRollsBackAndReportsLongestRetry(t *testing.T) {
	first := newCounter("first", 10, time.Second, time.Minute)
	soon := newCounter("soon", 1, 5*time.Second, time.Minute)
	later := newCounter("later", 1, 30*time.Second, time.Minute)
	fine := newCounter("fine", 10, time.Second, time.Minute)
	require.True(t, soon.Take(t0, 1).Allowed)
	require.True(t, later.Take(t0, 1).Allowed)

	d := ratekit.TakeAll(t0, 1, first, soon, fine, later)
	require.False(t, d.Allowed)
	require.Equal(t, "later", d.Policy, "the longest RetryAfter among all members that would deny")
	require.Equal(t, 30*time.Second, d.RetryAfter)
	require.Equal(t, 0, first.Used(), "first admitted, then was refunded")
	require.Equal(t, 0, fine.Used(), "members after the denial are peeked, never taken")
	require.Equal(t, 0, fine.takes)
	require.Equal(t, ratekit.PeekAll(t0, 1, first, soon, fine, later), d, "PeekAll agrees with TakeAll")
}

func TestTakeAllNeverStopsPeeking(t *testing.T) {
	small := newCounter("small", 2, time.Second, time.Minute)
	after := newCounter("after", 10, time.Second, time.Minute)
	d := ratekit.TakeAll(t0, 5, small, after)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.RetryAfter)
	require.Equal(t, "small", d.Policy)
	require.Zero(t, after.peeks, "nothing outlasts Never: no member after it is asked")
}

func TestTakeAllEdgeUnits(t *testing.T) {
	a := newCounter("a", 3, time.Second, time.Minute)
	b := newCounter("b", 3, time.Second, time.Minute)
	require.True(t, ratekit.TakeAll(t0, 0, a, b).Allowed)
	d := ratekit.TakeAll(t0, -1, a, b)
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.RetryAfter)
	require.Zero(t, a.Used()+b.Used())

	require.Equal(t, ratekit.Decision{Allowed: true}, ratekit.TakeAll(t0, 5))
	require.Equal(t, ratekit.Decision{RetryAfter: ratekit.Never}, ratekit.TakeAll(t0, -1))
}

func TestAllOfHolderRelease(t *testing.T) {
	rate := newCounter("rate", 5, time.Second, time.Minute)
	conc := newCounter("conc", 2, time.Second, time.Minute)
	all := ratekit.AllOf(rate, nil, conc)
	require.Len(t, all.Members(), 2, "nil members are skipped")

	require.True(t, all.Take(t0, 2).Allowed)
	d := all.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, "conc", d.Policy)
	require.Equal(t, 2, rate.Used(), "the denied Take was rolled back in rate")

	// ReleaseAll releases Holders only; a plain rate member keeps its units.
	ratekit.ReleaseAll(2, ratekit.Limiter(rateOnly{rate}), conc)
	require.Equal(t, 0, conc.Used())
	require.Equal(t, 2, rate.Used())

	// All.Release releases Holder members (our counter is one).
	require.True(t, all.Take(t0, 1).Allowed)
	all.Release(1)
	require.Equal(t, 0, conc.Used())
	require.Equal(t, 2, rate.Used())
}

// rateOnly hides a counter's Release, to stand for a rate limiter.
type rateOnly struct{ c *counter }

func (r rateOnly) Take(now time.Time, n int) ratekit.Decision { return r.c.Take(now, n) }
func (r rateOnly) Peek(now time.Time, n int) ratekit.Decision { return r.c.Peek(now, n) }
func (r rateOnly) Refund(at time.Time, n int)                 { r.c.Refund(at, n) }

func TestAllOfNests(t *testing.T) {
	inner := ratekit.AllOf(newCounter("a", 5, time.Second, time.Minute), newCounter("b", 3, 2*time.Second, time.Minute))
	outer := ratekit.AllOf(newCounter("c", 4, 3*time.Second, time.Minute), inner)
	d := outer.Take(t0, 3)
	require.True(t, d.Allowed)
	require.Equal(t, "b", d.Policy)
	require.Equal(t, 0, d.Remaining)
	d = outer.Take(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, "b", d.Policy)
	outer.Refund(t0, 3)
	require.True(t, outer.Peek(t0, 3).Allowed)
}

func TestTakeAllAllocatesNothing(t *testing.T) {
	a := newCounter("a", 1<<30, time.Second, time.Minute)
	b := newCounter("b", 1<<30, time.Second, time.Minute)
	members := []ratekit.Limiter{a, b}
	all := ratekit.AllOf(a, b)
	allocs := testing.AllocsPerRun(100, func() {
		ratekit.TakeAll(t0, 1, members...)
		ratekit.PeekAll(t0, 1, members...)
		all.Take(t0, 1)
		ratekit.ReleaseAll(2, members...)
	})
	require.Zero(t, allocs)
}

func TestTakeAllRaceNeverOverAdmits(t *testing.T) {
	// Both members admit 100 in all; half the goroutines take from both, half
	// from b alone. However they interleave, b never admits more than 100
	// and a holds exactly the units of allowed TakeAlls.
	for rep := 0; rep < 20; rep++ {
		a := newCounter("a", 100, time.Second, time.Minute)
		b := newCounter("b", 100, time.Second, time.Minute)
		var both, onlyB atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					if g%2 == 0 {
						if ratekit.TakeAll(t0, 1, a, b).Allowed {
							both.Add(1)
						}
					} else if b.Take(t0, 1).Allowed {
						onlyB.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int(both.Load()), a.Used())
		require.Equal(t, int(both.Load()+onlyB.Load()), b.Used())
		require.LessOrEqual(t, b.Used(), 100)
	}
}
