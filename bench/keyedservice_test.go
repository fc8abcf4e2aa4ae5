package bench

import (
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Keys as a service sees them. BenchmarkKeyed lays its keys out to be
// cheap to fetch: the keys a store holds are slices of one buffer, in key
// order, and the store is filled in that order, so each limiter sits in
// memory beside the limiters of its neighbouring keys. A service's keys
// (API tokens, IPs) arrive in no order: each key's string is allocated when
// its first request is parsed, its limiter then too, and later requests
// pick keys at random from the whole population. At a million keys a
// decision is then a chain of cache misses (the table slot, the stored
// key's bytes, the limiter and its state), and the store that misses least
// wins.
//
// BenchmarkKeyedService measures k.Take(time.Now(), key, 1) (or a peer's
// take of one unit for a key; see keyed_test.go for how the peers are
// configured) on a present key, always allowed, in two layouts:
//
//   - "random": every stored key a string of its own (built with strconv
//     into a fresh allocation), allocated in a shuffled order, so that
//     keys used one after the other are not neighbours in memory; the
//     store is filled in another shuffled order (the order in which a
//     service first sees its keys). The keys looked up are separate
//     copies, one per use, in a buffer laid out in the order of use, drawn
//     uniformly with a fixed seed before the clock starts: a request's key
//     is in its own fresh, cached buffer, not the stored string (a lookup
//     with the stored string itself would let string comparison stop at
//     equal pointers and never load the stored key's bytes), and neither
//     the random number generator nor the formatting is measured.
//   - "contiguous": BenchmarkKeyed's layout (keysOf, filled in key order,
//     sequence): kept to show what that layout hides.
//
// Two ratekit factories:
//
//   - "ratekit": tokenbucket.New(cfg) per key, what a user naturally writes
//     (the goal of issue 17 is that it costs no more than a Template);
//   - "ratekit-template": tokenbucket.Template.New, the limiters sharing
//     their parameters.
//
// Each case runs on one goroutine ("serial") and on b.RunParallel's
// ("parallel", vary with -cpu). Each reports what its store holds per key:
// B/key, the heap it kept after a GC over the keys it holds (the key
// strings not included: they exist before the store; ulule's own copies
// are), and allocs/key, the allocations it made per key while filling.
//
// 10k keys always run (a few hundred ms of setup); 1M keys take several
// seconds per store and about a gigabyte: RATEKIT_BENCH_LARGE=1.

// keyedServiceImpls are the ratekit factories and the peers of
// keyed_test.go, under this case's names.
var keyedServiceImpls = []keyedImpl{
	{"ratekit", func() (func(string) bool, func()) {
		k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter {
			return must(tokenbucket.New(tokenBucketConfig))
		}, ratekit.KeyedConfig{})
		return func(key string) bool { return k.Take(time.Now(), key, 1).Allowed }, func() { _ = k.Close() }
	}},
	{"ratekit-template", keyedImplNamed("ratekit").new},
	keyedImplNamed("sethvargo"),
	keyedImplNamed("throttled"),
	keyedImplNamed("ulule"),
}

// keyedImplNamed is the keyed store of keyed_test.go named name.
func keyedImplNamed(name string) keyedImpl {
	for _, impl := range keyedImpls {
		if impl.name == name {
			return impl
		}
	}
	panic("no keyed implementation " + name)
}

// randomLayout returns n keys, each its own allocation, allocated in one
// shuffled order and returned (to be stored) in another.
func randomLayout(n int) []string {
	rng := rand.New(rand.NewPCG(uint64(n), 17))
	keys := make([]string, n)
	var buf []byte
	for _, i := range rng.Perm(n) {
		keys[i] = string(keyName(buf[:0], i)) // a fresh 14-byte allocation
	}
	stored := make([]string, n)
	for j, i := range rng.Perm(n) {
		stored[j] = keys[i]
	}
	return stored
}

// BenchmarkKeyedService takes one unit for a present key among 10k (and
// 1M with RATEKIT_BENCH_LARGE=1), the keys laid out as a service sees them
// ("random") or as BenchmarkKeyed lays them out ("contiguous"), on one
// goroutine and in parallel.
func BenchmarkKeyedService(b *testing.B) {
	large := os.Getenv("RATEKIT_BENCH_LARGE") == "1"
	for _, size := range []struct {
		name string
		n    int
	}{{"10k", 10_000}, {"1M", 1_000_000}} {
		if size.n > 100_000 && !large {
			b.Run(size.name, func(b *testing.B) { b.Skip("set RATEKIT_BENCH_LARGE=1 to run") })
			continue
		}
		// Both layouts look up the same sequence of copies of keys in
		// order of use (uniform, a fixed seed), built once per size.
		var seq []string
		for _, layout := range []struct {
			name string
			keys func(int) []string // to store, in the order to store them
		}{{"random", randomLayout}, {"contiguous", keysOf}} {
			// The layout is built on first use and the store once per
			// implementation for both modes, then dropped: one store of a
			// size exists at a time, and none for a filtered-out case.
			var keys []string
			for _, impl := range keyedServiceImpls {
				var store *filled
				for _, mode := range []string{"serial", "parallel"} {
					b.Run(size.name+"/"+layout.name+"/"+mode+"/"+impl.name, func(b *testing.B) {
						if seq == nil {
							seq = sequence(size.n, false)
						}
						if keys == nil {
							keys = layout.keys(size.n)
						}
						if store == nil {
							s := fill(b, impl, keys)
							store = &s
						}
						if mode == "serial" {
							i := 0
							loop(b, impl.name, false, func() bool {
								i++
								return store.take(seq[i&(seqLen-1)])
							})
						} else {
							var offset atomic.Int64
							parallel(b, impl.name, false, func() func() bool {
								i := own(offset.Add(seqLen / 8))
								return func() bool {
									*i++
									return store.take(seq[*i&(seqLen-1)])
								}
							})
						}
						b.ReportMetric(store.bytesKey, "B/key")
						b.ReportMetric(store.allocsK, "allocs/key")
					})
				}
				if store != nil {
					store.stop()
					store = nil
				}
			}
			keys = nil
			runtime.GC()
		}
	}
}
