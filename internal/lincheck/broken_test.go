package lincheck

import (
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
)

// racyBucket is a deliberately broken token bucket: GCRA in whole
// nanoseconds (for a Window that Limit divides), right when called by one
// goroutine at a time, but its Take loads the TAT and stores the new one
// without a compare-and-swap, yielding in between, so concurrent Takes lose
// each other's updates and admit more than Burst.
type racyBucket struct {
	t, tau int64 // emission interval and Burst*t, ns
	burst  int
	name   string
	tat    atomic.Int64 // ns after t0; math.MinInt64: full
}

func newRacyBucket(limit int, window time.Duration, burst int, name string) *racyBucket {
	b := &racyBucket{t: int64(window) / int64(limit), burst: burst, name: name}
	b.tau = b.t * int64(burst)
	b.tat.Store(math.MinInt64)
	return b
}

func (b *racyBucket) decide(now time.Duration, n int, take bool) ratekit.Decision {
	tat := b.tat.Load()
	d := max(tat-int64(now), 0)
	if tat == math.MinInt64 {
		d = 0
	}
	holds := func(d int64) int {
		if d > b.tau {
			return 0
		}
		return int((b.tau - d) / b.t)
	}
	dec := ratekit.Decision{Limit: b.burst, Window: time.Duration(b.tau), Policy: b.name,
		Remaining: holds(d), ResetAfter: time.Duration(d)}
	switch {
	case n == 0:
		dec.Allowed = true
		return dec
	case n < 0 || n > b.burst:
		dec.RetryAfter = ratekit.Never
		return dec
	}
	nd := d + b.t*int64(n)
	if nd > b.tau {
		dec.RetryAfter = time.Duration(nd - b.tau)
		return dec
	}
	dec.Allowed, dec.Remaining, dec.ResetAfter = true, holds(nd), time.Duration(nd)
	if take {
		runtime.Gosched() // the window in which another Take's update is lost
		b.tat.Store(int64(now) + nd)
	}
	return dec
}

func racyHistory(b *racyBucket, cfgIndex int) *history {
	c := bucketConfigs[cfgIndex]
	a := *bucketModel
	a.apply = func(m *model.TokenBucket, in input) output {
		if in.Kind == opPeek {
			return output{D: m.Peek(t0.Add(in.Now), in.N)}
		}
		return output{D: m.Take(t0.Add(in.Now), in.N)}
	}
	return &history{
		do: func(in input) output { return output{D: b.decide(in.Now, in.N, in.Kind == opTake)} },
		model: porcupineModel(func() state {
			return a.state(model.NewTokenBucket(c.Limit, c.Window, c.Burst, c.Name, t0))
		}),
		next: func(g *goroutine) input {
			return input{Kind: pick(g.r, opTake, opTake, opTake, opPeek), Now: g.now(), N: g.units()}
		},
	}
}

// TestCheckerCatchesLostUpdate shows the checker can fail: racyBucket
// agrees with the model when one goroutine calls it, and the short pass
// finds a history of concurrent Takes that no order of the calls explains.
func TestCheckerCatchesLostUpdate(t *testing.T) {
	c := bucketConfigs[0]
	newRacy := func() *racyBucket { return newRacyBucket(c.Limit, c.Window, c.Burst, c.Name) }
	// One goroutine: linearizable (so a failure below is the race's).
	for seed := range uint64(20) {
		h := racyHistory(newRacy(), 0)
		if ops := record(h, seed, 1, 100, 150*time.Millisecond); !porcupine.CheckOperations(h.model, ops) {
			t.Fatalf("seed %d: racyBucket disagrees with the model with one goroutine:\n%s", seed, describe(ops))
		}
	}
	runs, path := check(t, 150*time.Millisecond, func(*testing.T, *rand.Rand) *history {
		return racyHistory(newRacy(), 0)
	}, t.Logf)
	if path == "" {
		t.Errorf("the checker found all %d histories of a Take without compare-and-swap linearizable", runs)
		return
	}
	if path[0] != '(' {
		os.Remove(path) // the expected failure's visualization
	}
	t.Logf("history %d of the broken bucket is not linearizable, as it must not be", runs-1)
}
