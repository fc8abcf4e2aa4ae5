package ratekit_test

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/internal/model"
)

// gcra is a test limiter with the cost and shape of a real token bucket: one
// atomic word, the theoretical arrival time (TAT) of GCRA in nanoseconds
// from the epoch, updated by CAS, and an Idle method. It admits limit units
// per window, at most limit at once. Times before the epoch count as the
// epoch, which never admits more (TAT is never below 0); times more than
// maxGCRA after it count as maxGCRA, so that TAT plus a window cannot
// overflow int64 (the conformance Overflow check probes year 9999).
type gcra struct {
	epoch time.Time
	per   int64 // nanoseconds per unit
	burst int64
	tat   atomic.Int64
	seen  atomic.Int64 // the latest time of an admitted Take, for Refund
	mark  atomic.Int64 // 1 + the time at or before which a Refund gives nothing back (set by UnmarshalBinary); 0: none
	// restoring orders UnmarshalBinary against Takes and Refunds, which
	// share its read side and race each other only by CAS: a restore
	// reads seen and replaces tat as one step, so that a Take racing it is
	// either in the mark or counted in the restored state.
	restoring sync.RWMutex
}

var _ ratekit.Limiter = (*gcra)(nil)

func newGCRA(epoch time.Time, limit int, window time.Duration) *gcra {
	return &gcra{epoch: epoch, per: int64(window) / int64(limit), burst: int64(limit)}
}

// maxGCRA is the latest time gcra tells apart: about 146 years.
const maxGCRA = 1 << 62

func (g *gcra) at(now time.Time) int64 { return min(max(int64(now.Sub(g.epoch)), 0), maxGCRA) }

func (g *gcra) Take(now time.Time, n int) ratekit.Decision { return g.decide(now, n, true) }
func (g *gcra) Peek(now time.Time, n int) ratekit.Decision { return g.decide(now, n, false) }

func (g *gcra) decide(now time.Time, n int, take bool) ratekit.Decision {
	at := g.at(now)
	if take {
		g.restoring.RLock()
		defer g.restoring.RUnlock()
	}
	for {
		tat := g.tat.Load()
		base := max(tat, at)
		d := ratekit.Decision{
			Limit:      int(g.burst),
			Window:     time.Duration(g.burst * g.per),
			Remaining:  int((g.burst*g.per - (base - at)) / g.per),
			ResetAfter: time.Duration(base - at),
		}
		switch {
		case n < 0 || int64(n) > g.burst:
			d.RetryAfter = ratekit.Never
			return d
		case n == 0:
			d.Allowed = true
			return d
		}
		next := base + int64(n)*g.per
		if over := next - at - g.burst*g.per; over > 0 {
			d.RetryAfter = time.Duration(over)
			return d
		}
		d.Allowed = true
		d.Remaining = int((g.burst*g.per - (next - at)) / g.per)
		d.ResetAfter = time.Duration(next - at)
		if !take {
			return d
		}
		for z := g.seen.Load(); at > z && !g.seen.CompareAndSwap(z, at); z = g.seen.Load() {
		}
		if g.tat.CompareAndSwap(tat, next) {
			return d
		}
	}
}

// Refund moves TAT back by n units less the time by which the latest Take
// was stamped after `at` (tokenbucket.Limiter.Refund's rule), never before
// `at`: a refund cannot raise capacity above a fresh limiter's, nor give
// back refill that later-stamped Takes used.
func (g *gcra) Refund(at time.Time, n int) {
	if n <= 0 || int64(n) > g.burst {
		return
	}
	floor := g.at(at)
	g.restoring.RLock()
	defer g.restoring.RUnlock()
	if m := g.mark.Load(); m != 0 && floor <= m-1 {
		return // a Take from before a restore
	}
	for {
		tat := g.tat.Load()
		give := int64(n)*g.per - max(g.seen.Load()-floor, 0)
		if give <= 0 {
			return
		}
		next := max(tat-give, min(tat, floor))
		if next >= tat || g.tat.CompareAndSwap(tat, next) {
			return
		}
	}
}

// Idle is tokenbucket's rule: the TAT is at or before now, and a refund of
// a Take stamped at or before the mark (which gives nothing back here)
// would give nothing back on a fresh gcra in this one's place either: a
// refill of burst has passed since the mark.
func (g *gcra) Idle(now time.Time) bool {
	t := g.at(now)
	if m := g.mark.Load(); m != 0 && t-g.burst*g.per < m-1 {
		return false
	}
	return g.tat.Load() <= t
}

func (g *gcra) MarshalBinary() ([]byte, error) {
	return binary.AppendVarint([]byte("gcra"), g.tat.Load()), nil
}

func (g *gcra) UnmarshalBinary(b []byte) error {
	if len(b) < 5 || string(b[:4]) != "gcra" {
		return fmt.Errorf("%w: gcra: bad header", ratekit.ErrInvalidState)
	}
	v, n := binary.Varint(b[4:])
	if n <= 0 || 4+n != len(b) || v < 0 || v > 1<<62 {
		return fmt.Errorf("%w: gcra: bad payload", ratekit.ErrInvalidState)
	}
	// The Takes of the replaced state no longer count, and none of this
	// limiter's is counted in the restored one: the bound on their stamps
	// becomes the mark, at or before which a refund gives nothing back
	// (tokenbucket's rule).
	g.restoring.Lock()
	defer g.restoring.Unlock()
	if s := g.seen.Load(); s > 0 || g.tat.Load() > 0 { // something was taken
		for m := g.mark.Load(); s+1 > m && !g.mark.CompareAndSwap(m, s+1); m = g.mark.Load() {
		}
	}
	g.seen.Store(0)
	g.tat.Store(v)
	return nil
}

// keyView is one key of a Keyed seen as a Limiter, so that the conformance
// suite runs through Keyed.Take and Keyed.Get.
type keyView struct {
	k   *ratekit.Keyed[string, *gcra]
	key string
}

func (v keyView) Take(now time.Time, n int) ratekit.Decision { return v.k.Take(now, v.key, n) }
func (v keyView) Peek(now time.Time, n int) ratekit.Decision { return v.k.Get(v.key).Peek(now, n) }
func (v keyView) Refund(at time.Time, n int)                 { v.k.Get(v.key).Refund(at, n) }
func (v keyView) Idle(now time.Time) bool                    { return v.k.Get(v.key).Idle(now) }
func (v keyView) MarshalBinary() ([]byte, error)             { return v.k.Get(v.key).MarshalBinary() }
func (v keyView) UnmarshalBinary(b []byte) error             { return v.k.Get(v.key).UnmarshalBinary(b) }

func TestGCRAConforms(t *testing.T) {
	// The test limiter itself, so that the tests below stand on solid ground.
	conformance.Run(t, conformance.Subject{
		New:           func(testing.TB) ratekit.Limiter { return newGCRA(t0, 10, time.Second) },
		Capacity:      10,
		NoReconfigure: "a stand-in GCRA for Keyed's tests, not an algorithm of the library",
	})
}

func TestKeyedKeyConforms(t *testing.T) {
	for _, maxKeys := range []int{0, 1} {
		t.Run(fmt.Sprintf("MaxKeys=%d", maxKeys), func(t *testing.T) {
			conformance.Run(t, conformance.Subject{
				New: func(testing.TB) ratekit.Limiter {
					k := ratekit.NewKeyed(func(string) *gcra { return newGCRA(t0, 10, time.Second) },
						ratekit.KeyedConfig{MaxKeys: maxKeys})
					return keyView{k, "org-1"}
				},
				Capacity:      10,
				NoReconfigure: "a view of one key of a Keyed, whose limiters are reconfigured each on its own",
			})
		})
	}
}

// perSecond returns a factory of gcra limiters admitting limit per second.
func perSecond[K comparable](limit int) func(K) *gcra {
	return func(K) *gcra { return newGCRA(t0, limit, time.Second) }
}

func TestKeyedOneLimiterPerKey(t *testing.T) {
	var made atomic.Int64
	k := ratekit.NewKeyed(func(org string) *gcra {
		made.Add(1)
		return newGCRA(t0, 3, time.Second)
	}, ratekit.KeyedConfig{})
	require.Zero(t, k.Len())

	a := k.Get("acme")
	require.Same(t, a, k.Get("acme"), "one limiter per key")
	require.NotSame(t, a, k.Get("globex"))
	require.Equal(t, 2, k.Len())
	require.EqualValues(t, 2, made.Load())

	for i := 0; i < 3; i++ {
		require.True(t, k.Take(t0, "acme", 1).Allowed)
	}
	d := k.Take(t0, "acme", 1)
	require.False(t, d.Allowed, "acme has used its 3")
	require.Equal(t, time.Second/3, d.RetryAfter)
	require.True(t, k.Take(t0, "globex", 3).Allowed, "globex has its own limit")
	require.True(t, k.Take(t0, "initech", 1).Allowed, "Take makes a new key's limiter")
	require.Equal(t, 3, k.Len())
	require.Equal(t, 0, a.Peek(t0, 1).Remaining, "Take used Get's limiter")
}

func TestKeyedManyKeysGrowAndShrink(t *testing.T) {
	// Enough keys to rebuild every shard's table several times.
	k := ratekit.NewKeyed(perSecond[int](2), ratekit.KeyedConfig{})
	const n = 20_000
	for i := 0; i < n; i++ {
		require.True(t, k.Take(t0, i, 1).Allowed)
	}
	require.Equal(t, n, k.Len())
	for i := 0; i < n; i++ {
		require.Equal(t, 0, k.Take(t0, i, 1).Remaining, "key %d kept its state through rebuilds", i)
	}
	// Odd keys are used again later: only even keys are idle then.
	later := t0.Add(5 * time.Second)
	for i := 1; i < n; i += 2 {
		require.True(t, k.Take(later, i, 2).Allowed)
	}
	require.Equal(t, n/2, k.Sweep(later))
	require.Equal(t, n/2, k.Len())
	for i := 1; i < n; i += 2 {
		require.False(t, k.Take(later, i, 1).Allowed, "key %d survived the sweep with its state", i)
	}
	require.Equal(t, n/2, k.Sweep(later.Add(time.Hour)))
	require.Zero(t, k.Len())
	require.True(t, k.Take(later, 7, 2).Allowed, "an emptied Keyed takes new keys")
	require.Equal(t, 1, k.Len())
}

// TestKeyedSweepChangesNoDecision drives a Keyed and a model that never
// drops anything with the same random Takes, sweeping the Keyed between
// them: every decision must agree.
func TestKeyedSweepChangesNoDecision(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	k := ratekit.NewKeyed(perSecond[int](5), ratekit.KeyedConfig{})
	keep := model.NewKeyed(perSecond[int](5))
	now := t0
	swept := 0
	for i := 0; i < 20_000; i++ {
		now = now.Add(time.Duration(rng.IntN(int(50 * time.Millisecond))))
		key, n := rng.IntN(200), rng.IntN(4)
		require.Equal(t, keep.Take(now, key, n), k.Take(now, key, n), "seed %d step %d key %d", seed, i, key)
		if i%97 == 0 {
			swept += k.Sweep(now)
		}
	}
	require.Positive(t, swept)
	require.EqualValues(t, swept, k.Stats().Swept)
}

// plain is a limiter without Idle: Sweep never drops it.
type plain struct{ g *gcra }

func (p plain) Take(now time.Time, n int) ratekit.Decision { return p.g.Take(now, n) }
func (p plain) Peek(now time.Time, n int) ratekit.Decision { return p.g.Peek(now, n) }
func (p plain) Refund(at time.Time, n int)                 { p.g.Refund(at, n) }

// racyIdle is a gcra whose first Idle call reports what it sees and then
// takes a unit, as a Take that found the limiter before Sweep unlinked it
// and lands right after Sweep's first check would.
type racyIdle struct {
	*gcra
	calls int
}

func (r *racyIdle) Idle(now time.Time) bool {
	idle := r.gcra.Idle(now)
	if r.calls++; r.calls == 1 {
		r.gcra.Take(now, 1)
	}
	return idle
}

func TestKeyedDropRacingATake(t *testing.T) {
	t.Run("SweepPutsBack", func(t *testing.T) {
		k := ratekit.NewKeyed(func(string) *racyIdle { return &racyIdle{gcra: newGCRA(t0, 5, time.Second)} },
			ratekit.KeyedConfig{})
		l := k.Get("tok")
		require.Zero(t, k.Sweep(t0), "a Take between the two checks keeps the limiter")
		require.Same(t, l, k.Get("tok"))
		require.Equal(t, 4, k.Take(t0, "tok", 0).Remaining, "the racing Take counts")
		require.Equal(t, 1, k.Len())
		require.Zero(t, k.Stats().Swept)
	})
	t.Run("EvictionCountsItBusy", func(t *testing.T) {
		k := ratekit.NewKeyed(func(string) *racyIdle { return &racyIdle{gcra: newGCRA(t0, 5, time.Second)} },
			ratekit.KeyedConfig{MaxKeys: 1})
		k.Get("a")
		k.Take(t0, "b", 1)
		require.Equal(t, ratekit.KeyedStats{Keys: 1, EvictedBusy: 1}, k.Stats(),
			"idle when chosen, busy once unlinked: the eviction changed a decision")
	})
}

// TestKeyedDropWhileInUse drops one busy key again and again while
// goroutines take from it at one instant (nothing refills): each drop may
// let the key admit one more window's worth, never more, and the key never
// has two limiters at once from racing inserts.
func TestKeyedDropWhileInUse(t *testing.T) {
	const capacity = 10
	k := ratekit.NewKeyed(func(string) *gcra { return newGCRA(t0, capacity, time.Hour) }, ratekit.KeyedConfig{})
	var admitted, drops atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				if k.Take(t0, "org", 1).Allowed {
					admitted.Add(1)
				}
				if g == 0 && i%100 == 0 && k.Delete("org") {
					drops.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Positive(t, drops.Load())
	require.LessOrEqual(t, admitted.Load(), capacity*(1+drops.Load()))
	t.Logf("%d drops, %d admitted", drops.Load(), admitted.Load())
}

func TestKeyedLimitersWithoutIdle(t *testing.T) {
	k := ratekit.NewKeyed(func(int) plain { return plain{newGCRA(t0, 1, time.Second)} },
		ratekit.KeyedConfig{MaxKeys: 10})
	for i := 0; i < 10; i++ {
		k.Take(t0, i, 1)
	}
	require.Zero(t, k.Sweep(t0.Add(24*time.Hour)), "no Idle method: never swept")
	require.Equal(t, 10, k.Len())
	k.Take(t0, 10, 1)
	require.Equal(t, 10, k.Len(), "MaxKeys still evicts")
	require.Equal(t, ratekit.KeyedStats{Keys: 10, EvictedBusy: 1}, k.Stats(),
		"a limiter without Idle is never known to be idle")
}

func TestKeyedInterfaceLimiters(t *testing.T) {
	// L an interface type: Idle is found on each limiter's dynamic type.
	k := ratekit.NewKeyed(func(key string) ratekit.Limiter {
		if key == "plain" {
			return plain{newGCRA(t0, 1, time.Second)}
		}
		return newGCRA(t0, 1, time.Second)
	}, ratekit.KeyedConfig{})
	k.Take(t0, "plain", 1)
	k.Take(t0, "gcra", 1)
	require.Equal(t, 1, k.Sweep(t0.Add(time.Hour)))
	require.Equal(t, []string{"plain"}, slices.Collect(maps.Keys(maps.Collect(k.All()))))
}

func TestKeyedFactoryRefusesKeys(t *testing.T) {
	// A factory that knows only some tokens returns nil for the others:
	// they are denied for ever, nothing is stored, and each use asks again
	// (the token may have been created since).
	var asked atomic.Int64
	known := map[string]bool{"tok_ok": true}
	k := ratekit.NewKeyed(func(token string) *gcra {
		asked.Add(1)
		if !known[token] {
			return nil
		}
		return newGCRA(t0, 2, time.Second)
	}, ratekit.KeyedConfig{MaxKeys: 1})
	for range 3 {
		d := k.Take(t0, "tok_unknown", 1)
		require.False(t, d.Allowed)
		require.Equal(t, ratekit.Never, d.RetryAfter)
		require.Nil(t, k.Get("tok_unknown"))
	}
	require.EqualValues(t, 6, asked.Load(), "every use asks the factory again")
	require.Zero(t, k.Len())
	require.Equal(t, 0, k.Sweep(t0))

	require.True(t, k.Take(t0, "tok_ok", 1).Allowed)
	require.Equal(t, 1, k.Len())
	require.False(t, k.Take(t0, "tok_unknown", 1).Allowed)
	require.Equal(t, 0, k.Take(t0, "tok_ok", 1).Remaining, "tok_ok kept its state: the refusal at the cap evicted nothing")
	require.Zero(t, k.Stats().EvictedBusy)

	known["tok_new"] = true
	require.True(t, k.Take(t0, "tok_new", 1).Allowed, "a refused key is asked about again")

	// With an interface type for L, a nil interface is a refusal too.
	ki := ratekit.NewKeyed(func(string) ratekit.Limiter { return nil }, ratekit.KeyedConfig{})
	require.Equal(t, ratekit.Never, ki.Take(t0, "x", 1).RetryAfter)
	require.Zero(t, ki.Len())
}

func TestKeyedBadConfig(t *testing.T) {
	t.Run("NilFactory", func(t *testing.T) {
		k := ratekit.NewKeyed[string, *gcra](nil, ratekit.KeyedConfig{MaxKeys: 3})
		require.Equal(t, ratekit.Decision{RetryAfter: ratekit.Never}, k.Take(t0, "a", 1))
		require.Nil(t, k.Get("a"))
		require.Zero(t, k.Len())
		require.Zero(t, k.Sweep(t0))
		require.False(t, k.Delete("a"))
	})
	t.Run("ZeroKeyed", func(t *testing.T) {
		var k ratekit.Keyed[string, *gcra]
		require.Equal(t, ratekit.Decision{RetryAfter: ratekit.Never}, k.Take(t0, "a", 1))
		require.Nil(t, k.Get("a"))
		require.Zero(t, k.Len())
		require.Zero(t, k.Sweep(t0))
		require.False(t, k.Delete("a"))
		require.Empty(t, keysOf(&k))
		require.Equal(t, ratekit.KeyedStats{}, k.Stats())
		require.NoError(t, k.Close())
	})
	t.Run("NegativeMaxKeysIsNoCap", func(t *testing.T) {
		k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{MaxKeys: -5})
		for i := 0; i < 1000; i++ {
			k.Get(i)
		}
		require.Equal(t, 1000, k.Len())
	})
	t.Run("NegativeSweepIntervalIsNone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			k := ratekit.NewKeyed(func(int) *gcra { return newGCRA(time.Now(), 1, time.Second) },
				ratekit.KeyedConfig{SweepInterval: -time.Second})
			k.Get(1)
			time.Sleep(time.Hour)
			synctest.Wait()
			require.Equal(t, 1, k.Len(), "no background sweeper")
			require.NoError(t, k.Close())
		})
	})
}

func TestKeyedFactoryMayUseKeyed(t *testing.T) {
	// The factory runs with no lock held: it may use the Keyed itself.
	var k *ratekit.Keyed[string, *gcra]
	k = ratekit.NewKeyed(func(key string) *gcra {
		if key != "parent" {
			k.Get("parent")
			_ = k.Len()
		}
		return newGCRA(t0, 1, time.Second)
	}, ratekit.KeyedConfig{MaxKeys: 2})
	k.Get("child")
	require.Equal(t, 2, k.Len())
	k.Get("other")
	require.Equal(t, 2, k.Len())
}

func TestKeyedDelete(t *testing.T) {
	k := ratekit.NewKeyed(perSecond[string](1), ratekit.KeyedConfig{})
	require.True(t, k.Take(t0, "tok", 1).Allowed)
	require.False(t, k.Take(t0, "tok", 1).Allowed)
	require.True(t, k.Delete("tok"))
	require.False(t, k.Delete("tok"))
	require.Zero(t, k.Len())
	require.True(t, k.Take(t0, "tok", 1).Allowed, "a deleted key starts afresh")
	require.EqualValues(t, 1, k.Stats().Deleted)
}

func TestKeyedAll(t *testing.T) {
	k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{})
	want := map[int]*gcra{}
	for i := 0; i < 3000; i++ {
		want[i] = k.Get(i)
	}
	got := map[int]*gcra{}
	for key, l := range k.All() {
		if _, dup := got[key]; dup {
			t.Fatalf("All yielded key %d twice", key)
		}
		got[key] = l
		k.Get(key) // the loop body may use k: no lock is held
	}
	require.Equal(t, want, got)

	n := 0
	for range k.All() {
		n++
		if n == 10 {
			break
		}
	}
	require.Equal(t, 10, n)
}

// TestKeyedEvictsIdleFirst fills a Keyed to MaxKeys (8, so its one shard
// holds every key and the hand's window sees them all) and checks the order
// of eviction the Keyed doc promises.
func TestKeyedEvictsIdleFirst(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{MaxKeys: 8, Clock: mock})
	for i := 0; i < 8; i++ {
		require.True(t, k.Take(t0, i, 1).Allowed)
	}
	// At t0+2s key 5 has its unit back and is idle; the rest are used again.
	later := t0.Add(2 * time.Second)
	for i := 0; i < 8; i++ {
		if i != 5 {
			require.True(t, k.Take(later, i, 1).Allowed)
		}
	}
	require.True(t, k.Take(later, 100, 1).Allowed)
	require.Equal(t, 8, k.Len())
	require.Equal(t, ratekit.KeyedStats{Keys: 8, EvictedIdle: 1}, k.Stats())
	require.NotContains(t, keysOf(k), 5, "the idle key went first")

	// No key is idle now: the least recently used goes. That is key 100: a
	// new key counts as used long ago, and the others were used since.
	require.True(t, k.Take(later, 101, 1).Allowed)
	require.Equal(t, uint64(1), k.Stats().EvictedBusy)
	require.NotContains(t, keysOf(k), 100, "the least recently used key went")

	// Get judges idleness on the Clock: at t0+1h every key is idle.
	mock.Set(t0.Add(time.Hour))
	k.Get(102)
	require.Equal(t, uint64(2), k.Stats().EvictedIdle)
}

func keysOf[K comparable, L ratekit.Limiter](k *ratekit.Keyed[K, L]) []K {
	return slices.Collect(maps.Keys(maps.Collect(k.All())))
}

// TestKeyedFloodSparesKeysInUse floods a capped Keyed with keys used once
// each (random IPv6 addresses) while a set of keys stays in steady use: the
// flood must evict itself, not the keys in use.
func TestKeyedFloodSparesKeysInUse(t *testing.T) {
	const maxKeys, hot, flood = 2000, 100, 40_000
	k := ratekit.NewKeyed(perSecond[netip.Addr](1000), ratekit.KeyedConfig{MaxKeys: maxKeys})
	rng := rand.New(rand.NewPCG(conformance.Seed(t), 2))
	randomIP := func() netip.Addr {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(b[8:], rng.Uint64())
		return netip.AddrFrom16(b)
	}
	hotIPs := make([]netip.Addr, hot)
	hotLims := make([]*gcra, hot)
	for i := range hotIPs {
		hotIPs[i] = randomIP()
		hotLims[i] = k.Get(hotIPs[i])
	}
	now := t0
	for i := 0; i < flood; i++ {
		now = now.Add(time.Microsecond) // nobody is idle: 1000/s refills 1 unit per ms
		k.Take(now, randomIP(), 1)
		require.LessOrEqual(t, k.Len(), maxKeys)
		if i%200 == 0 {
			for _, ip := range hotIPs {
				k.Take(now, ip, 1)
			}
		}
	}
	for i, ip := range hotIPs {
		require.Same(t, hotLims[i], k.Get(ip), "key in steady use %d was evicted", i)
	}
	st := k.Stats()
	require.Equal(t, maxKeys, st.Keys)
	require.EqualValues(t, hot+flood-maxKeys, st.EvictedBusy+st.EvictedIdle)
	t.Logf("%+v", st)
}

func TestKeyedMaxKeysUnderConcurrentInserts(t *testing.T) {
	// More goroutines than MaxKeys, all inserting new keys: the count is
	// exact, so Len never exceeds the cap, and nothing deadlocks when every
	// counted key is an insert still in progress.
	for _, maxKeys := range []int{1, 3, 64, 1000} {
		k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{MaxKeys: maxKeys})
		var wg sync.WaitGroup
		var over atomic.Int64
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 2000; i++ {
					k.Take(t0, g<<20|i, 1)
					if k.Len() > maxKeys {
						over.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		require.Zero(t, over.Load(), "MaxKeys %d", maxKeys)
		require.Equal(t, maxKeys, k.Len())
		require.Len(t, keysOf(k), maxKeys)
	}
}

func TestKeyedFirstUseRaceAtTheCapKeepsOneLimiter(t *testing.T) {
	// Goroutines racing on a new key's first use when Keyed is at MaxKeys
	// must not evict each other's limiter for that key: the first insert
	// wins and the others use it, so the key admits its limit once, and no
	// busy limiter is evicted. (With MaxKeys 1 this failed: each racer
	// evicted the key and installed its own fresh limiter.)
	for _, maxKeys := range []int{1, 2} {
		for rep := 0; rep < 50; rep++ {
			k := ratekit.NewKeyed(perSecond[string](10), ratekit.KeyedConfig{MaxKeys: maxKeys})
			for i := 1; i < maxKeys; i++ {
				k.Take(t0, fmt.Sprint("other-", i), 1) // fill all but one place
			}
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 11; i++ {
						if k.Take(t0, "org-1", 1).Allowed {
							admitted.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			require.EqualValues(t, 10, admitted.Load(), "MaxKeys %d rep %d", maxKeys, rep)
			require.LessOrEqual(t, k.Len(), maxKeys)
			if maxKeys == 1 {
				require.Zero(t, k.Stats().EvictedBusy, "rep %d: the key was evicted by its own racers", rep)
			}
		}
	}
}

// TestKeyedStress runs Take, Get, Sweep, Delete, All and MaxKeys eviction
// together, for the race detector and for the invariants that must hold
// under any interleaving.
func TestKeyedStress(t *testing.T) {
	const maxKeys, keys, capacity = 300, 1000, 4
	var made atomic.Int64
	k := ratekit.NewKeyed(func(int) *gcra {
		made.Add(1)
		return newGCRA(t0, capacity, time.Hour)
	}, ratekit.KeyedConfig{MaxKeys: maxKeys})

	var admitted, over atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for i := 0; i < 20_000; i++ {
				key := rng.IntN(keys)
				if rng.IntN(8) == 0 {
					key = rng.IntN(8) // a few hot keys
				}
				// All Takes are at t0 (nothing refills), so every limiter
				// admits at most capacity units in its life.
				var d ratekit.Decision
				if g%2 == 0 {
					d = k.Take(t0, key, 1)
				} else {
					d = k.Get(key).Take(t0, 1)
				}
				if d.Allowed {
					admitted.Add(1)
				}
				if k.Len() > maxKeys {
					over.Add(1)
				}
			}
		}()
	}
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		rng := rand.New(rand.NewPCG(9, 9))
		for {
			select {
			case <-stop:
				return
			default:
			}
			switch rng.IntN(3) {
			case 0:
				// At t0 only limiters never taken from are idle, so sweeps
				// race with the first Take of a new key.
				k.Sweep(t0)
			case 1:
				k.Delete(rng.IntN(keys))
			case 2:
				seen := map[int]bool{}
				for key := range k.All() {
					if seen[key] {
						panic(fmt.Sprintf("All yielded key %d twice", key))
					}
					seen[key] = true
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()

	require.Zero(t, over.Load(), "Len exceeded MaxKeys")
	require.Equal(t, k.Len(), len(keysOf(k)))
	st := k.Stats()
	dropped := st.Swept + st.EvictedIdle + st.EvictedBusy + st.Deleted
	require.LessOrEqual(t, uint64(st.Keys)+dropped, uint64(made.Load()), "every key counted was made")
	// One window's worth per limiter: per key, at most one more per drop.
	require.LessOrEqual(t, admitted.Load(), int64(capacity)*(int64(st.Keys)+int64(dropped)))
	t.Logf("%+v, made %d, admitted %d", st, made.Load(), admitted.Load())
}

func TestKeyedAllocations(t *testing.T) {
	now := t0
	t.Run("String", func(t *testing.T) {
		k := ratekit.NewKeyed(perSecond[string](1_000_000), ratekit.KeyedConfig{})
		keys := []string{"org_1", "org_2", "tok_3"}
		for _, key := range keys {
			k.Get(key)
		}
		require.Zero(t, testing.AllocsPerRun(200, func() {
			for _, key := range keys {
				k.Take(now, key, 1)
				k.Get(key).Peek(now, 1)
			}
		}))
	})
	t.Run("MaxKeysAddr", func(t *testing.T) {
		k := ratekit.NewKeyed(perSecond[netip.Addr](1_000_000), ratekit.KeyedConfig{MaxKeys: 10})
		ip := netip.MustParseAddr("2001:db8::1")
		k.Get(ip)
		require.Zero(t, testing.AllocsPerRun(200, func() { k.Take(now, ip, 1) }))
	})
	t.Run("Struct", func(t *testing.T) {
		type orgTier struct {
			org  string
			tier int
		}
		k := ratekit.NewKeyed(perSecond[orgTier](1_000_000), ratekit.KeyedConfig{MaxKeys: 100})
		key := orgTier{"acme", 2}
		k.Get(key)
		require.Zero(t, testing.AllocsPerRun(200, func() { k.Take(now, key, 1) }))
	})
	t.Run("NewKey", func(t *testing.T) {
		// A new key costs its limiter's allocation; tables are rebuilt now
		// and then, which adds a small fraction of an allocation per key.
		k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{})
		for i := 0; i < 50_000; i++ {
			k.Get(i)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const n = 10_000
		for i := 50_000; i < 50_000+n; i++ {
			k.Get(i)
		}
		runtime.ReadMemStats(&after)
		perKey := float64(after.Mallocs-before.Mallocs) / n
		t.Logf("%.3f allocations per new key", perKey)
		require.Less(t, perKey, 1.1)
	})
}

// TestKeyedMemoryPerKey measures the heap a key costs: its limiter (48
// bytes for gcra, a real token bucket's size) and its share of the table.
func TestKeyedMemoryPerKey(t *testing.T) {
	const n = 100_000
	measure := func(fill func()) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fill()
		runtime.GC()
		runtime.ReadMemStats(&after)
		return float64(after.HeapAlloc-before.HeapAlloc) / n
	}
	var kInt *ratekit.Keyed[uint64, *gcra]
	perInt := measure(func() {
		kInt = ratekit.NewKeyed(perSecond[uint64](10), ratekit.KeyedConfig{})
		for i := uint64(0); i < n; i++ {
			kInt.Get(i)
		}
	})
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tok_%012d", i)
	}
	var kStr *ratekit.Keyed[string, *gcra]
	perStr := measure(func() {
		kStr = ratekit.NewKeyed(perSecond[string](10), ratekit.KeyedConfig{})
		for _, key := range keys {
			kStr.Get(key)
		}
	})
	runtime.KeepAlive(kInt)
	runtime.KeepAlive(kStr)
	t.Logf("uint64 keys: %.0f B/key (%.0f beyond the 48-byte limiter)", perInt, perInt-48)
	t.Logf("string keys: %.0f B/key (%.0f beyond the limiter, key bytes not counted)", perStr, perStr-48)
	require.Less(t, perInt, 48+100.0, "table share for an 8-byte key")
	require.Less(t, perStr, 48+120.0, "table share for a 16-byte string header")
}

func TestKeyedBackgroundSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // fake time, inside the bubble
		k := ratekit.NewKeyed(func(int) *gcra { return newGCRA(start, 1, time.Minute) },
			ratekit.KeyedConfig{SweepInterval: 10 * time.Minute})
		defer k.Close()
		for i := 0; i < 1000; i++ {
			k.Take(start, i, 1)
		}
		time.Sleep(9*time.Minute + 30*time.Second)
		k.Take(time.Now(), 7, 1) // key 7 is busy at the first sweep, until 10m30s
		time.Sleep(30 * time.Second)
		synctest.Wait() // the sweeper has swept and waits for its next tick
		require.Equal(t, 1, k.Len(), "the first sweep dropped every idle key")
		require.EqualValues(t, 999, k.Stats().Swept)

		time.Sleep(10 * time.Minute)
		synctest.Wait()
		require.Zero(t, k.Len(), "the second sweep dropped key 7")

		require.NoError(t, k.Close())
		require.NoError(t, k.Close(), "Close is idempotent")
		k.Take(time.Now(), 1, 1)
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Equal(t, 1, k.Len(), "no sweeping after Close")
	})
}

func TestKeyedSweeperOnMockClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mock := clock.NewMock()
		mock.Set(t0)
		// An interval below MinSweepInterval is raised to it.
		k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{SweepInterval: time.Nanosecond, Clock: mock})
		defer k.Close()
		k.Take(t0, 1, 1)
		mock.Add(ratekit.MinSweepInterval / 2)
		synctest.Wait()
		require.Equal(t, 1, k.Len(), "no sweep before MinSweepInterval")
		mock.Add(ratekit.MinSweepInterval / 2)
		synctest.Wait()
		require.Zero(t, k.Len(), "swept at MinSweepInterval on the mock clock")
	})
}

func TestKeyedUnreachableStopsSweeper(t *testing.T) {
	// A Keyed dropped without Close must not leak its sweeper goroutine.
	// The mock clock never ticks, so the sweeper only waits.
	before := runtime.NumGoroutine()
	func() {
		k := ratekit.NewKeyed(perSecond[int](1), ratekit.KeyedConfig{SweepInterval: time.Minute, Clock: clock.NewMock()})
		k.Get(1)
	}()
	for i := 0; i < 1000 && runtime.NumGoroutine() > before; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "the sweeper goroutine outlived its Keyed")
}

// FuzzKeyed drives a Keyed and the reference model with the same operations
// on 16 keys and requires the same decisions and the same keys. With MaxKeys
// set, each eviction the Keyed makes is checked (only when a new key arrives
// at the cap, exactly one key, never the new one, an idle one if any is
// idle) and mirrored in the model.
func FuzzKeyed(f *testing.F) {
	f.Add(uint8(0), []byte{0, 1, 2, 8, 1, 0, 5, 0, 200, 6, 0, 0})
	f.Add(uint8(3), []byte{0, 1, 0, 8, 1, 0, 16, 1, 0, 24, 1, 0, 32, 1, 9, 4, 2, 7, 5, 0, 255})
	f.Add(uint8(1), []byte{4, 1, 0, 12, 3, 1, 7, 0, 100, 5, 0, 0, 20, 1, 3})
	f.Fuzz(func(t *testing.T, maxKeys uint8, ops []byte) {
		maxKeys %= 10
		factory := func(key uint8) *gcra { return newGCRA(t0, 1+int(key%4), time.Second) }
		now := t0
		// The eviction of Get judges idleness at the Clock's time, which
		// must be now. (clock.Mock.Set sleeps a millisecond of real time.)
		clk := nowClock{clock.NewMock(), &now}
		k := ratekit.NewKeyed(factory, ratekit.KeyedConfig{MaxKeys: int(maxKeys), Clock: clk})
		m := model.NewKeyed(factory)
		steps := []time.Duration{0, time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond, time.Second, time.Minute}
		for step := 0; len(ops) >= 3; step++ {
			op, key, arg := ops[0]&7, ops[0]>>3&15, ops[1]
			now = now.Add(steps[int(ops[2])%len(steps)])
			ops = ops[3:]
			before := sortedKeys(k)
			switch op {
			case 0, 1, 2, 3, 4: // Take (4: through Get)
				n := int(arg%5) - 1 // -1..3
				present := m.Has(key)
				var d ratekit.Decision
				if op == 4 {
					d = k.Get(key).Take(now, n)
				} else {
					d = k.Take(now, key, n)
				}
				after := sortedKeys(k)
				gone := without(before, after)
				switch {
				case !slices.Contains(after, key):
					t.Fatalf("step %d: Take of key %d left it absent", step, key)
				case present && !slices.Equal(before, after):
					t.Fatalf("step %d: a present key's Take changed the keys from %v to %v", step, before, after)
				case !present && (maxKeys == 0 || len(before) < int(maxKeys)) && len(gone) > 0:
					t.Fatalf("step %d: evicted %v below MaxKeys %d", step, gone, maxKeys)
				case !present && maxKeys > 0 && len(before) == int(maxKeys):
					if len(gone) != 1 {
						t.Fatalf("step %d: evicted %v for a new key at MaxKeys %d; want one", step, gone, maxKeys)
					}
					if !m.Idle(gone[0], now) {
						for _, other := range before {
							if m.Idle(other, now) {
								t.Fatalf("step %d: evicted busy key %d while key %d was idle", step, gone[0], other)
							}
						}
					}
					m.Drop(gone[0])
				}
				if want := m.Take(now, key, n); d != want {
					t.Fatalf("step %d: Take(key %d, n %d) = %v; model %v", step, key, n, d, want)
				}
			case 5:
				if got, want := k.Sweep(now), m.Sweep(now); got != want {
					t.Fatalf("step %d: Sweep dropped %d; model %d", step, got, want)
				}
			case 6:
				if got, want := k.Delete(key), m.Drop(key); got != want {
					t.Fatalf("step %d: Delete(%d) = %v; model %v", step, key, got, want)
				}
			case 7:
				// Just time passing.
			}
			keys := m.Keys()
			slices.Sort(keys)
			if got := sortedKeys(k); k.Len() != len(got) || !slices.Equal(got, keys) {
				t.Fatalf("step %d: Len %d, keys %v; model %v", step, k.Len(), got, keys)
			}
		}
	})
}

// nowClock is a clock.Clock whose Now is *now.
type nowClock struct {
	clock.Clock
	now *time.Time
}

func (c nowClock) Now() time.Time { return *c.now }

// sortedKeys returns k's keys in order.
func sortedKeys(k *ratekit.Keyed[uint8, *gcra]) []uint8 {
	var keys []uint8
	for key := range k.All() {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// without returns the elements of before that are not in after.
func without[K comparable](before, after []K) []K {
	var gone []K
	for _, x := range before {
		if !slices.Contains(after, x) {
			gone = append(gone, x)
		}
	}
	return gone
}
