package ratekit_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Per-key limiters of a Keyed as members of TakeAll, AllOf, TakeEach and
// PeekAll. Their state lives in the Keyed's table slot (keyed_slot.go) and
// moves, with internal/cell's MoveTo, when the table is rebuilt, when the
// key is dropped (Sweep, eviction, Delete) and when the limiter is
// reconfigured or restored, while the joint path (joint.go) locks those
// same words. Questions these tests answer: can a move take a word a joint
// decision holds locked (a lost update, a unit taken from a copy that was
// moved away)? Can a lock travel into a new slot (a hang)? Does a dropped
// key's limiter, still held as a member, act as Keyed's doc says? Does an
// AllOf planned before the moves still decide on the state in force?

// slotMover is what an algorithm registers for Keyed's slots (keyed_slot.go).
type slotMover interface{ Mover(l any) cell.Mover }

// moverOf returns the Ref of l, an algorithm limiter that keeps its state
// in Keyed slots, as Keyed moves it.
func moverOf(t testing.TB, l any) cell.Mover {
	t.Helper()
	m, ok := cell.SlotterFor(reflect.TypeOf(l)).(slotMover)
	require.True(t, ok, "%T registers no slotter", l)
	return m.Mover(l)
}

// widenMoves makes every move yield between its copy and its publication
// for the rest of t (see cell.MoveHook): a move that failed to wait for a
// lock, or to seal, would then lose the updates made meanwhile far more
// often. The root package's tests are not parallel.
func widenMoves(t *testing.T) {
	cell.MoveHook = runtime.Gosched
	t.Cleanup(func() { cell.MoveHook = nil })
}

// TestKeyedJointConservesUnitsUnderMoves: TakeAll, TakeEach, an AllOf
// planned once, and Keyed.Take by key, at one frozen instant, over a
// user's token bucket from one Keyed and a system fixed window, sliding
// Counter and rolling window from three others (rolling's state stays in
// its limiter, locked in helping mode), while other goroutines rebuild the
// tables (inserting and deleting other keys: every rebuild moves the hot
// keys' states into new slots, each move widened by cell.MoveHook), Sweep
// them, Reconfigure every hot limiter to its own Config (its state out of
// line; Keyed.Take then rebuilds to bring it back), restore an empty
// user's bucket from its own snapshot, and take and refund a unit of each
// system window alone, by Get's limiter and by Keyed.Take (so the member a
// joint decision loads, not locks, changes under it).
//
// Only a user's bucket can deny (the windows have room for every unit the
// buckets hold), so the counts are exact whatever the interleaving: each
// user's bucket ends holding exactly the units its admitted calls took,
// and each window exactly the joint admissions (the rolling window takes
// those of the TakeAll without it alone, after it), none lost to a move,
// none counted twice, none left behind by a denial. A key's limiter is
// the same one throughout (hot keys are never idle, so Sweep keeps them).
// Nothing depends on timing: every count is the callers' own.
func TestKeyedJointConservesUnitsUnderMoves(t *testing.T) {
	widenMoves(t)
	for rep := range 3 {
		keyedJointRun(t, uint64(rep))
	}
}

func keyedJointRun(t *testing.T, seed uint64) {
	mk := clock.NewMock()
	mk.Set(t0)
	user := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 40, Name: "user", Clock: mk}
	frozen := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 2, Name: "frozen", Clock: mk}
	other := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 5, Name: "other", Clock: mk}
	wcfg := fixedwindow.Config{Limit: 1000, Window: time.Hour, Name: "sysw", Clock: mk}
	ccfg := slidingwindow.Config{Limit: 1000, Window: time.Hour, Name: "sysc", Clock: mk}
	rcfg := rolling.Config{Limit: 1000, Window: time.Hour, Name: "sysr", Clock: mk}
	userCfg := func(key string) tokenbucket.Config {
		switch {
		case key == "frozen":
			return frozen
		case len(key) == 2 && key[0] == 'u':
			return user
		}
		return other
	}
	// MaxKeys 64: one shard per Keyed, so every few inserts and deletes of
	// other keys rebuild the table that holds the hot keys. The churn keeps
	// fewer than 64 keys, so none is evicted.
	kcfg := ratekit.KeyedConfig{MaxKeys: 64, Clock: mk}
	users := ratekit.NewKeyed(func(key string) *tokenbucket.Limiter {
		l, err := tokenbucket.New(userCfg(key))
		if err != nil {
			panic(err)
		}
		return l
	}, kcfg)
	wins := ratekit.NewKeyed(func(int) *fixedwindow.Limiter {
		l, err := fixedwindow.New(wcfg)
		if err != nil {
			panic(err)
		}
		return l
	}, kcfg)
	ctrs := ratekit.NewKeyed(func(string) *slidingwindow.Counter {
		l, err := slidingwindow.NewCounter(ccfg)
		if err != nil {
			panic(err)
		}
		return l
	}, kcfg)
	// rolling keeps its state in the limiter (plain slot): nothing moves
	// it, but a joint decision locks it in helping mode (cell.Locked).
	rolls := ratekit.NewKeyed(func(string) *rolling.Limiter {
		l, err := rolling.New(rcfg)
		if err != nil {
			panic(err)
		}
		return l
	}, kcfg)
	const sysKey = 1

	names := []string{"u0", "u1", "u2", "u3", "frozen"}
	capacity := []int{40, 40, 40, 40, 2}
	first := make([]*tokenbucket.Limiter, len(names))
	alls := make([]*ratekit.All, len(names))
	// One unit each, so that no hot key is ever idle (Sweep keeps them);
	// the frozen bucket is emptied and snapshotted.
	for i, u := range names {
		first[i] = users.Get(u)
		n := 1
		if u == "frozen" {
			n = 2
		}
		require.True(t, users.Take(t0, u, n).Allowed)
		alls[i] = ratekit.AllOf(ctrs.Get("sys"), first[i], rolls.Get("sys"), wins.Get(sysKey))
		require.True(t, ratekit.KeyedStateInSlot(users, u))
	}
	require.True(t, wins.Take(t0, sysKey, 1).Allowed)
	require.True(t, ctrs.Take(t0, "sys", 1).Allowed)
	require.True(t, rolls.Take(t0, "sys", 1).Allowed)
	require.True(t, ratekit.KeyedStateInSlot(wins, sysKey))
	require.True(t, ratekit.KeyedStateInSlot(ctrs, "sys"))
	frozenSnap, err := users.Get("frozen").MarshalBinary()
	require.NoError(t, err)
	tables := []weak.Pointer[byte]{ratekit.KeyedTableOf(users, "u0"), ratekit.KeyedTableOf(wins, sysKey), ratekit.KeyedTableOf(ctrs, "sys")}

	const workers = 4
	var userAdm [workers][5]int
	var sysAdm [workers]int
	var stop atomic.Bool
	var wg, churn sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for range 300 {
				i := rng.IntN(len(names))
				u := names[i]
				ul, w, c, ro := users.Get(u), wins.Get(sysKey), ctrs.Get("sys"), rolls.Get("sys")
				if ul != first[i] {
					t.Errorf("%s: Get returned another limiter: the key was dropped", u)
					return
				}
				var d ratekit.Decision
				joint := true
				switch rng.IntN(7) {
				case 0:
					d = ratekit.TakeAll(t0, 1, ul, w, c, ro)
				case 1:
					d = ratekit.TakeAll(t0, 1, c, ro, ul, w)
				case 2:
					d = ratekit.TakeAll(t0, 1, w, c, ul)
					if d.Allowed {
						// The rolling window too, alone, so that it
						// counts every joint admission.
						if !ro.Take(t0, 1).Allowed {
							t.Error("the rolling window alone denied")
						}
					}
				case 3:
					d = alls[i].Take(t0, 1)
				case 4:
					asks := []ratekit.Ask{{Limiter: w, N: 1}, {Limiter: ro, N: 1}, {Limiter: ul, N: 1}, {Limiter: c, N: 1}}
					d, _ = ratekit.TakeEach(t0, asks)
				case 5:
					d, joint = users.Take(t0, u, 1), false
				default:
					if p := ratekit.PeekAll(t0, 0, ul, w, ro, c); !p.Allowed {
						t.Errorf("PeekAll of 0 denied: %+v", p)
					}
					if p := alls[i].Peek(t0, 1); !p.Allowed && p.Policy != userCfg(u).Name {
						t.Errorf("%s: Peek denied by %q, which had room: %+v", u, p.Policy, p)
					}
					continue
				}
				switch {
				case d.Allowed:
					userAdm[g][i]++
					if joint {
						sysAdm[g]++
					}
				case d.Policy != userCfg(u).Name:
					t.Errorf("%s: denied by %q, which had room: %+v", u, d.Policy, d)
				}
			}
		})
	}
	// Rebuilds and Sweeps: insert and delete other keys in every Keyed.
	churn.Go(func() {
		for i := 0; !stop.Load() || i < 64; i++ {
			users.Get(fmt.Sprint("other-", i))
			wins.Get(1000 + i)
			ctrs.Get(fmt.Sprint("other-", i))
			if i >= 6 {
				users.Delete(fmt.Sprint("other-", i-6))
				wins.Delete(1000 + i - 6)
				ctrs.Delete(fmt.Sprint("other-", i-6))
			}
			if i%16 == 0 {
				users.Sweep(t0)
				wins.Sweep(t0)
				ctrs.Sweep(t0)
			}
		}
	})
	// Replacements: the same Configs (the counts stay), the same state.
	churn.Go(func() {
		for i := 0; !stop.Load() || i < 8; i++ {
			for _, u := range names {
				if err := users.Get(u).Reconfigure(userCfg(u)); err != nil {
					t.Error(err)
				}
			}
			if err := wins.Get(sysKey).Reconfigure(wcfg); err != nil {
				t.Error(err)
			}
			if err := ctrs.Get("sys").Reconfigure(ccfg); err != nil {
				t.Error(err)
			}
			if err := rolls.Get("sys").Reconfigure(rcfg); err != nil {
				t.Error(err)
			}
			if err := users.Get("frozen").UnmarshalBinary(frozenSnap); err != nil {
				t.Error(err)
			}
		}
	})
	// Each window alone: a unit taken and given back, through the limiter
	// and through the slot.
	churn.Go(func() {
		for i := 0; !stop.Load() || i < 8; i++ {
			if !wins.Get(sysKey).Take(t0, 1).Allowed || !ctrs.Take(t0, "sys", 1).Allowed {
				t.Error("a system window alone denied")
			}
			if !rolls.Take(t0, "sys", 1).Allowed {
				t.Error("the rolling window alone denied")
			}
			wins.Get(sysKey).Refund(t0, 1)
			ctrs.Get("sys").Refund(t0, 1)
			rolls.Get("sys").Refund(t0, 1)
			if !wins.Take(t0, sysKey, 1).Allowed {
				t.Error("the system window alone denied")
			}
			wins.Get(sysKey).Refund(t0, 1)
		}
	})
	wg.Wait()
	stop.Store(true)
	churn.Wait()

	sys := 0
	for g := range workers {
		sys += sysAdm[g]
	}
	for i, u := range names {
		adm := 0
		for g := range workers {
			adm += userAdm[g][i]
		}
		taken := 1
		if u == "frozen" {
			taken = 2
		}
		require.Same(t, first[i], users.Get(u), "%s was dropped", u)
		require.LessOrEqual(t, adm, capacity[i]-taken, "%s over-admitted", u)
		require.Equal(t, capacity[i]-taken-adm, users.Get(u).Peek(t0, 0).Remaining, "%s: its admitted calls took %d", u, adm)
	}
	require.Equal(t, 999-sys, wins.Get(sysKey).Peek(t0, 0).Remaining, "fixed window: joint admissions %d", sys)
	require.Equal(t, 999-sys, ctrs.Get("sys").Peek(t0, 0).Remaining, "counter: joint admissions %d", sys)
	require.Equal(t, 999-sys, rolls.Get("sys").Peek(t0, 0).Remaining, "rolling: joint admissions %d", sys)
	// The churn did move the hot keys: every table was rebuilt.
	now := []weak.Pointer[byte]{ratekit.KeyedTableOf(users, "u0"), ratekit.KeyedTableOf(wins, sysKey), ratekit.KeyedTableOf(ctrs, "sys")}
	for j := range tables {
		require.True(t, tables[j] != now[j], "table %d was never rebuilt", j)
	}
}

// TestKeyedJointTwinScript: an AllOf planned once over a user's token
// bucket and a system sliding Counter, each a key of its own Keyed, and
// TakeAll, TakeEach and PeekAll over the limiters Get returns, decide
// exactly as the same calls over lone twin limiters, step by step at
// moving and stale times, while the script rebuilds both tables (each
// rebuild moves both states into new slots), Reconfigures the bucket to
// other Configs (its state out of line, then back in a slot once
// Keyed.Take has found it outside often enough), restores both from their
// twins' snapshots, and refunds admitted composites. A plan that kept a
// member's old block or parameters, or a move that lost a word, shows as
// a Decision unlike the twins'. Sequential: the seed replays it.
func TestKeyedJointTwinScript(t *testing.T) {
	seed := conformance.Seed(t)
	r := rand.New(rand.NewPCG(seed, 17))
	tcfgs := []tokenbucket.Config{
		{Limit: 6, Window: time.Second, Burst: 6, Name: "user"},
		{Limit: 3, Window: time.Second, Burst: 8, Name: "user"},
		{Limit: 12, Window: 2 * time.Second, Burst: 4, Name: "user-low"},
	}
	ccfg := slidingwindow.Config{Limit: 9, Window: time.Second, Name: "sys"}
	kcfg := ratekit.KeyedConfig{MaxKeys: 64, Clock: fixedNow(t0)} // one shard each
	users := ratekit.NewKeyed(func(string) *tokenbucket.Limiter {
		c := tcfgs[0]
		c.Clock = fixedNow(t0)
		l, err := tokenbucket.New(c)
		if err != nil {
			panic(err)
		}
		return l
	}, kcfg)
	ctrs := ratekit.NewKeyed(func(int) *slidingwindow.Counter {
		c := ccfg
		c.Clock = fixedNow(t0)
		l, err := slidingwindow.NewCounter(c)
		if err != nil {
			panic(err)
		}
		return l
	}, kcfg)
	tc := tcfgs[0]
	tc.Clock = fixedNow(t0)
	twinB, err := tokenbucket.New(tc)
	require.NoError(t, err)
	cc := ccfg
	cc.Clock = fixedNow(t0)
	twinC, err := slidingwindow.NewCounter(cc)
	require.NoError(t, err)

	ub, sc := users.Get("u"), ctrs.Get(7)
	all, twinAll := ratekit.AllOf(ub, sc), ratekit.AllOf(twinB, twinC)
	type taken struct {
		at time.Time
		n  int
	}
	var admitted []taken
	now, other, moves := t0, 0, 0
	rebuild := func() {
		tu, tcs := ratekit.KeyedTableOf(users, "u"), ratekit.KeyedTableOf(ctrs, 7)
		for ratekit.KeyedTableOf(users, "u") == tu || ratekit.KeyedTableOf(ctrs, 7) == tcs {
			other++
			users.Get(fmt.Sprint("o", other))
			ctrs.Get(1000 + other)
			if other > 4 {
				users.Delete(fmt.Sprint("o", other-4))
				ctrs.Delete(1000 + other - 4)
			}
		}
		moves++
	}
	for step := range 1500 {
		now = now.Add(time.Duration(r.IntN(120)) * time.Millisecond)
		at := now
		if r.IntN(5) == 0 {
			at = now.Add(-time.Duration(r.IntN(400)) * time.Millisecond) // stale
		}
		n := r.IntN(4)
		where := fmt.Sprintf("step %d (seed %d)", step, seed)
		// Get's limiters never change: no key is dropped.
		require.Same(t, ub, users.Get("u"), where)
		require.Same(t, sc, ctrs.Get(7), where)
		var got, want ratekit.Decision
		switch x := r.IntN(24); {
		case x < 5:
			got, want = all.Take(at, n), twinAll.Take(at, n)
		case x < 9:
			got, want = ratekit.TakeAll(at, n, sc, ub), ratekit.TakeAll(at, n, twinC, twinB)
		case x < 11:
			m := r.IntN(3)
			asks := []ratekit.Ask{{Limiter: ub, N: n}, {Limiter: sc, N: m}}
			twinAsks := []ratekit.Ask{{Limiter: twinB, N: n}, {Limiter: twinC, N: m}}
			got, _ = ratekit.TakeEach(at, asks)
			want, _ = ratekit.TakeEach(at, twinAsks)
			require.Equal(t, twinAsks[0].Verdict, asks[0].Verdict, where)
			require.Equal(t, twinAsks[1].Verdict, asks[1].Verdict, where)
			if want.Allowed && n == m {
				admitted = append(admitted, taken{at, n})
			}
			require.Equal(t, want, got, where)
			continue
		case x < 13:
			got, want = ratekit.PeekAll(at, n, ub, sc), ratekit.PeekAll(at, n, twinB, twinC)
			require.Equal(t, want, got, where)
			got, want = all.Peek(at, n), twinAll.Peek(at, n)
			require.Equal(t, want, got, where)
			continue
		case x < 15:
			// Through the slot (or, with the state out of line, the
			// limiter): the user's bucket alone.
			got, want = users.Take(at, "u", n), twinB.Take(at, n)
			require.Equal(t, want, got, where)
			continue
		case x < 17:
			if len(admitted) > 0 {
				i := r.IntN(len(admitted))
				a := admitted[i]
				admitted = append(admitted[:i], admitted[i+1:]...)
				all.Refund(a.at, a.n)
				twinAll.Refund(a.at, a.n)
			}
			continue
		case x < 19:
			rebuild()
			require.True(t, ratekit.KeyedStateInSlot(users, "u"), where)
			require.True(t, ratekit.KeyedStateInSlot(ctrs, 7), where)
			continue
		case x < 21:
			c := tcfgs[r.IntN(len(tcfgs))]
			c.Clock = fixedNow(now)
			require.NoError(t, twinB.Reconfigure(c), where)
			require.NoError(t, ub.Reconfigure(c), where)
			require.False(t, ratekit.KeyedStateInSlot(users, "u"), where)
			if r.IntN(2) == 0 {
				// Takes of nothing that find the state outside its slot
				// rebuild the table (keyed_slot.go, Keyed.outside).
				for range 17 {
					require.Equal(t, twinB.Take(now, 0), users.Take(now, "u", 0), where)
				}
				require.True(t, ratekit.KeyedStateInSlot(users, "u"), where)
			}
			continue
		default:
			bs, err := twinB.MarshalBinary()
			require.NoError(t, err)
			cs, err := twinC.MarshalBinary()
			require.NoError(t, err)
			gotB, err := ub.MarshalBinary()
			require.NoError(t, err)
			gotC, err := sc.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, bs, gotB, where)
			require.Equal(t, cs, gotC, where)
			require.NoError(t, ub.UnmarshalBinary(bs), where)
			require.NoError(t, sc.UnmarshalBinary(cs), where)
			require.NoError(t, twinB.UnmarshalBinary(bs), where)
			require.NoError(t, twinC.UnmarshalBinary(cs), where)
			continue
		}
		require.Equal(t, want, got, where)
		if want.Allowed && n > 0 {
			admitted = append(admitted, taken{at, n})
		}
	}
	require.Positive(t, moves)
}
