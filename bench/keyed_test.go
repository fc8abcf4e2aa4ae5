package bench

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ululemem "github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Keyed limiters side by side: one limiter per key (an API token, an IP),
// made on the key's first use. ratekit.Keyed of tokenbucket limiters
// against the in-memory keyed stores of the peers:
//
//   - sethvargo: memorystore, a map under a sync.RWMutex, a mutex per bucket;
//   - ulule: memory store, a sync.Map of counters under a sync.RWMutex each,
//     keyed by "limiter:" + key, built on every call;
//   - throttled: GCRA over memstore.New(0), a map under a sync.RWMutex of
//     *int64 CASed per key (no LRU: ratekit's Keyed here has no MaxKeys
//     either, and sethvargo and ulule are unbounded too).
//
// x/time/rate, juju, uber and x/sync have no keyed form: a user would build
// a map of them by hand, which is not their code to measure.
//
// Every store is filled with all its keys before the clock starts, so the
// loop measures the lookup of a present key and a take, always allowed
// (1e9 per second and a burst of 2^40 per key), from b.RunParallel's
// goroutines. Everyone reads the real clock once per call: the peers
// inside, ratekit as time.Now() passed to Take (the one-key cases show what
// the clock costs). Keys are precomputed strings laid out contiguously in
// the order they are used, so neither formatting nor fetching them is
// measured; "uniform" draws them uniformly, "zipf" from a Zipf distribution
// (s = 1.1, a few hot keys and a long tail), both with a fixed seed.
//
// Each store also reports, in its uniform case, what its keys cost: the
// heap it holds after a GC per key (B/key) and the allocations it made per
// key while filling (allocs/key). The key strings themselves are not
// counted, as they exist before the store; a store that copies them (ulule
// prefixes them) pays for its copy.
//
// 1M keys take a few seconds per store to build and about a gigabyte
// while all four exist: they run only with RATEKIT_BENCH_LARGE=1.

// keyedImpl is one keyed store: new returns a take of one unit for a key,
// which creates the key's limiter if absent, and a func that stops the
// store's background work.
type keyedImpl struct {
	name string
	new  func() (take func(key string) bool, stop func())
}

var keyedImpls = []keyedImpl{
	{"ratekit", func() (func(string) bool, func()) {
		// New per key: limiters of one Config share its parameters, 32
		// bytes a key.
		k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return must(tokenbucket.New(tokenBucketConfig)) }, ratekit.KeyedConfig{})
		return func(key string) bool { return k.Take(time.Now(), key, 1).Allowed }, func() { _ = k.Close() }
	}},
	// Get(key).Allow(): the key's limiter reads the clock itself, and a
	// tokenbucket's Allow reads only the monotonic clock (time.Since its
	// epoch), half the cost of the time.Now() that Keyed.Take is passed.
	// Keyed documents Get with its result used at once as safe.
	{"ratekit-get-allow", func() (func(string) bool, func()) {
		k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return must(tokenbucket.New(tokenBucketConfig)) }, ratekit.KeyedConfig{})
		return func(key string) bool { return k.Get(key).Allow() }, func() { _ = k.Close() }
	}},
	{"sethvargo", func() (func(string) bool, func()) {
		s := must(memorystore.New(&memorystore.Config{Tokens: 1 << 62, Interval: time.Hour}))
		ctx := context.Background()
		return func(key string) bool {
			_, _, _, ok, err := s.Take(ctx, key)
			if err != nil {
				panic(err)
			}
			return ok
		}, func() { _ = s.Close(ctx) }
	}},
	{"ulule", func() (func(string) bool, func()) {
		// The store's cleaner goroutine stops when the store is collected.
		l := ulule.New(ululemem.NewStore(), ulule.Rate{Period: time.Hour, Limit: 1 << 62})
		ctx := context.Background()
		return func(key string) bool {
			c, err := l.Get(ctx, key)
			if err != nil {
				panic(err)
			}
			return !c.Reached
		}, func() {}
	}},
	{"throttled", func() (func(string) bool, func()) {
		st := must(memstore.New(0))
		quota := throttled.RateQuota{MaxRate: throttled.PerSec(1e9), MaxBurst: wide(1 << 40)}
		l := must(throttled.NewGCRARateLimiterCtx(throttled.WrapStoreWithContext(st), quota))
		l.SetMaxCASAttemptsLimit(1 << 30)
		ctx := context.Background()
		return func(key string) bool {
			limited, _, err := l.RateLimitCtx(ctx, key, 1)
			if err != nil {
				panic(err)
			}
			return !limited
		}, func() {}
	}},
}

// seqLen is how many key uses a case's sequence holds; goroutines walk it
// from different offsets, wrapping around.
const seqLen = 1 << 20

// keyName is key i: 14 bytes, like an API token's prefix and id.
func keyName(buf []byte, i int) []byte {
	buf = append(buf, "tok_"...)
	n := len(buf)
	buf = strconv.AppendInt(buf, int64(i), 10)
	for len(buf)-n < 10 { // left-pad to 10 digits in place
		buf = append(buf, 0)
		copy(buf[n+1:], buf[n:])
		buf[n] = '0'
	}
	return buf
}

// keysOf returns the n keys, sharing one backing string.
func keysOf(n int) []string {
	buf := make([]byte, 0, n*14)
	for i := range n {
		buf = keyName(buf, i)
	}
	all := string(buf)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = all[i*14 : (i+1)*14]
	}
	return keys
}

// sequence returns seqLen uses of n keys, drawn uniformly or Zipf, each a
// copy of its key laid out in order of use.
func sequence(n int, zipf bool) []string {
	rng := rand.New(rand.NewPCG(uint64(n), 12))
	next := func() int { return rng.IntN(n) }
	if zipf {
		z := rand.NewZipf(rng, 1.1, 1, uint64(n-1))
		next = func() int { return int(z.Uint64()) }
	}
	buf := make([]byte, 0, seqLen*14)
	for range seqLen {
		buf = keyName(buf, next())
	}
	all := string(buf)
	seq := make([]string, seqLen)
	for i := range seq {
		seq[i] = all[i*14 : (i+1)*14]
	}
	return seq
}

// filled is a store holding every key, and what filling it cost.
type filled struct {
	take              func(string) bool
	stop              func()
	bytesKey, allocsK float64
}

// fill makes impl's store and takes one unit for each key, measuring the
// heap and the allocations it keeps per key.
func fill(tb testing.TB, impl keyedImpl, keys []string) filled {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	take, stop := impl.new()
	for _, k := range keys {
		if !take(k) {
			tb.Fatalf("%s: a new key was denied", impl.name)
		}
	}
	runtime.ReadMemStats(&after)
	allocs := after.Mallocs - before.Mallocs
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(take)
	n := float64(len(keys))
	return filled{
		take:     take,
		stop:     stop,
		bytesKey: float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n,
		allocsK:  float64(allocs) / n,
	}
}

// BenchmarkKeyed takes one unit for a present key, from parallel
// goroutines, among 1k keys (and 1M with RATEKIT_BENCH_LARGE=1), the keys
// used uniformly or Zipf.
func BenchmarkKeyed(b *testing.B) {
	sizes := []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"1M", 1_000_000}}
	large := os.Getenv("RATEKIT_BENCH_LARGE") == "1"
	for _, size := range sizes {
		if size.n > 100_000 && !large {
			b.Run(size.name, func(b *testing.B) { b.Skip("set RATEKIT_BENCH_LARGE=1 to run") })
			continue
		}
		var keys []string
		seqs := map[bool][]string{}
		for _, impl := range keyedImpls {
			// The store is built on first use and dropped after both
			// distributions ran, so only one store of this size exists
			// at a time, and none is built for a filtered-out case.
			var store *filled
			for _, dist := range []struct {
				name string
				zipf bool
			}{{"uniform", false}, {"zipf", true}} {
				b.Run(size.name+"/"+dist.name+"/"+impl.name, func(b *testing.B) {
					if keys == nil {
						keys = keysOf(size.n)
					}
					if seqs[dist.zipf] == nil {
						seqs[dist.zipf] = sequence(size.n, dist.zipf)
					}
					if store == nil {
						s := fill(b, impl, keys)
						store = &s
					}
					seq := seqs[dist.zipf]
					var offset atomic.Int64
					parallel(b, impl.name, false, func() func() bool {
						i := own(offset.Add(seqLen / 8))
						return func() bool {
							*i++
							return store.take(seq[*i&(seqLen-1)])
						}
					})
					if !dist.zipf { // after parallel: ResetTimer drops metrics
						b.ReportMetric(store.bytesKey, "B/key")
						b.ReportMetric(store.allocsK, "allocs/key")
					}
				})
			}
			if store != nil {
				store.stop()
				store = nil
			}
		}
	}
}
