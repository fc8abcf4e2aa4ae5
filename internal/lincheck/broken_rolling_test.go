package lincheck

import (
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit/internal/model"
)

// racyRolling is a deliberately broken rolling window: the reference model
// itself, right when called by one goroutine at a time, but published
// without a compare-and-swap: a Take clones the state in force, decides on
// the clone, yields, and stores it, so concurrent Takes lose each other's
// units and a window admits more than Limit. It is the failure the seal of
// internal/cell's helping mode prevents: a successor published from a word
// that was not final.
type racyRolling struct {
	cur atomic.Pointer[model.Rolling] // never mutated once stored
}

func newRacyRolling() *racyRolling {
	r := &racyRolling{}
	r.cur.Store(newRollingModel(rollingConfigs[0]))
	return r
}

func (r *racyRolling) do(in input) output {
	m := r.cur.Load().Clone()
	if in.Kind == opPeek {
		return output{D: m.Peek(t0.Add(in.Now), in.N)}
	}
	d := m.Take(t0.Add(in.Now), in.N)
	runtime.Gosched() // the window in which another Take's units are lost
	r.cur.Store(m)
	return output{D: d}
}

func racyRollingHistory(r *racyRolling) *history {
	a := &modelOf[*model.Rolling]{clone: (*model.Rolling).Clone, desc: (*model.Rolling).State}
	a.apply = func(m *model.Rolling, in input) output {
		if in.Kind == opPeek {
			return output{D: m.Peek(t0.Add(in.Now), in.N)}
		}
		return output{D: m.Take(t0.Add(in.Now), in.N)}
	}
	return &history{
		do:    r.do,
		model: porcupineModel(func() state { return a.state(newRollingModel(rollingConfigs[0])) }),
		next: func(g *goroutine) input {
			return input{Kind: pick(g.r, opTake, opTake, opTake, opPeek), Now: g.now(), N: g.units()}
		},
	}
}

// TestCheckerCatchesLostRollingUpdate shows the rolling checker can fail:
// racyRolling agrees with the model when one goroutine calls it, and the
// short pass finds a history of concurrent Takes that no order of the
// calls explains.
func TestCheckerCatchesLostRollingUpdate(t *testing.T) {
	for seed := range uint64(20) {
		h := racyRollingHistory(newRacyRolling())
		if ops := record(h, seed, 1, 100, 300*time.Millisecond); !porcupine.CheckOperations(h.model, ops) {
			t.Fatalf("seed %d: racyRolling disagrees with the model with one goroutine:\n%s", seed, describe(ops))
		}
	}
	runs, path := check(t, 300*time.Millisecond, func(*testing.T, *rand.Rand) *history {
		return racyRollingHistory(newRacyRolling())
	}, t.Logf)
	if path == "" {
		t.Errorf("the checker found all %d histories of a rolling window without compare-and-swap linearizable", runs)
		return
	}
	if path[0] != '(' {
		os.Remove(path) // the expected failure's visualization
	}
	t.Logf("history %d of the broken rolling window is not linearizable, as it must not be", runs-1)
}
