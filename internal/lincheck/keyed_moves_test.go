package lincheck

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Keyed with the state in the table slots (keyed_slot.go in the root
// package): every key's state block moves, with cell's MoveTo, when its key
// is inserted (from the factory's limiter into the slot), when its shard's
// table is rebuilt (into the new table's slot) and when its key is dropped
// (out to a block of its own), and it is replaced (the slot's block sealed,
// the Keyed's Take falling back on the limiter) by Reconfigure and
// UnmarshalBinary on the limiter Get returns. These histories run all of
// that under Takes by the Keyed, Takes, Peeks and Refunds on Get's limiter,
// Sweeps and Deletes, for integer keys (compared in the slot) and short
// string keys (their bytes in the slot), with and without MaxKeys.
//
// The model is keyedModel's (live bucket and ghost), with Reconfigure and
// Unmarshal applied to either, and Delete, which reports whether it found
// the key, making the live bucket the ghost.

// moveConfigs are the Reconfigures' configs: time scales that divide one
// another, as bucketConfigs'.
var moveConfigs = []tokenbucket.Config{keyedConfig, bucketConfigs[0], bucketConfigs[1]}

func applyMove(m *model.TokenBucket, in input, snaps []snapshot[*model.TokenBucket]) output {
	switch in.Kind {
	case opReconfigure:
		c := moveConfigs[in.Arg]
		m.Reconfigure(t0.Add(in.Now), c.Limit, c.Window, c.Burst, c.Name)
		return output{}
	case opRestore:
		m.Restore(snaps[in.Arg].m)
		return output{}
	}
	return applyBucket(m, in)
}

// movesModel is keyedModel with Reconfigure, Unmarshal and Delete.
func movesModel(evict bool, snaps []snapshot[*model.TokenBucket]) porcupine.Model {
	base := keyedModel(evict)
	nm := porcupine.NondeterministicModel{
		Partition: base.Partition,
		Init:      func() []any { return []any{newKeyState(freshBucket(), nil)} },
		Step: func(s, inAny, outAny any) []any {
			st, in, out := s.(*keyState), inAny.(input), outAny.(output)
			var next []any
			switch in.Kind {
			case opStamp:
				return []any{st}
			case opSweep:
				next = append(next, st)
				if st.live.Idle(t0.Add(in.Now)) {
					next = append(next, newKeyState(freshBucket(), st.live))
				}
				return next
			case opDelete:
				if out.Err == "deleted" {
					return []any{newKeyState(freshBucket(), st.live)}
				}
				next = append(next, st)
				if evict {
					next = append(next, newKeyState(freshBucket(), st.live))
				}
				return next
			}
			try := func(live, ghost *model.TokenBucket, onGhost bool) {
				live = live.Clone()
				if ghost != nil {
					ghost = ghost.Clone()
				}
				target := live
				if onGhost {
					target = ghost
				}
				if applyMove(target, in, snaps) != out {
					return
				}
				next = append(next, newKeyState(live, ghost))
			}
			try(st.live, st.ghost, false)
			if st.ghost != nil {
				try(st.live, st.ghost, true)
			}
			if evict {
				try(freshBucket(), st.live, false) // evicted just before
			}
			return next
		},
		Equal: func(a, b any) bool { return a.(*keyState).k == b.(*keyState).k },
		Hash: func(s any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(s.(*keyState).k))
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string { return fmt.Sprintf("%v -> %v", in, out) },
		DescribeState:     func(s any) string { return s.(*keyState).k },
	}
	return nm.ToModel()
}

// movesHistory is a history of a Keyed[K, *tokenbucket.Limiter], keyOf
// making the key of each int.
//
// With churn, the Keyed has one shard (MaxKeys 64, never reached) and the
// background goroutine inserts and at once deletes keys, so that the
// shard's table is compacted every few deletes, each time moving the hot
// keys' states into a new table under the recorded operations.
func movesHistory[K comparable](t *testing.T, r *rand.Rand, maxKeys int, churn bool, keyOf func(int) K) *history {
	snaps := snapshots(t, r, nSnapshots, 150*time.Millisecond,
		func() (*tokenbucket.Limiter, *model.TokenBucket) {
			return newBucket(t, keyedConfig), freshBucket()
		},
		func(m *model.TokenBucket, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) })
	cfg := keyedConfig
	cfg.Clock = fixedClock{t: t0}
	k := ratekit.NewKeyed(func(K) *tokenbucket.Limiter {
		runtime.Gosched()
		l, _ := tokenbucket.New(cfg) // validated by newBucket above
		return l
	}, ratekit.KeyedConfig{MaxKeys: maxKeys, Clock: fixedClock{t: t0}})
	evict := maxKeys > 0
	if churn {
		if maxKeys != 0 {
			t.Fatal("churn sets MaxKeys")
		}
		k = ratekit.NewKeyed(func(K) *tokenbucket.Limiter {
			runtime.Gosched()
			l, _ := tokenbucket.New(cfg)
			return l
		}, ratekit.KeyedConfig{MaxKeys: 64, Clock: fixedClock{t: t0}})
	}
	return &history{
		do: func(in input) output {
			key := keyOf(in.Key)
			switch in.Kind {
			case opTake:
				if in.Arg == 1 {
					return output{D: k.Get(key).Take(t0.Add(in.Now), in.N)}
				}
				return output{D: k.Take(t0.Add(in.Now), key, in.N)}
			case opPeek:
				return output{D: k.Get(key).Peek(t0.Add(in.Now), in.N)}
			case opRefund:
				k.Get(key).Refund(t0.Add(in.At), in.N)
			case opSweep:
				k.Sweep(t0.Add(in.Now))
			case opReconfigure:
				c := moveConfigs[in.Arg]
				c.Clock = fixedClock{t: t0.Add(in.Now)}
				return output{Err: errText(k.Get(key).Reconfigure(c))}
			case opRestore:
				return output{Err: errText(k.Get(key).UnmarshalBinary(snaps[in.Arg].b))}
			case opDelete:
				if k.Delete(key) {
					return output{Err: "deleted"}
				}
			}
			return output{}
		},
		model:      movesModel(evict, snaps),
		stampBurst: bucketMaxBurst,
		maxOps:     30,
		background: func(stop <-chan struct{}) {
			for key := wide(1 << 40); ; key++ { // on 32-bit platforms, from math.MaxInt on: it wraps to negative keys, unrecorded all the same
				select {
				case <-stop:
					return
				default:
				}
				k.Take(t0, keyOf(key), 1)
				if churn {
					k.Delete(keyOf(key))
				}
				if key%16 == 0 {
					runtime.Gosched()
				}
			}
		},
		next: func(g *goroutine) input {
			in := input{Now: g.now(), N: g.units(), Key: 1 + g.r.IntN(hotKeys)}
			switch x := g.r.IntN(24); {
			case x < 6:
				in.Kind = opTake
			case x < 8:
				in.Kind, in.Arg = opTake, 1 // on Get's limiter
			case x < 9:
				in.Kind = opPeek
			case x < 11:
				in.Kind, in.At = opRefund, g.refundAt(in.Now)
			case x < 12:
				in.Kind, in.Key = opSweep, 0
			case x < 13:
				in.Kind, in.Arg = opReconfigure, g.r.IntN(len(moveConfigs))
			case x < 14:
				in.Kind, in.Arg = opRestore, g.r.IntN(nSnapshots)
			case x < 15:
				in.Kind = opDelete
			default:
				in.Kind, in.Key = opTake, 1000+int(g.r.Int64N(1<<40))
			}
			return in
		},
	}
}

// shortKey is a string key kept inline in its slot.
func shortKey(i int) string { return "k" + strconv.Itoa(i) }

func TestKeyedMovesIntKeys(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return movesHistory(t, r, 0, false, func(i int) int { return i })
	})
}

// TestKeyedMovesChurn moves the hot keys' states between tables every few
// operations (see movesHistory).
func TestKeyedMovesChurn(t *testing.T) {
	yieldInMoves(t)
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return movesHistory(t, r, 0, true, shortKey)
	})
}

func TestKeyedMovesChurnIntKeys(t *testing.T) {
	yieldInMoves(t)
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return movesHistory(t, r, 0, true, func(i int) int { return i })
	})
}

func TestKeyedMovesStringKeys(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return movesHistory(t, r, 0, false, shortKey)
	})
}

func TestKeyedMovesEvict(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return movesHistory(t, r, 8, false, shortKey)
	})
}

// yieldInMoves makes every move yield between its copy and its publication
// for the rest of t (see cell.MoveHook). t must not be parallel.
func yieldInMoves(t *testing.T) {
	cell.MoveHook = runtime.Gosched
	t.Cleanup(func() { cell.MoveHook = nil })
}
