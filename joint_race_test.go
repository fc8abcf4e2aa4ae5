package ratekit_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestTakeAllJointExactUnderReplacement: TakeAlls at one frozen instant
// from several goroutines, over a token bucket of Burst 150 and windows
// with room for 1000, while other goroutines Reconfigure every member to its own
// Config (a replacement of its block that keeps its count), TakeEach and
// PeekAll the same members, another takes a unit from each window alone
// and refunds it, and an AllOf of them is taken too. Decided
// together, a TakeAll is one atomic step, denied only when the bucket is
// empty at that step: exactly 150 are admitted, whatever the interleaving,
// and every window then holds exactly those 150 units. (A TakeAll the
// joint path leaves to the general one keeps that count too: only the
// bucket ever denies, so no unit of it is ever rolled back.) Nothing here
// depends on timing. A joint path that commits the locked members when
// the loaded one's CAS fails (a lost update there) fails it under -race.
func TestTakeAllJointExactUnderReplacement(t *testing.T) {
	for range 20 {
		mk := clock.NewMock()
		mk.Set(t0)
		tcfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 150, Name: "tb", Clock: mk}
		fcfg := fixedwindow.Config{Limit: 1000, Window: time.Hour, Name: "fw", Clock: mk}
		scfg := slidingwindow.Config{Limit: 1000, Window: time.Hour, Name: "sc", Clock: mk}
		rcfg := rolling.Config{Limit: 1000, Window: time.Hour, Name: "ro", Clock: mk}
		tb, err := tokenbucket.New(tcfg)
		require.NoError(t, err)
		fw, err := fixedwindow.New(fcfg)
		require.NoError(t, err)
		sc, err := slidingwindow.NewCounter(scfg)
		require.NoError(t, err)
		ro, err := rolling.New(rcfg)
		require.NoError(t, err)
		all := ratekit.AllOf(ro, fw, tb, sc)

		var admitted atomic.Int64
		var stop atomic.Bool
		var wg, churn sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					var d ratekit.Decision
					switch g {
					case 0:
						d = ratekit.TakeAll(t0, 1, tb, fw, sc, ro)
					case 1:
						d = ratekit.TakeAll(t0, 1, sc, ro, fw, tb)
					case 2:
						d = all.Take(t0, 1)
					default:
						asks := []ratekit.Ask{{Limiter: fw, N: 1}, {Limiter: tb, N: 1}, {Limiter: ro, N: 1}, {Limiter: sc, N: 1}}
						d, _ = ratekit.TakeEach(t0, asks)
					}
					if d.Allowed {
						admitted.Add(1)
					} else if d.Policy != "tb" {
						t.Errorf("denied by %s, which had room: %v", d.Policy, d)
					}
				}
			}()
		}
		churn.Add(1)
		go func() {
			defer churn.Done()
			for !stop.Load() {
				require.NoError(t, tb.Reconfigure(tcfg))
				require.NoError(t, fw.Reconfigure(fcfg))
				require.NoError(t, sc.Reconfigure(scfg))
				require.NoError(t, ro.Reconfigure(rcfg))
				if d := ratekit.PeekAll(t0, 0, fw, sc, ro); !d.Allowed {
					t.Errorf("PeekAll of 0 denied: %v", d)
				}
			}
		}()
		churn.Add(1)
		go func() {
			// Each window alone: a unit taken and refunded at t0, so
			// that the member a joint decision loads rather than locks
			// changes under it and its CAS fails.
			defer churn.Done()
			for !stop.Load() {
				for _, l := range []ratekit.Limiter{fw, sc, ro} {
					if !l.Take(t0, 1).Allowed {
						t.Errorf("%s alone denied", l.Peek(t0, 0).Policy)
					}
					l.Refund(t0, 1)
				}
			}
		}()
		wg.Wait()
		stop.Store(true)
		churn.Wait()
		require.EqualValues(t, 150, admitted.Load())
		require.Equal(t, 0, tb.Peek(t0, 0).Remaining)
		for _, l := range []ratekit.Limiter{fw, sc, ro} {
			require.Equal(t, 1000-150, l.Peek(t0, 0).Remaining, "%s", l.Peek(t0, 0).Policy)
		}
	}
}

// TestTakeAllJointDenialUnderUnmarshal: TakeAlls at a frozen instant over
// an empty token bucket and three windows each holding 3 units, from
// several goroutines, while another restores every member from its own
// snapshot (UnmarshalBinary replaces its block with the same state) over
// and over. Every TakeAll is denied by the bucket, and a denial decided
// together stores nothing: the windows hold exactly their 3 units after,
// however the restores and the locks interleave, and no call waits
// forever on a lock a replacement left behind. Nothing depends on timing.
func TestTakeAllJointDenialUnderUnmarshal(t *testing.T) {
	mk := clock.NewMock()
	mk.Set(t0)
	tb, err := tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 2, Name: "tb", Clock: mk})
	require.NoError(t, err)
	fw, err := fixedwindow.New(fixedwindow.Config{Limit: 9, Window: time.Hour, Name: "fw", Clock: mk})
	require.NoError(t, err)
	sc, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 9, Window: time.Hour, Name: "sc", Clock: mk})
	require.NoError(t, err)
	ro, err := rolling.New(rolling.Config{Limit: 9, Window: time.Hour, Name: "ro", Clock: mk})
	require.NoError(t, err)
	require.True(t, tb.Take(t0, 2).Allowed)
	members := []ratekit.Limiter{tb, fw, sc, ro}
	type snapshotter interface {
		ratekit.Limiter
		MarshalBinary() ([]byte, error)
		UnmarshalBinary([]byte) error
	}
	snaps := make([][]byte, len(members))
	for i, m := range members {
		if i > 0 {
			require.True(t, m.Take(t0, 3).Allowed)
		}
		snaps[i], err = m.(snapshotter).MarshalBinary()
		require.NoError(t, err)
	}
	var stop atomic.Bool
	var wg, churn sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				var d ratekit.Decision
				switch g {
				case 0:
					d = ratekit.TakeAll(t0, 1, ro, sc, fw, tb)
				case 1:
					d = ratekit.PeekAll(t0, 1, fw, tb, ro)
				default:
					d, _ = ratekit.TakeEach(t0, []ratekit.Ask{{Limiter: sc, N: 2}, {Limiter: tb, N: 1}, {Limiter: fw, N: 1}})
				}
				if d.Allowed || d.Policy != "tb" {
					t.Errorf("call %d: %v; the empty bucket must deny", g, d)
				}
			}
		}()
	}
	churn.Add(1)
	go func() {
		defer churn.Done()
		for !stop.Load() {
			for i, m := range members {
				if err := m.(snapshotter).UnmarshalBinary(snaps[i]); err != nil {
					t.Errorf("restore %d: %v", i, err)
				}
			}
		}
	}()
	wg.Wait()
	stop.Store(true)
	churn.Wait()
	require.False(t, tb.Peek(t0, 1).Allowed)
	for _, l := range members[1:] {
		require.Equal(t, 6, l.Peek(t0, 0).Remaining, "%s", l.Peek(t0, 0).Policy)
	}
}

// TestTakeAllJointConservesUnits: goroutines run TakeAll, TakeEach and
// AllOf over random overlapping subsets of five members in random orders
// (so that a member is locked by some calls and loaded, the one stored by
// CAS, by others), at a frozen instant, while another Reconfigures every
// member to its own Config. Afterwards each member holds exactly the units
// of the admitted calls it was in: a joint admission stores every
// member's word or none, and a denial none, however the locks interleave.
// Nothing depends on timing: the counts are the callers' own.
func TestTakeAllJointConservesUnits(t *testing.T) {
	mk := clock.NewMock()
	mk.Set(t0)
	t1cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1000, Name: "tb1", Clock: mk}
	t2cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 800, Name: "tb2", Clock: mk}
	fcfg := fixedwindow.Config{Limit: 1500, Window: time.Hour, Name: "fw", Clock: mk}
	scfg := slidingwindow.Config{Limit: 1200, Window: time.Hour, Name: "sc", Clock: mk}
	rcfg := rolling.Config{Limit: 1300, Window: time.Hour, Name: "ro", Clock: mk}
	tb1, err := tokenbucket.New(t1cfg)
	require.NoError(t, err)
	tb2, err := tokenbucket.New(t2cfg)
	require.NoError(t, err)
	fw, err := fixedwindow.New(fcfg)
	require.NoError(t, err)
	sc, err := slidingwindow.NewCounter(scfg)
	require.NoError(t, err)
	ro, err := rolling.New(rcfg)
	require.NoError(t, err)
	members := []ratekit.Limiter{tb1, tb2, fw, sc, ro}
	capacity := []int{1000, 800, 1500, 1200, 1300}

	const workers = 4
	var taken [workers][5]int
	var stop atomic.Bool
	var wg, churn sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 29))
			for range 1500 {
				perm := rng.Perm(len(members))[:2+rng.IntN(3)]
				n := 1 + rng.IntN(2)
				var ls []ratekit.Limiter
				var asks []ratekit.Ask
				for _, m := range perm {
					ls = append(ls, members[m])
					asks = append(asks, ratekit.Ask{Limiter: members[m], N: n})
				}
				var d ratekit.Decision
				switch rng.IntN(3) {
				case 0:
					d = ratekit.TakeAll(t0, n, ls...)
				case 1:
					d, _ = ratekit.TakeEach(t0, asks)
				default:
					d = ratekit.AllOf(ls...).Take(t0, n)
				}
				if d.Allowed {
					for _, m := range perm {
						taken[g][m] += n
					}
				}
			}
		}()
	}
	churn.Add(1)
	go func() {
		defer churn.Done()
		for !stop.Load() {
			require.NoError(t, tb1.Reconfigure(t1cfg))
			require.NoError(t, tb2.Reconfigure(t2cfg))
			require.NoError(t, fw.Reconfigure(fcfg))
			require.NoError(t, sc.Reconfigure(scfg))
			require.NoError(t, ro.Reconfigure(rcfg))
		}
	}()
	wg.Wait()
	stop.Store(true)
	churn.Wait()
	for m, l := range members {
		sum := 0
		for g := range workers {
			sum += taken[g][m]
		}
		require.Equal(t, capacity[m]-sum, l.Peek(t0, 0).Remaining, "%s: admitted calls took %d units", l.Peek(t0, 0).Policy, sum)
	}
}
