package ratekit_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Keyed state in the table slot (keyed_slot.go): the slot's block is the
// limiter's own state, so the Keyed's Take, Get's limiter, its Reconfigure
// and UnmarshalBinary, and a lone limiter given the same calls all agree,
// through inserts, rebuilds and drops.

var slotBucket = tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 4, Name: "slot"}

func newSlotKeyed[K comparable](t testing.TB) *ratekit.Keyed[K, *tokenbucket.Limiter] {
	t.Helper()
	require.NoError(t, slotBucket.Validate())
	return ratekit.NewKeyed(func(K) *tokenbucket.Limiter {
		l, _ := tokenbucket.New(slotBucket)
		return l
	}, ratekit.KeyedConfig{})
}

func TestKeyedSlotLayouts(t *testing.T) {
	type pair struct{ a, b uint32 }
	type withString struct {
		s string
		n int
	}
	// The fields only shape the keys' layouts; keys of both kinds work.
	kp, ks := newSlotKeyed[pair](t), newSlotKeyed[withString](t)
	require.True(t, kp.Take(t0, pair{a: 1, b: 2}, 1).Allowed)
	require.True(t, ks.Take(t0, withString{s: "org", n: 1}, 1).Allowed)
	require.True(t, ratekit.KeyedSlotBytes(newSlotKeyed[string](t)) == 72, "string keys: header, 16 inline bytes, block")
	require.True(t, ratekit.KeyedSlotBytes(newSlotKeyed[uint64](t)) == 48, "8-byte keys: no inline bytes")
	require.True(t, ratekit.KeyedSlotBytes(newSlotKeyed[pair](t)) == 48)
	require.True(t, ratekit.KeyedSlotBytes(newSlotKeyed[withString](t)) == 40, "a key compared outside the slot: the plain slot")
	require.True(t, ratekit.KeyedSlotBytes(newSlotKeyed[any](t)) == 32, "the plain slot")
	gen := ratekit.NewKeyed(func(string) ratekit.Limiter {
		l, _ := tokenbucket.New(slotBucket)
		return l
	}, ratekit.KeyedConfig{})
	require.True(t, ratekit.KeyedSlotBytes(gen) == 40, "an interface L: the plain slot")
}

func TestKeyedSlotHoldsTheState(t *testing.T) {
	for _, key := range []string{"", "a", "org_0000000042", strings.Repeat("x", 16), strings.Repeat("y", 17)} {
		k := newSlotKeyed[string](t)
		ref, err := tokenbucket.New(slotBucket)
		require.NoError(t, err)
		require.Equal(t, ref.Take(t0, 1), k.Take(t0, key, 1))
		require.True(t, ratekit.KeyedStateInSlot(k, key), "key %q", key)
		// Get's limiter and the Keyed's Take share one state.
		require.Equal(t, ref.Take(t0, 3), k.Get(key).Take(t0, 3))
		d := k.Take(t0, key, 1)
		require.False(t, d.Allowed, "key %q", key)
		require.Equal(t, ref.Take(t0, 1), d)
		ref.Refund(t0, 2)
		k.Get(key).Refund(t0, 2)
		require.Equal(t, ref.Take(t0, 1), k.Take(t0, key, 1))
		require.Equal(t, ref.Peek(t0, 1), k.Get(key).Peek(t0, 1))
	}
}

// TestKeyedSlotScript runs random calls on a Keyed's key and on a lone
// token bucket and requires the same decisions: Takes by the Keyed and by
// Get's limiter, Refunds, Reconfigures and UnmarshalBinary (which move the
// state out of the slot, so the Keyed's Take falls back on the limiter), new
// keys that rebuild the tables (which move it back), Deletes of other keys.
func TestKeyedSlotScript(t *testing.T) {
	configs := []tokenbucket.Config{slotBucket,
		{Limit: 20, Window: time.Second, Burst: 8, Name: "b"},
		{Limit: 3, Window: time.Second, Burst: 2, Name: "c"}}
	seed := conformance.Seed(t)
	r := rand.New(rand.NewPCG(seed, 1))
	for _, key := range []string{"hot", "a-key-longer-than-16-bytes"} {
		k := newSlotKeyed[string](t)
		ref, err := tokenbucket.New(slotBucket)
		require.NoError(t, err)
		now, other := t0, 0
		sawOut, sawBack, wasOut := false, false, false
		for step := range 3000 {
			now = now.Add(time.Duration(r.IntN(60)) * time.Millisecond)
			n := r.IntN(4)
			where := fmt.Sprintf("step %d", step)
			switch x := r.IntN(20); {
			case x < 8:
				require.Equal(t, ref.Take(now, n), k.Take(now, key, n), where)
			case x < 10:
				require.Equal(t, ref.Take(now, n), k.Get(key).Take(now, n), where)
			case x < 12:
				at := now.Add(-time.Duration(r.IntN(200)) * time.Millisecond)
				ref.Refund(at, n)
				k.Get(key).Refund(at, n)
			case x < 13:
				c := configs[r.IntN(len(configs))]
				c.Clock = fixedNow(now)
				require.NoError(t, ref.Reconfigure(c))
				require.NoError(t, k.Get(key).Reconfigure(c))
				sawOut = sawOut || !ratekit.KeyedStateInSlot(k, key)
			case x < 14:
				b, err := ref.MarshalBinary()
				require.NoError(t, err)
				require.NoError(t, ref.UnmarshalBinary(b))
				require.NoError(t, k.Get(key).UnmarshalBinary(b))
				sawOut = sawOut || !ratekit.KeyedStateInSlot(k, key)
			case x < 18:
				// New keys: the tables grow, moving the key's state.
				for range 1 + r.IntN(64) {
					other++
					k.Take(now, fmt.Sprint("o", other), 1)
				}
			default:
				for range r.IntN(8) {
					k.Delete(fmt.Sprint("o", 1+r.IntN(max(other, 1))))
				}
			}
			// Back in a slot after a rebuild: by new keys, or by Takes that
			// found the state outside (Keyed.outside).
			in := ratekit.KeyedStateInSlot(k, key)
			sawBack = sawBack || wasOut && in
			wasOut = !in
		}
		require.True(t, sawOut, "a Reconfigure or Unmarshal replaced the slot's block")
		if len(key) <= 16 {
			require.True(t, sawBack, "a rebuild moved a replaced state back into a slot")
		}
	}
}

// fixedNow is a clock for Reconfigure that reads now.
func fixedNow(now time.Time) clock.Clock {
	c := clock.NewMock()
	c.Set(now)
	return c
}

// TestKeyedSlotDropFreesTable: a limiter kept from Get after its key is
// dropped no longer points into the table, so the table can be freed.
func TestKeyedSlotDropFreesTable(t *testing.T) {
	for name, drop := range map[string]func(k *ratekit.Keyed[string, *tokenbucket.Limiter]){
		"Delete": func(k *ratekit.Keyed[string, *tokenbucket.Limiter]) {
			require.True(t, k.Delete("kept"))
			k.Sweep(t0.Add(time.Hour)) // frees the emptied shard's table
		},
		"Sweep": func(k *ratekit.Keyed[string, *tokenbucket.Limiter]) {
			require.Equal(t, 1, k.Sweep(t0.Add(time.Hour)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			k := newSlotKeyed[string](t)
			require.True(t, k.Take(t0, "kept", 3).Allowed)
			l := k.Get("kept")
			tab := ratekit.KeyedTableOf(k, "kept")
			require.NotNil(t, tab.Value())
			drop(k)
			runtime.GC()
			runtime.GC()
			require.Nil(t, tab.Value(), "the kept limiter holds the dropped key's table")
			// The kept limiter has its state, in a block of its own.
			require.Equal(t, 1, l.Take(t0.Add(100*time.Millisecond), 1).Remaining)
			runtime.KeepAlive(k)
		})
	}
}

func TestKeyedSlotAllocations(t *testing.T) {
	now := t0
	strs := newSlotKeyed[string](t)
	long := strings.Repeat("z", 40)
	ints := newSlotKeyed[int](t)
	addrs := newSlotKeyed[netip.Addr](t)
	ip := netip.MustParseAddr("2001:db8::1")
	strs.Get("org_1")
	strs.Get(long)
	ints.Get(7)
	addrs.Get(ip)
	require.True(t, ratekit.KeyedStateInSlot(strs, "org_1"))
	require.True(t, ratekit.KeyedStateInSlot(ints, 7))
	require.True(t, ratekit.KeyedStateInSlot(addrs, ip))
	require.Zero(t, testing.AllocsPerRun(200, func() {
		strs.Take(now, "org_1", 1)
		strs.Take(now, long, 1)
		ints.Take(now, 7, 1)
		addrs.Take(now, ip, 1)
		strs.Get("org_1").Refund(now, 1)
	}))
}

// slotLimiter is what TestKeyedSlotAlgorithms needs of an algorithm.
type slotLimiter interface {
	ratekit.Limiter
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// TestKeyedSlotAlgorithms is TestKeyedSlotScript's comparison, without
// Reconfigure, for every algorithm that keeps its state in the slot, and a
// zero fixedwindow.Limiter, which has no block to move in (the slot stays
// sealed and the Keyed's Take uses the limiter).
func TestKeyedSlotAlgorithms(t *testing.T) {
	var hooked atomic.Int64
	fw := fixedwindow.Config{Limit: 5, Window: time.Second, Name: "fw",
		OnLimitReached: func(ratekit.Decision) { hooked.Add(1) }}
	sw := slidingwindow.Config{Limit: 5, Window: time.Second, Name: "sw"}
	t.Run("fixedwindow", func(t *testing.T) {
		slotScript(t, true, func() *fixedwindow.Limiter { l, _ := fixedwindow.New(fw); return l })
		require.Positive(t, hooked.Load(), "OnLimitReached")
	})
	t.Run("slidingwindow", func(t *testing.T) {
		slotScript(t, true, func() *slidingwindow.Counter { l, _ := slidingwindow.NewCounter(sw); return l })
	})
	t.Run("tokenbucket", func(t *testing.T) {
		slotScript(t, true, func() *tokenbucket.Limiter { l, _ := tokenbucket.New(slotBucket); return l })
	})
	t.Run("zero-fixedwindow", func(t *testing.T) {
		slotScript(t, false, func() *fixedwindow.Limiter { return &fixedwindow.Limiter{} })
	})
}

func slotScript[L slotLimiter](t *testing.T, inSlot bool, mk func() L) {
	seed := conformance.Seed(t)
	r := rand.New(rand.NewPCG(seed, 2))
	k := ratekit.NewKeyed(func(string) L { return mk() }, ratekit.KeyedConfig{})
	ref := mk()
	now, other := t0, 0
	k.Get("hot")
	require.Equal(t, inSlot, ratekit.KeyedStateInSlot(k, "hot"))
	for step := range 2000 {
		now = now.Add(time.Duration(r.IntN(80)) * time.Millisecond)
		n := r.IntN(4)
		where := fmt.Sprintf("step %d", step)
		switch x := r.IntN(20); {
		case x < 10:
			require.Equal(t, ref.Take(now, n), k.Take(now, "hot", n), where)
		case x < 12:
			require.Equal(t, ref.Take(now, n), k.Get("hot").Take(now, n), where)
		case x < 14:
			at := now.Add(-time.Duration(r.IntN(300)) * time.Millisecond)
			ref.Refund(at, n)
			k.Get("hot").Refund(at, n)
		case x < 15:
			b, err := ref.MarshalBinary()
			b2, err2 := k.Get("hot").MarshalBinary()
			require.Equal(t, b, b2, where)
			require.Equal(t, err, err2, where)
			if err == nil {
				require.Equal(t, ref.UnmarshalBinary(b), k.Get("hot").UnmarshalBinary(b), where)
			}
		default:
			for range 1 + r.IntN(64) {
				other++
				k.Take(now, fmt.Sprint("o", other), 1)
				if other%3 == 0 {
					k.Delete(fmt.Sprint("o", other-1))
				}
			}
		}
	}
}

// TestKeyedSlotStatesComeBack: states moved out of their slots by
// UnmarshalBinary (a persist restore) or Reconfigure come back into slots
// after a few Takes, without new keys, and decide as before.
func TestKeyedSlotStatesComeBack(t *testing.T) {
	k := newSlotKeyed[string](t)
	const n = 2000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
		require.True(t, k.Take(t0, keys[i], 3).Allowed)
	}
	ref, err := tokenbucket.New(slotBucket)
	require.NoError(t, err)
	require.True(t, ref.Take(t0, 3).Allowed)
	saved, err := ref.MarshalBinary()
	require.NoError(t, err)
	for i, key := range keys {
		if i%2 == 0 {
			require.NoError(t, k.Get(key).UnmarshalBinary(saved))
		} else {
			c := slotBucket
			c.Clock = fixedNow(t0)
			require.NoError(t, k.Get(key).Reconfigure(c))
		}
		require.False(t, ratekit.KeyedStateInSlot(k, key))
	}
	// A few Takes of each key (2000 keys are about 8 in each of 256
	// shards): every shard sees outsideRebuild (16) Takes outside.
	now := t0.Add(time.Second)
	for round := range 5 {
		want := ref.Take(now, 1)
		for _, key := range keys {
			require.Equal(t, want, k.Take(now, key, 1), "round %d key %s", round, key)
		}
	}
	in := 0
	for _, key := range keys {
		if ratekit.KeyedStateInSlot(k, key) {
			in++
		}
	}
	t.Logf("%d of %d states back in their slots after five Takes each", in, n)
	require.Greater(t, in, n*9/10)
}

// TestKeyedSlotSharedLimiter: a factory returning one limiter for many keys
// gets one budget for all of them, whichever slot holds the state, through
// rebuilds and the rebuilds that Takes outside trigger.
func TestKeyedSlotSharedLimiter(t *testing.T) {
	shared, err := tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1000, Name: "shared"})
	require.NoError(t, err)
	k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return shared }, ratekit.KeyedConfig{})
	admitted := 0
	for i := range 3000 {
		if k.Take(t0, fmt.Sprint("k", i%700), 1).Allowed {
			admitted++
		}
	}
	require.Equal(t, 1000, admitted)
	require.Equal(t, 0, shared.Peek(t0, 1).Remaining)
}
