package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sethvargo "github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
	ulule "github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/ratekit/ratekit"
)

// Keyed limiters side by side: ratekit.Keyed against the in-memory keyed
// stores of sethvargo/go-limiter (a map under a sync.RWMutex, a mutex per
// bucket) and ulule/limiter (a sync.Map of counters under a sync.RWMutex
// each), doing the same work in the same run: take one unit for a key,
// always allowed.
//
// ratekit's per-key limiter here is gcra, a small lock-free GCRA defined
// below with the state of a token bucket (one atomic word), until the
// tokenbucket package is merged; the lead may swap it for tokenbucket.New.
// The peers read the clock on every call; "ratekit-now" does too, for a
// like-for-like cost, and "ratekit" passes an explicit time, as a server
// that has read the clock once per request does.

// gcra admits limit units per window, at most limit at once: the theoretical
// arrival time of GCRA in one atomic word, in nanoseconds from the epoch.
type gcra struct {
	epoch time.Time
	per   int64
	burst int64
	tat   atomic.Int64
}

func newGCRA(limit int, window time.Duration) *gcra {
	return &gcra{epoch: time.Unix(0, 0), per: int64(window) / int64(limit), burst: int64(limit)}
}

func (g *gcra) Take(now time.Time, n int) ratekit.Decision {
	at := int64(now.Sub(g.epoch))
	for {
		tat := g.tat.Load()
		next := max(tat, at) + int64(n)*g.per
		if n < 0 || next-at > g.burst*g.per {
			return ratekit.Decision{Limit: int(g.burst), RetryAfter: time.Duration(next - at - g.burst*g.per)}
		}
		if g.tat.CompareAndSwap(tat, next) {
			return ratekit.Decision{Allowed: true, Limit: int(g.burst), Remaining: int((g.burst*g.per - (next - at)) / g.per)}
		}
	}
}

func (g *gcra) Peek(time.Time, int) ratekit.Decision { return ratekit.Decision{} } // unused here
func (g *gcra) Refund(time.Time, int)                {}
func (g *gcra) Idle(now time.Time) bool              { return g.tat.Load() <= int64(now.Sub(g.epoch)) }

// A limit no benchmark reaches: every Take is allowed, and writes.
const (
	bigLimit  = 1 << 40
	bigWindow = time.Hour
)

// keyedPeer is one keyed limiter under test: take takes one unit for key.
type keyedPeer struct {
	name string
	make func() func(key string)
}

var keyedPeers = []keyedPeer{
	{"ratekit", func() func(string) {
		k := ratekit.NewKeyed(func(string) *gcra { return newGCRA(bigLimit, bigWindow) }, ratekit.KeyedConfig{})
		now := time.Now()
		return func(key string) { k.Take(now, key, 1) }
	}},
	{"ratekit-now", func() func(string) {
		k := ratekit.NewKeyed(func(string) *gcra { return newGCRA(bigLimit, bigWindow) }, ratekit.KeyedConfig{})
		return func(key string) { k.Take(time.Now(), key, 1) }
	}},
	{"sethvargo", func() func(string) {
		s, err := memorystore.New(&memorystore.Config{Tokens: bigLimit, Interval: bigWindow})
		if err != nil {
			panic(err)
		}
		var _ sethvargo.Store = s
		ctx := context.Background()
		return func(key string) { s.Take(ctx, key) }
	}},
	{"ulule", func() func(string) {
		l := ulule.New(ulmemory.NewStore(), ulule.Rate{Period: bigWindow, Limit: bigLimit})
		ctx := context.Background()
		return func(key string) { l.Get(ctx, key) }
	}},
}

// keyCount is how many keys each case holds; accesses are uniform.
var keyCounts = []struct {
	name string
	n    int
}{
	{"keys=1", 1},
	{"keys=1k", 1_000},
	{"keys=1M", 1 << 20},
}

const seqLen = 1 << 20

// sequence returns seqLen keys drawn uniformly from n, laid out
// contiguously so that reading them costs the loop no cache misses.
func sequence(n int) []string {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	buf := make([]byte, 0, seqLen*14)
	for i := 0; i < seqLen; i++ {
		buf = fmt.Appendf(buf, "tok_%010d", rng.IntN(n))
	}
	all := string(buf)
	seq := make([]string, seqLen)
	for i := range seq {
		seq[i] = all[i*14 : (i+1)*14]
	}
	return seq
}

var (
	setupMu sync.Mutex
	setups  = map[string]func(string){}
	seqs    = map[int][]string{}
)

// setup returns peer p filled with n keys, built once per process.
func setup(p keyedPeer, n int) (take func(string), seq []string) {
	setupMu.Lock()
	defer setupMu.Unlock()
	if seqs[n] == nil {
		seqs[n] = sequence(n)
	}
	name := fmt.Sprint(p.name, n)
	if setups[name] == nil {
		take := p.make()
		for i := 0; i < n; i++ {
			take(fmt.Sprintf("tok_%010d", i))
		}
		setups[name] = take
	}
	return setups[name], seqs[n]
}

// BenchmarkKeyedTake takes one unit for a key already present, from
// parallel goroutines, with 1, 1k and 1M keys.
func BenchmarkKeyedTake(b *testing.B) {
	for _, c := range keyCounts {
		for _, p := range keyedPeers {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				take, seq := setup(p, c.n)
				b.ReportAllocs()
				b.ResetTimer()
				var start atomic.Int64
				cpu := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					i := int(start.Add(seqLen / 16))
					for pb.Next() {
						take(seq[i&(seqLen-1)])
						i++
					}
				})
				reportCPU(b, cpu)
			})
		}
	}
}

// reportCPU reports the CPU time the process used per operation since
// start (from cpuTime), as cpu-ns/op, summed over the goroutines of a
// parallel benchmark. On a machine shared with other work, wall time
// (ns/op) also counts the time others hold the cores; CPU time does not, so
// it is the figure to compare across runs.
func reportCPU(b *testing.B, start time.Duration) {
	if start >= 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkKeyedMemory reports the heap each keyed limiter takes per key,
// for 100k keys (key bytes included: each is a 14-byte string).
func BenchmarkKeyedMemory(b *testing.B) {
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tok_%010d", i)
	}
	for _, p := range keyedPeers {
		if p.name == "ratekit-now" {
			continue // the same store as ratekit
		}
		b.Run(p.name, func(b *testing.B) {
			var perKey float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				take := p.make()
				for _, key := range keys {
					take(key)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(take)
				perKey = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}
