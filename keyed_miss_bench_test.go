package ratekit_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// BenchmarkKeyedMisses takes a Take of a present key apart into its memory
// accesses, so that what each costs can be read off one run (perf's cache
// counters are not available in every VM; these differences are). The keys
// are laid out as a service's are, and as bench's KeyedService/random lays
// them out: every stored key a string of its own, allocated in one shuffled
// order and inserted in another, looked up through copies in a buffer in
// order of use; the limiters come from tokenbucket.New per key. The cases,
// each with what it touches beyond the cached table header:
//
//   - slot: the probe, comparing the hash bits in the slots' meta words
//     only (ratekit.KeyedSlotOnly): the table slot.
//   - slot+cas: the same, then a compare-and-swap on the slot's meta word
//     (ratekit.KeyedSlotCAS): what a Take would cost if the key's state
//     word sat in its slot and the key compared without leaving it.
//   - slot+key: Get, which compares the stored key and returns the limiter
//     pointer without following it: the slot, then the key's bytes.
//   - slot+key+cas: Get's lookup, then the compare-and-swap of slot+cas
//     (ratekit.KeyedFindCAS): a state word in the slot, the key's bytes
//     still out of line.
//   - slot+limiter: the hash-only probe, then the limiter's Take: the slot,
//     then the limiter (its state is inline, one line).
//   - take: Keyed.Take: the slot, then the key's bytes and the limiter,
//     both addressed from the slot, so the two misses can overlap; the CAS
//     waits for both.
//
// 10k keys (cache-resident: the instructions alone) always run; 1M keys
// take a few seconds to build: RATEKIT_BENCH_LARGE=1.
func BenchmarkKeyedMisses(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("RATEKIT_BENCH_LARGE") == "1" {
		sizes = append(sizes, 1_000_000)
	}
	cfg := tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: wide(1 << 40)}
	for _, n := range sizes {
		k, seq := missFixture(n, cfg)
		name := fmt.Sprintf("keys=%d/", n)
		now := benchStart
		cases := []struct {
			name string
			op   func(key string) bool
		}{
			{"slot", func(key string) bool {
				_, ok := ratekit.KeyedSlotOnly(k, key)
				return ok
			}},
			{"slot+cas", func(key string) bool { return ratekit.KeyedSlotCAS(k, key) }},
			{"slot+key", func(key string) bool { return k.Get(key) != nil }},
			{"slot+key+cas", func(key string) bool { return ratekit.KeyedFindCAS(k, key) }},
			{"slot+limiter", func(key string) bool {
				l, ok := ratekit.KeyedSlotOnly(k, key)
				return ok && l.Take(now, 1).Allowed
			}},
			{"take", func(key string) bool { return k.Take(now, key, 1).Allowed }},
		}
		for _, c := range cases {
			b.Run(name+c.name, func(b *testing.B) {
				b.ReportAllocs()
				i, miss := 0, 0
				cpu := cpuTime()
				for b.Loop() {
					if !c.op(seq[i&(seqLen-1)]) {
						miss++
					}
					i++
				}
				reportCPU(b, cpu)
				if miss != 0 {
					b.Fatalf("%d of %d operations failed: not the path this case measures", miss, b.N)
				}
			})
		}
	}
}

// missFixture returns a Keyed of n string keys, made by tokenbucket.New per
// key, each key its own allocation, allocated in one shuffled order and
// inserted in another, and seqLen uses of the keys drawn uniformly (a fixed
// seed), each a copy laid out in order of use.
func missFixture(n int, cfg tokenbucket.Config) (*ratekit.Keyed[string, *tokenbucket.Limiter], []string) {
	rng := rand.New(rand.NewPCG(uint64(n), 17))
	keys := make([]string, n)
	for _, i := range rng.Perm(n) {
		keys[i] = string(benchKey(nil, i)) // a fresh allocation each
	}
	k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter {
		l, err := tokenbucket.New(cfg)
		if err != nil {
			panic(err)
		}
		return l
	}, ratekit.KeyedConfig{})
	for _, i := range rng.Perm(n) {
		k.Get(keys[i])
	}
	buf := make([]byte, 0, seqLen*14)
	for range seqLen {
		buf = benchKey(buf, rng.IntN(n))
	}
	all := string(buf)
	seq := make([]string, seqLen)
	for i := range seq {
		seq[i] = all[i*14 : (i+1)*14]
	}
	return k, seq
}
