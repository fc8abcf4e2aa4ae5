package lincheck

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Keyed over token buckets from a Template. Keys 1 to hotKeys are used
// over and over; the others are new keys, each used once, which insert
// slots and grow the tables under the hot keys' Takes. Linearizability is
// local, so each key's operations are checked on their own (porcupine's
// partitions), Sweeps in every key's.
//
// A key's model is a token bucket, live, plus the one its last drop left
// behind, a ghost: Keyed documents that a Take whose lookup raced a drop
// may be decided by the dropped limiter, which the key's next limiter does
// not see ("A limiter in use when its key goes", keyed.go). A Sweep drops
// the live bucket only if it is idle at the Sweep's time (or keeps it: a
// Take that reached it puts it back); with MaxKeys set, eviction may drop
// it at any time. Each Take, Peek and Refund is decided by the live bucket
// or the ghost.
const hotKeys = 3

var keyedConfig = tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 4, Name: "k"}

type keyState struct {
	live, ghost *model.TokenBucket
	k           string
}

func newKeyState(live, ghost *model.TokenBucket) *keyState {
	k := live.State()
	if ghost != nil {
		k += " | ghost " + ghost.State()
	}
	return &keyState{live: live, ghost: ghost, k: k}
}

func freshBucket() *model.TokenBucket { return newBucketModel(keyedConfig) }

func applyBucket(m *model.TokenBucket, in input) output {
	switch in.Kind {
	case opTake:
		return output{D: m.Take(t0.Add(in.Now), in.N)}
	case opPeek:
		return output{D: m.Peek(t0.Add(in.Now), in.N)}
	case opRefund:
		m.Refund(t0.Add(in.At), in.N)
	case opStamp:
		m.Stamp(t0.Add(in.Now))
	}
	return output{}
}

// keyedModel is the per-key nondeterministic model; evict says a key may
// be dropped at any time.
func keyedModel(evict bool) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[int][]porcupine.Operation{}
			var sweeps []porcupine.Operation
			for _, op := range ops {
				if in := op.Input.(input); in.Kind == opSweep {
					sweeps = append(sweeps, op)
				} else {
					byKey[in.Key] = append(byKey[in.Key], op)
				}
			}
			var out [][]porcupine.Operation
			for _, key := range slices.Sorted(func(yield func(int) bool) {
				for k := range byKey {
					if !yield(k) {
						return
					}
				}
			}) {
				out = append(out, slices.Concat(byKey[key], sweeps))
			}
			return out
		},
		Init: func() []any { return []any{newKeyState(freshBucket(), nil)} },
		Step: func(s, inAny, outAny any) []any {
			st, in, out := s.(*keyState), inAny.(input), outAny.(output)
			var next []any
			try := func(live, ghost *model.TokenBucket, onGhost bool) {
				live = live.Clone()
				if ghost != nil {
					ghost = ghost.Clone()
				}
				target := live
				if onGhost {
					target = ghost
				}
				if applyBucket(target, in) != out {
					return
				}
				next = append(next, newKeyState(live, ghost))
			}
			switch in.Kind {
			case opStamp:
				// A Take's raise of its limiter's bound on stamps (see
				// withStamps): or none.
				next = append(next, st)
			case opSweep:
				next = append(next, st)
				if st.live.Idle(t0.Add(in.Now)) {
					next = append(next, newKeyState(freshBucket(), st.live))
				}
				return next
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

func keyedHistory(t *testing.T, maxKeys int) *history {
	h, _ := keyedHistoryWith(t, maxKeys)
	return h
}

// keyedHistoryWith is keyedHistory, and the Keyed it drives.
func keyedHistoryWith(t *testing.T, maxKeys int) (*history, *ratekit.Keyed[int, *tokenbucket.Limiter]) {
	cfg := keyedConfig
	cfg.Clock = fixedClock{t: t0}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	k := ratekit.NewKeyed(func(int) *tokenbucket.Limiter {
		runtime.Gosched()            // other operations run while a key is inserted
		l, _ := tokenbucket.New(cfg) // validated: New cannot fail
		return l
	},
		ratekit.KeyedConfig{MaxKeys: maxKeys, Clock: fixedClock{t: t0}})
	return &history{
		do: func(in input) output {
			switch in.Kind {
			case opTake:
				return output{D: k.Take(t0.Add(in.Now), in.Key, in.N)}
			case opPeek:
				return output{D: k.Get(in.Key).Peek(t0.Add(in.Now), in.N)}
			case opRefund:
				k.Get(in.Key).Refund(t0.Add(in.At), in.N)
			case opSweep:
				k.Sweep(t0.Add(in.Now))
			}
			return output{}
		},
		model:      keyedModel(maxKeys > 0),
		stampBurst: keyedConfig.Burst,
		maxOps:     40,
		// New keys, unrecorded, inserting slots and growing the tables
		// under the recorded Takes.
		background: func(stop <-chan struct{}) {
			for key := wide(1 << 40); ; key++ { // on 32-bit platforms, from math.MaxInt on: it wraps to negative keys, unrecorded all the same
				select {
				case <-stop:
					return
				default:
				}
				k.Take(t0, key, 1)
				if key%16 == 0 {
					runtime.Gosched()
				}
			}
		},
		next: func(g *goroutine) input {
			in := input{Now: g.now(), N: g.units(), Key: 1 + g.r.IntN(hotKeys)}
			switch x := g.r.IntN(20); {
			case x < 8:
				in.Kind = opTake
			case x < 10:
				in.Kind = opPeek
			case x < 12:
				in.Kind, in.At = opRefund, g.refundAt(in.Now)
			case x < 13:
				in.Kind, in.Key = opSweep, 0
			default:
				// A burst of new keys: each its own Take, inserting a slot
				// and now and then growing a table.
				in.Kind, in.Key = opTake, 1000+int(g.r.Int64N(1<<40))
			}
			return in
		},
	}, k
}

// TestKeyed checks Takes, Peeks and Refunds by key while new keys are
// inserted, tables grow and Sweeps drop idle keys; nothing is evicted.
func TestKeyed(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, _ *rand.Rand) *history { return keyedHistory(t, 0) })
}

// TestKeyedEvict is TestKeyed with MaxKeys 8, so that new keys evict, the
// hot keys among others.
func TestKeyedEvict(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, _ *rand.Rand) *history { return keyedHistory(t, 8) })
}
