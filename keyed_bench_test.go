package ratekit_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// The Keyed benchmarks use token buckets made by tokenbucket.New per key, as
// a service would: 32 bytes a key, sharing their parameters. The rate, 1e9
// per second with a burst of 2^40, is high enough that every Take is
// allowed, so every Take writes (a CAS).

// bucket is the Config of the benchmarks' limiters.
var bucket = tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: wide(1 << 40)}

// benchStart is the time the benchmarks pass to Take: a reading of the real
// clock, with its monotonic reading, as a server's time.Now() is. (The
// limiters' epochs carry one too; time.Time.Sub of two such times is much
// cheaper than of two wall-clock times, see tokenbucket's AllowWallTime.)
var benchStart = time.Now()

// newBucket is the benchmarks' factory.
func newBucket[K any](K) *tokenbucket.Limiter {
	l, err := tokenbucket.New(bucket)
	if err != nil {
		panic(err)
	}
	return l
}

// BenchmarkKeyedMemory reports the heap a key costs: its 32-byte token
// bucket and its share of the table (overhead-B/key). Keys are uint64,
// which have no bytes of their own elsewhere. The table share varies with
// where the count falls between two doublings.
func BenchmarkKeyedMemory(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			var perKey float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				k := ratekit.NewKeyed(newBucket[uint64], ratekit.KeyedConfig{})
				for i := 0; i < n; i++ {
					k.Get(uint64(i))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(k)
				perKey = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
			}
			b.ReportMetric(perKey, "B/key")
			b.ReportMetric(perKey-32, "overhead-B/key")
		})
	}
}

// BenchmarkKeyedMemoryNew is BenchmarkKeyedMemory with the factory a
// service writes first: tokenbucket.New per key, with one Config.
func BenchmarkKeyedMemoryNew(b *testing.B) {
	cfg := bucket
	newPerKey := func(uint64) *tokenbucket.Limiter {
		l, err := tokenbucket.New(cfg)
		if err != nil {
			panic(err)
		}
		return l
	}
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			var perKey float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				k := ratekit.NewKeyed(newPerKey, ratekit.KeyedConfig{})
				for i := 0; i < n; i++ {
					k.Get(uint64(i))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(k)
				perKey = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
			}
			b.ReportMetric(perKey, "B/key")
		})
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

// keyedCases are the key sets of BenchmarkKeyedTake and BenchmarkKeyedGet:
// one hot key; 1k keys, a busy service's orgs; 1M keys, its IPs or tokens.
// Accesses are uniform, or skewed by a Zipf law (s=1.1), where a few keys
// take most of the traffic, as real keys do.
var keyedCases = []struct {
	name string
	keys int
	zipf bool
}{
	{"keys=1", 1, false},
	{"keys=1k/uniform", 1_000, false},
	{"keys=1k/zipf", 1_000, true},
	{"keys=1M/uniform", 1 << 20, false},
	{"keys=1M/zipf", 1 << 20, true},
}

// keyedFixture is a Keyed filled with string keys, and a sequence of keys
// to access, laid out contiguously so that reading the sequence costs the
// benchmark loop no cache misses of its own: a caller has the key at hand.
type keyedFixture struct {
	k   *ratekit.Keyed[string, *tokenbucket.Limiter]
	seq []string
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*keyedFixture{}
	keyeds     = map[int]*ratekit.Keyed[string, *tokenbucket.Limiter]{}
)

const seqLen = 1 << 20

var sink int

// fixture returns the fixture for n keys with the given distribution,
// building it once per process: filling a million keys takes a while.
func fixture(n int, zipf bool) *keyedFixture {
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	name := fmt.Sprint(n, zipf)
	if f, ok := fixtures[name]; ok {
		return f
	}
	k, ok := keyeds[n]
	if !ok {
		k = ratekit.NewKeyed(newBucket[string], ratekit.KeyedConfig{})
		for i := 0; i < n; i++ {
			k.Get(string(benchKey(nil, i)))
		}
		keyeds[n] = k
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	z := rand.NewZipf(rng, 1.1, 1, uint64(n-1))
	width := len(benchKey(nil, 0))
	buf := make([]byte, 0, seqLen*width)
	for i := 0; i < seqLen; i++ {
		j := rng.IntN(n)
		if zipf {
			j = int(z.Uint64())
		}
		buf = benchKey(buf, j)
	}
	all := string(buf)
	f := &keyedFixture{k: k, seq: make([]string, seqLen)}
	for i := range f.seq {
		f.seq[i] = all[i*width : (i+1)*width]
	}
	fixtures[name] = f
	return f
}

// benchKey appends the i'th benchmark key, a token like "tok_0000001234".
func benchKey(b []byte, i int) []byte {
	b = append(b, "tok_"...)
	for d := 1_000_000_000; d > 0; d /= 10 {
		b = append(b, byte('0'+i/d%10))
	}
	return b
}

// BenchmarkKeyedTake is Keyed.Take with an explicit time, serial and in
// parallel, on the key sets of keyedCases. The first case is the baseline:
// the same loop calling the hot key's limiter directly, so that what Keyed
// adds is the difference.
func BenchmarkKeyedTake(b *testing.B) {
	hot := fixture(1, false)
	b.Run("limiter-alone/serial", func(b *testing.B) {
		b.ReportAllocs()
		l := hot.k.Get(hot.seq[0])
		now := benchStart
		i := 0
		var n int
		cpu := cpuTime()
		for b.Loop() {
			n += len(hot.seq[i&(seqLen-1)]) // the loop of the cases below
			l.Take(now, 1)
			i++
		}
		reportCPU(b, cpu)
		sink = n
	})
	for _, c := range keyedCases {
		f := fixture(c.keys, c.zipf)
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			now := benchStart
			i := 0
			cpu := cpuTime()
			for b.Loop() {
				f.k.Take(now, f.seq[i&(seqLen-1)], 1)
				i++
			}
			reportCPU(b, cpu)
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var start atomic.Int64
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				now := benchStart
				i := int(start.Add(seqLen / 16))
				for pb.Next() {
					f.k.Take(now, f.seq[i&(seqLen-1)], 1)
					i++
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkKeyedGet is the lookup alone, without the limiter's Take.
func BenchmarkKeyedGet(b *testing.B) {
	for _, c := range keyedCases {
		f := fixture(c.keys, c.zipf)
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var start atomic.Int64
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				i := int(start.Add(seqLen / 16))
				for pb.Next() {
					f.k.Get(f.seq[i&(seqLen-1)])
					i++
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkKeyedNewKey inserts a new key per operation: the first request
// of a client. Without a cap it measures the insert (allocations: the
// limiter's, plus a fraction for table growth); with MaxKeys, the flood of
// governor#171, where each new key also evicts one.
func BenchmarkKeyedNewKey(b *testing.B) {
	for _, maxKeys := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("MaxKeys=%d/parallel", maxKeys), func(b *testing.B) {
			b.ReportAllocs()
			k := ratekit.NewKeyed(newBucket[uint64], ratekit.KeyedConfig{MaxKeys: maxKeys})
			var next atomic.Uint64
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				g := next.Add(1) << 40
				now := benchStart
				for i := uint64(0); pb.Next(); i++ {
					k.Take(now, g|i, 1)
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkKeyedSweep sweeps a million keys none of which is idle (the worst
// case: every limiter is asked), reporting the cost per key.
func BenchmarkKeyedSweep(b *testing.B) {
	f := fixture(1<<20, false)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		f.k.Sweep(benchStart)
	}
	if cpu >= 0 {
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/float64(1<<20), "cpu-ns/key")
	}
}
