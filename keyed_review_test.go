package ratekit_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Adversarial review of the state in Keyed slots (keyed_slot.go): states
// moved by inserts, rebuilds, Reconfigure, UnmarshalBinary, drops and joint
// decisions, racing Takes, at one fixed instant, so that every admission is
// counted against a burst that never refills.

// mallocsOf returns the allocations of 32 calls of f, averaged over runs
// batches (testing.AllocsPerRun, which rounds down: one allocation every 16
// calls, a rebuild's, still shows as 2 a batch, while another goroutine's
// stray allocations do not).
func mallocsOf(runs int, f func()) float64 {
	return testing.AllocsPerRun(runs/32, func() {
		for range 32 {
			f()
		}
	})
}

// TestKeyedReviewTakeOutsideAllocatesNothing: Keyed.Take of a present key
// allocates nothing (its doc), also when the key's limiter can never keep
// its state in the key's slot: a zero fixedwindow.Limiter (no block to
// move), or one limiter the factory returns for two keys, or two Keyeds
// (its state can be in one slot only). Rebuilding a table for such Takes moves nothing back
// for good.
func TestKeyedReviewTakeOutsideAllocatesNothing(t *testing.T) {
	t.Run("zero fixedwindow", func(t *testing.T) {
		k := ratekit.NewKeyed(func(string) *fixedwindow.Limiter { return new(fixedwindow.Limiter) }, ratekit.KeyedConfig{})
		for i := range 40 {
			k.Get(fmt.Sprint("other-", i))
		}
		k.Get("zero")
		require.Zero(t, mallocsOf(2000, func() { k.Take(t0, "zero", 1) }))
	})
	t.Run("shared limiter", func(t *testing.T) {
		shared, err := tokenbucket.New(slotBucket)
		require.NoError(t, err)
		k := ratekit.NewKeyed(func(key string) *tokenbucket.Limiter {
			if key == "a" || key == "b" {
				return shared
			}
			l, _ := tokenbucket.New(slotBucket)
			return l
		}, ratekit.KeyedConfig{})
		for i := range 40 {
			k.Get(fmt.Sprint("other-", i))
		}
		k.Get("a")
		k.Get("b")
		require.Zero(t, mallocsOf(2000, func() {
			k.Take(t0, "a", 0)
			k.Take(t0, "b", 0)
		}))
	})
	t.Run("limiter shared by two Keyeds", func(t *testing.T) {
		shared, err := tokenbucket.New(slotBucket)
		require.NoError(t, err)
		f := func(string) *tokenbucket.Limiter { return shared }
		k1 := ratekit.NewKeyed(f, ratekit.KeyedConfig{})
		k2 := ratekit.NewKeyed(f, ratekit.KeyedConfig{})
		k1.Get("a")
		k2.Get("a")
		require.Zero(t, mallocsOf(2000, func() {
			k1.Take(t0, "a", 0)
			k2.Take(t0, "a", 0)
		}))
	})
}

// TestKeyedReviewStress races, at one instant, Takes through the Keyed and
// through Get's limiter, Reconfigures to an equal-rate Config (which move
// the state out of its slot), joint Takes over two keys' limiters, and
// inserts of other keys (which rebuild tables and move states back), and
// requires each key to admit exactly its burst, and the outcome of every
// joint Take to be all or nothing.
func TestKeyedReviewStress(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 4
	}
	const (
		keys    = 8
		burst   = 64
		workers = 8
	)
	cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: burst, Clock: fixedNow(t0)}
	for round := range rounds {
		var shared []*tokenbucket.Limiter // two keys share each
		for range keys / 2 {
			l, err := tokenbucket.New(cfg)
			require.NoError(t, err)
			shared = append(shared, l)
		}
		k := ratekit.NewKeyed(func(key string) *tokenbucket.Limiter {
			var i int
			if _, err := fmt.Sscanf(key, "k%d", &i); err == nil && round%2 == 1 {
				return shared[i/2]
			}
			l, _ := tokenbucket.New(cfg)
			return l
		}, ratekit.KeyedConfig{})
		name := func(i int) string { return fmt.Sprint("k", i) }
		var admitted [keys]atomic.Int64
		var wg sync.WaitGroup
		var stop atomic.Bool
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := uint64(w*7919 + round)
				for i := 0; !stop.Load(); i++ {
					x = x*6364136223846793005 + 1442695040888963407
					key := int(x>>33) % keys
					switch op := (x >> 50) % 16; {
					case op < 8:
						if k.Take(t0, name(key), 1).Allowed {
							admitted[key].Add(1)
						}
					case op < 11:
						if k.Get(name(key)).Take(t0, 1).Allowed {
							admitted[key].Add(1)
						}
					case op < 12:
						c := cfg
						c.Name = fmt.Sprint("n", x%3)
						require.NoError(t, k.Get(name(key)).Reconfigure(c))
					case op < 14:
						other := (key + 1 + int(x>>40)%(keys-1)) % keys
						a, b := k.Get(name(key)), k.Get(name(other))
						if a == b {
							continue
						}
						if ratekit.TakeAll(t0, 1, a, b).Allowed {
							admitted[key].Add(1)
							admitted[other].Add(1)
						}
					default:
						k.Get(fmt.Sprint("filler-", w, "-", i))
					}
				}
			}()
		}
		// Run until every key is exhausted (or long enough).
		deadline := 200000
		for spin := 0; spin < deadline; spin++ {
			done := true
			for i := range keys {
				if k.Get(name(i)).Peek(t0, 1).Allowed {
					done = false
				}
			}
			if done {
				break
			}
			runtime.Gosched()
		}
		stop.Store(true)
		wg.Wait()
		for i := range keys {
			got := admitted[i].Load()
			if round%2 == 1 {
				// keys i and i^1 draw on one limiter
				got += admitted[i^1].Load()
				require.Equal(t, int64(burst), got, "round %d shared keys %d,%d", round, i, i^1)
				continue
			}
			require.Equal(t, int64(burst), got, "round %d key %d", round, i)
		}
	}
}

// reviewKey is a named string type: its keys use the inline layout too.
type reviewKey string

// FuzzKeyedSlotKeys runs a script of Takes, Gets, Deletes, Sweeps and
// Reconfigures over string keys of 0 to 20 bytes drawn from a few bytes
// (NUL included, so keys that differ only in a trailing NUL or in length
// 16 and 17 meet), on a Keyed and on a map of lone limiters, and requires
// the same decisions: a short key compared wrongly in its slot (inline bytes
// against a long key, a stale length) shows as a key deciding on another's
// state.
func FuzzKeyedSlotKeys(f *testing.F) {
	f.Add([]byte("\x00\x10aaaaaaaaaaaaaaaa\x00\x11aaaaaaaaaaaaaaaaa\x00\x10aaaaaaaaaaaaaaaa"))
	f.Add([]byte("\x00\x00\x00\x01\x00\x00\x02a\x00\x00\x01a\x03\x00\x00\x00"))
	f.Add([]byte("\x00\x03ab\x00\x00\x02ab\x04\x03ab\x00\x00\x03ab\x00\x05\x00"))
	f.Add([]byte("\x01\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0f\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, script []byte) {
		cfgs := []tokenbucket.Config{
			{Limit: 3, Window: time.Second, Burst: 3, Clock: fixedNow(t0)},
			{Limit: 3, Window: time.Second, Burst: 3, Name: "other", Clock: fixedNow(t0)},
		}
		k := ratekit.NewKeyed(func(reviewKey) *tokenbucket.Limiter {
			l, _ := tokenbucket.New(cfgs[0])
			return l
		}, ratekit.KeyedConfig{})
		ref := map[reviewKey]*tokenbucket.Limiter{}
		refOf := func(key reviewKey) *tokenbucket.Limiter {
			if ref[key] == nil {
				ref[key], _ = tokenbucket.New(cfgs[0])
			}
			return ref[key]
		}
		const alphabet = "a\x00b"
		now := t0
		for len(script) >= 2 {
			op, n := script[0], int(script[1])%21
			script = script[2:]
			kb := make([]byte, n)
			for i := range kb {
				if len(script) > 0 {
					kb[i] = alphabet[int(script[0])%len(alphabet)]
					script = script[1:]
				} else {
					kb[i] = 'a'
				}
			}
			key := reviewKey(kb)
			switch op % 8 {
			case 0, 1, 2:
				require.Equal(t, refOf(key).Take(now, 1), k.Take(now, key, 1), "Take %q", key)
			case 3:
				require.Equal(t, refOf(key).Take(now, 1), k.Get(key).Take(now, 1), "Get(%q).Take", key)
			case 4:
				_, had := ref[key]
				delete(ref, key)
				require.Equal(t, had, k.Delete(key), "Delete %q", key)
			case 5:
				now = now.Add(400 * time.Millisecond)
			case 6:
				c := cfgs[int(op>>3)%2]
				c.Clock = fixedNow(now)
				require.NoError(t, refOf(key).Reconfigure(c))
				require.NoError(t, k.Get(key).Reconfigure(c))
			case 7:
				dropped := 0
				for key, l := range ref {
					if l.Idle(now) {
						delete(ref, key)
						dropped++
					}
				}
				require.Equal(t, dropped, k.Sweep(now), "Sweep")
			}
		}
		require.Equal(t, len(ref), k.Len())
	})
}

// TestKeyedReviewChurn races every move a key's state can make (inserts,
// growth, eviction at MaxKeys, Delete, Sweep, Reconfigure, UnmarshalBinary,
// joint Takes) with Takes, for a fixed number of operations: it must end
// (no goroutine waits forever on a sealed block), and afterwards, for every
// key, a Take through the Keyed and Get's limiter must act on one state.
func TestKeyedReviewChurn(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	cfg := tokenbucket.Config{Limit: 100, Window: time.Second, Burst: 50, Clock: fixedNow(t0)}
	saved, err := func() ([]byte, error) {
		l, err := tokenbucket.New(cfg)
		if err != nil {
			return nil, err
		}
		l.Take(t0, 7)
		return l.MarshalBinary()
	}()
	require.NoError(t, err)
	for round := range rounds {
		k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter {
			l, _ := tokenbucket.New(cfg)
			return l
		}, ratekit.KeyedConfig{MaxKeys: 24 + 40*(round%2)})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := uint64(w*104729 + round*31)
				for range 3000 {
					x = x*6364136223846793005 + 1442695040888963407
					key := fmt.Sprint("k", int(x>>33)%48)
					now := t0.Add(time.Duration(x>>40%1000) * time.Millisecond)
					switch op := (x >> 52) % 16; {
					case op < 7:
						k.Take(now, key, 1)
					case op < 9:
						k.Get(key).Take(now, 1)
					case op < 10:
						c := cfg
						c.Name = fmt.Sprint("n", x%2)
						require.NoError(t, k.Get(key).Reconfigure(c))
					case op < 11:
						require.NoError(t, k.Get(key).UnmarshalBinary(saved))
					case op < 12:
						k.Delete(key)
					case op < 13:
						k.Sweep(now.Add(time.Duration(x>>20%3) * time.Second))
					case op < 14:
						ratekit.TakeAll(now, 1, k.Get(key), k.Get(fmt.Sprint("k", int(x>>20)%48)))
					default:
						k.Get(fmt.Sprint("f", w, "-", x%500))
					}
				}
			}()
		}
		wg.Wait()
		later := t0.Add(time.Hour)
		for key := range k.All() {
			require.True(t, k.Take(later, key, 5).Allowed)
			require.Equal(t, 50-5-1, k.Get(key).Take(later, 1).Remaining, "round %d key %s", round, key)
			require.Equal(t, 50-6-2, k.Take(later, key, 2).Remaining, "round %d key %s", round, key)
		}
	}
}

// reconfigurable is what stressExact needs of a limiter.
type reconfigurable[C any] interface {
	ratekit.Limiter
	Reconfigure(C) error
}

// stressExact is TestKeyedReviewStress's exact count for any algorithm
// with a slotter: at one instant, Takes by the Keyed and by Get's limiter,
// Reconfigures to a Config of the same rate (cfgs), joint Takes over two
// keys and inserts of other keys race, and each key admits exactly burst.
func stressExact[C any, L reconfigurable[C]](t *testing.T, newL func() L, cfgs []C, burst int) {
	const keys, workers = 8, 8
	for round := range 6 {
		k := ratekit.NewKeyed(func(string) L { return newL() }, ratekit.KeyedConfig{})
		var admitted [keys]atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := uint64(w*7919 + round)
				for i := 0; !stop.Load(); i++ {
					x = x*6364136223846793005 + 1442695040888963407
					key := int(x>>33) % keys
					name := fmt.Sprint("k", key)
					switch op := (x >> 50) % 16; {
					case op < 8:
						if k.Take(t0, name, 1).Allowed {
							admitted[key].Add(1)
						}
					case op < 11:
						if k.Get(name).Take(t0, 1).Allowed {
							admitted[key].Add(1)
						}
					case op < 12:
						require.NoError(t, k.Get(name).Reconfigure(cfgs[x%uint64(len(cfgs))]))
					case op < 14:
						other := (key + 1 + int(x>>40)%(keys-1)) % keys
						if ratekit.TakeAll(t0, 1, k.Get(name), k.Get(fmt.Sprint("k", other))).Allowed {
							admitted[key].Add(1)
							admitted[other].Add(1)
						}
					default:
						k.Get(fmt.Sprint("filler-", w, "-", i))
					}
				}
			}()
		}
		for spin := 0; spin < 200000; spin++ {
			done := true
			for i := range keys {
				if k.Get(fmt.Sprint("k", i)).Peek(t0, 1).Allowed {
					done = false
				}
			}
			if done {
				break
			}
			runtime.Gosched()
		}
		stop.Store(true)
		wg.Wait()
		for i := range keys {
			require.Equal(t, int64(burst), admitted[i].Load(), "round %d key %d", round, i)
		}
	}
}

func TestKeyedReviewStressAlgorithms(t *testing.T) {
	t.Run("fixedwindow", func(t *testing.T) {
		cfgs := []fixedwindow.Config{{Limit: 64, Window: time.Hour}, {Limit: 64, Window: time.Hour, Name: "b"}}
		stressExact(t, func() *fixedwindow.Limiter {
			l, err := fixedwindow.New(cfgs[0])
			require.NoError(t, err)
			return l
		}, cfgs, 64)
	})
	t.Run("slidingwindow Counter", func(t *testing.T) {
		cfgs := []slidingwindow.Config{{Limit: 64, Window: time.Hour}, {Limit: 64, Window: time.Hour, Name: "b"}}
		stressExact(t, func() *slidingwindow.Counter {
			l, err := slidingwindow.NewCounter(cfgs[0])
			require.NoError(t, err)
			return l
		}, cfgs, 64)
	})
}

// TestKeyedReviewPlainLayouts: limiters with no slotter keep the plain slot
// (the key and the limiter pointer): rolling, whose Ref is in helping mode
// and must not move, the sliding Log and concurrency, which keep more than
// a word.
func TestKeyedReviewPlainLayouts(t *testing.T) {
	rk := ratekit.NewKeyed(func(string) *rolling.Limiter {
		l, _ := rolling.New(rolling.Config{Limit: 10, Window: time.Second})
		return l
	}, ratekit.KeyedConfig{})
	lk := ratekit.NewKeyed(func(string) *slidingwindow.Log {
		l, _ := slidingwindow.NewLog(slidingwindow.Config{Limit: 10, Window: time.Second})
		return l
	}, ratekit.KeyedConfig{})
	require.True(t, ratekit.KeyedSlotBytes(rk) == 32)
	require.True(t, ratekit.KeyedSlotBytes(lk) == 32)
	// Rolling keys through growth: the Keyed's Take and Get's limiter share
	// one state (Remaining counts down across both).
	for i := range 200 {
		key := fmt.Sprint("r", i)
		require.Equal(t, 9, rk.Take(t0, key, 1).Remaining)
		require.Equal(t, 8, rk.Get(key).Take(t0, 1).Remaining)
	}
	for i := range 200 {
		require.Equal(t, 7, rk.Take(t0, fmt.Sprint("r", i), 1).Remaining)
	}
}
