package ratekit

import (
	"hash/maphash"
	"iter"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/benbjohnson/clock"
)

// KeyedConfig configures a Keyed. The zero value is valid: no cap on the
// number of keys, no background sweeping, the real clock. NewKeyed returns
// no error; the bad values below are corrected as documented.
type KeyedConfig struct {
	// MaxKeys bounds how many keys (and so limiters) a Keyed holds. When a
	// new key arrives at the cap, one key is evicted first (see Keyed for
	// which, and what that does to decisions). 0 means no cap; a negative
	// value is treated as 0.
	MaxKeys int

	// SweepInterval, if positive, starts a goroutine that calls Sweep with
	// the Clock's time every SweepInterval until Close. Values below
	// MinSweepInterval are raised to it. 0 or negative: no background
	// sweeping; call Sweep yourself, or rely on MaxKeys.
	SweepInterval time.Duration

	// Clock is read by the background sweeper, and by Get when a new key
	// arrives at MaxKeys and eviction must judge which keys are idle (Take
	// uses the time passed to it instead). nil: the real clock.
	Clock clock.Clock
}

// MinSweepInterval is the shortest KeyedConfig.SweepInterval. A sweep visits
// every key; sweeping more often than this burns CPU for nothing, since
// limiters stay busy for at least their shortest window.
const MinSweepInterval = time.Second

// Keyed is a set of limiters, one per key (an org, a token, an IP address),
// each made by a factory on the key's first use. Make one with NewKeyed. It
// is safe for concurrent use. The zero Keyed has no factory: it holds no
// keys, its Take denies with RetryAfter Never, and its Get returns the zero
// L.
//
// # Speed and memory
//
// Get and Take of a key already present take no lock and allocate nothing
// (Take has one amortized exception, in its doc):
// a hash of the key, an atomic load of a table pointer and a short linear
// probe over slots that hold the key and the limiter inline, then the
// limiter's own lock-free Take. Readers share no counter and no lock, so
// they scale with cores. A new key costs its limiter's allocation, the lock
// of one of up to 256 shards, and a slot. Tables are 1/2 to 3/4 full and
// grow by 4/3 or 3/2, so a key costs about 1.6 slots besides its limiter,
// and the growth allocations come to a small fraction of one per key. Make
// the limiters small too: a token bucket from tokenbucket.New is 32 bytes
// (limiters of equal Configs share their parameters). bench/RESULTS.md has
// the measured bytes per key (BenchmarkKeyedMemory).
//
// With more keys than the caches hold, a Take of a present key is bound by
// memory latency, and the slot is laid out so that it costs one cache miss
// where it can. When L is a tokenbucket, fixedwindow or slidingwindow
// Counter pointer (the limiters whose state is one word) and K is a string
// or a type whose == reads no memory outside the value (integers,
// netip.Addr, structs and arrays of them), the slot also holds the key's
// state, and a string key's bytes when it has at most 16: Take compares the
// key and decides in the slot, without touching the limiter. The state is
// the limiter's own, moved into the slot when the key is inserted (Get's
// limiter and Take act on one state) and moved again, atomically, when a
// table is rebuilt or the key dropped; a limiter reconfigured or restored
// through Get takes its state out of the slot until the next rebuild, and
// Take then goes through the limiter. That slot is 72 bytes for a string
// key (8 for the hash and state bits, 16 for the key's header, 8 for the
// limiter pointer, 16 for its bytes, 24 for the state: parameters pointer,
// state word, auxiliary word), 48 for an 8-byte key; otherwise it holds
// the hash, the key and the limiter (32 bytes for a string key and a
// pointer). For
// other keys and limiters a Take reads the slot, then the limiter and, for
// a key that is or holds a string or an interface, the key's bytes: two
// dependent misses. BenchmarkKeyedMisses times each access.
//
// A state is in one slot at a time: a factory that returns one limiter for
// several keys (a shared limiter for unknown keys, say) has it moved into
// the slot of whichever of them was inserted or rebuilt last, and the
// others' Takes go through the limiter, one more miss each (they do not
// rebuild their tables for it: see Keyed.outside). That is correct but
// slower; return a ratekit.Limiter interface from such a factory (L an
// interface type keeps the plain slot).
//
// While a live key's state is in its slot, its limiter points into the
// table: a limiter kept from Get keeps that shard's table allocated after
// the Keyed is dropped, until the limiter is (dropping its key first, by
// Delete or Sweep, moves the state out). So dropping such a key (Sweep,
// Delete, an eviction) allocates one 64-byte block for its state, whether
// or not anyone kept its limiter.
//
// Keys are hashed with a random per-Keyed seed (hash/maphash), so a flood
// of chosen keys cannot be aimed at one shard or one probe sequence.
//
// # Idle keys and Sweep
//
// A limiter is idle when its state equals a fresh limiter's, so that
// dropping it and making a new one on the key's next use changes no
// decision. The ratekit algorithm limiters report this with a method
// Idle(now time.Time) bool. Sweep drops exactly the limiters whose Idle(now)
// holds; limiters without that method are never dropped by Sweep (MaxKeys
// still evicts them). Idle is called with a shard's lock held, so it must
// not use the Keyed. The background sweeper (KeyedConfig.SweepInterval)
// sweeps incrementally: it holds one shard's lock for at most 256 slots at a
// time and yields between batches, so Takes of present keys never wait for
// it, and a new key waits at most for one batch.
//
// # MaxKeys and eviction
//
// With MaxKeys set, Len never exceeds it, however many goroutines insert new
// keys at once (random IPv6 addresses, say): a new key reserves its place in
// an exact atomic count before it is inserted, and evicts a key first if the
// count is at the cap. The evicted key comes from the new key's shard, which
// keeps each shard at its share of MaxKeys (there is a shard per 64 keys of
// MaxKeys, up to 256). Of the next 16 keys at the shard's eviction cursor,
// it is
//   - the first that is idle (at Take's time, or the Clock's for Get), which
//     changes no decision;
//   - else the least recently used of the 16, which approximates LRU.
//
// Recency is coarse: Get and Take stamp a key with its shard's eviction
// epoch, which advances every eighth of the shard's keys in evictions, and
// write only when the stamp changes, so a key in steady use costs no write
// per use. A new key counts as last used 64 epochs (8 turnovers of its
// shard) ago, so keys used only once, like a flood of random addresses,
// evict each other before any key used again since. A key in steady use
// outlives a flood if it is used once per 8 turnovers (about 8 x MaxKeys new
// keys), unless keys in steady use fill most of MaxKeys. With MaxKeys at most
// 64 the 16 keys are all the keys. Keep MaxKeys well above the number of keys
// busy at once, and sweep, so that eviction finds idle keys.
//
// Evicting a key that is not idle changes decisions: its state is lost, and
// the fresh limiter made on its next use admits a full window's worth (a
// token bucket's Burst, a window's Limit) at once. So each such eviction
// lets its key admit at most one window's worth more than its limit, around
// the time of the eviction. Stats counts them (EvictedBusy): a rising count
// says MaxKeys is too small.
//
// # A limiter in use when its key goes
//
// Lookups take no lock, so a goroutine may find a key's limiter just before
// the key is evicted, swept or deleted, and call its Take just after. That
// Take is decided by the dropped limiter (correctly, for that limiter), and
// the key's next limiter does not see it. Precisely:
//   - Sweep checks Idle twice, before and after it unlinks a limiter, and
//     puts the limiter back if a Take reached it in between. A Take lands on
//     a swept limiter only if its lookup preceded the unlink and its Take
//     followed the second check.
//   - Keyed.Take looks up and takes in one call (and so does Get with its
//     result used at once), so a dropped limiter receives at most one Take
//     from each goroutine that was looking the key up when it went. Those
//     Takes draw on the dropped limiter's own capacity, which, with what it
//     admitted before, is at most one window's worth (plus what the key's
//     own rate refills while the calls are in flight). So any one drop, by
//     Sweep, eviction or Delete, lets a key admit at most one window's worth
//     more than its limit; a drop by Sweep, of an idle limiter, only through
//     Takes racing with it.
//   - A limiter kept from Get is not Keyed's to revoke: while a caller keeps
//     using it after its key went, the key is limited by two limiters, each
//     enforcing the limit, so it may admit up to twice its rate. Call Get
//     (or Take) for each request rather than keeping its result.
//
// # Keys
//
// K is any comparable type: a string, an integer, a netip.Addr, a struct of
// them (an org and a tier). As with a Go map, a key not equal to itself (a
// NaN) is never found again, so each use makes and inserts a new limiter,
// and an interface key holding an uncomparable value panics.
type Keyed[K comparable, L Limiter] struct {
	// Read on every lookup, written only at construction (tabs' elements
	// change on rebuilds, rarely). Arrays rather than slices: a lookup loads
	// no slice header and needs no bounds check, and the zero Keyed works.
	tabs  [maxShards]atomic.Pointer[table[K, L]]
	seed  maphash.Seed
	smask uint64 // key hash & smask is the shard index; smask+1 shards are used
	stamp bool   // MaxKeys set: stamp keys with their last use

	shards [maxShards]shard

	newLimiter func(K) L
	lay        *layout[K, L] // the tables' slots (keyed_slot.go)
	max        int64
	idle       idleMode
	clock      clock.Clock
	sweeper    *sweeperControl

	_ [64]byte // keep the fields above off count's cache line

	// count is the number of keys, including those reserved by inserts in
	// progress. Only inserts and removals write it.
	count atomic.Int64

	swept, evictedIdle, evictedBusy, deleted atomic.Uint64
}

// idleMode says how Keyed learns whether a limiter is idle.
type idleMode uint8

const (
	idleAsk    idleMode = iota // L is an interface type: assert on each limiter
	idleAlways                 // L's method set has Idle
	idleNever                  // L's method set has no Idle
)

// idler is the method by which a limiter says that dropping it changes no
// decision. Every ratekit algorithm limiter has it.
type idler interface {
	Idle(now time.Time) bool
}

// maxShards bounds the shards of a Keyed: 256 shards of 64 bytes and their
// table pointers, 18 KiB in every Keyed, make insert contention negligible
// on any machine a single process runs on.
const maxShards = 256

// evictWindow is how many keys eviction looks at (see Keyed.evictFrom).
const evictWindow = 16

// NewKeyed returns a Keyed that makes the limiter of each key with
// newLimiter(key) on the key's first use. The factory receives the key, so
// per-key configuration is natural: a token's user-defined limit looked up
// by the token, test keys at a tenth of live keys' limits.
//
// newLimiter may be called more than once for a key when goroutines race on
// its first use; one result is kept and the others are dropped unused, so it
// must be safe for concurrent use and should not have side effects beyond
// making the limiter. It is called without any lock of k held, so it may be
// slow (a database lookup of the key's limits) or use k itself.
//
// newLimiter may refuse a key by returning nil (a nil pointer, or a nil
// interface if L is an interface type): an API token it does not know,
// say. Nothing is stored for the key then: Take denies with RetryAfter
// Never, Get returns that nil, and the key's next use asks newLimiter
// again. A nil newLimiter makes a Keyed with no keys: Take denies every
// request with RetryAfter Never and Get returns the zero L.
//
// If cfg.SweepInterval is positive, NewKeyed starts the background sweeper;
// Close stops it (and so does the garbage collector, once k is
// unreachable).
func NewKeyed[K comparable, L Limiter](newLimiter func(K) L, cfg KeyedConfig) *Keyed[K, L] {
	k := &Keyed[K, L]{
		seed:       maphash.MakeSeed(),
		newLimiter: newLimiter,
		max:        int64(max(cfg.MaxKeys, 0)),
		clock:      cfg.Clock,
	}
	if k.clock == nil {
		k.clock = clock.New()
	}
	k.stamp = k.max > 0
	k.lay = newLayout[K, L]()

	// Shards: 256, or fewer when MaxKeys is small, one per 64 keys, so that
	// the 16 keys eviction looks at are a fair sample of a shard of some
	// size (with MaxKeys <= 64, every key of the one shard).
	n := maxShards
	if k.max > 0 {
		n = 1
		for n < maxShards && int64(n)*64 < k.max {
			n <<= 1
		}
	}
	k.smask = uint64(n - 1)

	var zero L
	switch _, ok := any(zero).(idler); {
	case any(zero) == nil:
		k.idle = idleAsk // an interface type: its dynamic types may differ
	case ok:
		k.idle = idleAlways
	default:
		k.idle = idleNever
	}

	if cfg.SweepInterval > 0 {
		k.startSweeper(max(cfg.SweepInterval, MinSweepInterval))
	}
	return k
}

// Get returns the limiter for key, making it with the factory if key has
// none. Getting a present key takes no lock and allocates nothing.
//
// Use the result at once (k.Get(org).Take(now, 1), or in a TakeAll over
// several keys' limiters) and do not keep it: a kept limiter whose key has
// been swept or evicted no longer speaks for the key (see Keyed).
func (k *Keyed[K, L]) Get(key K) L {
	h := maphash.Comparable(k.seed, key)
	if t := k.tabs[h&k.smask%maxShards].Load(); t != nil {
		if s := t.find(h, key, k.stamp); s != nil {
			return s.lim
		}
	}
	l, _ := k.insert(h, key, time.Time{}, false)
	return l
}

// Take takes n units at now from key's limiter, making the limiter if key has
// none, and returns its Decision. It is k.Get(key).Take(now, n), except that
// an eviction it causes judges idleness at now rather than on the Clock, and
// that where the slot holds the key's state (see Speed and memory) it
// decides there, one cache miss fewer than the limiter's own Take. For a
// present key it never reads a clock, takes no lock and allocates nothing,
// with one exception: after a Reconfigure, UnmarshalBinary or restore
// through a limiter from Get has moved key states out of their slots, one
// of every max(16, an eighth of the shard's keys) Takes that find a state
// out of its slot rebuilds the shard's table to bring the states back, if
// it gets the shard's lock without waiting; that Take allocates the new
// table.
func (k *Keyed[K, L]) Take(now time.Time, key K, n int) Decision {
	h := maphash.Comparable(k.seed, key)
	if t := k.tabs[h&k.smask%maxShards].Load(); t != nil {
		if s := t.find(h, key, k.stamp); s != nil {
			if t.blk != 0 {
				// The state in the slot (keyed_slot.go): decide there, or,
				// if its block is sealed, on the limiter.
				if d, ok := t.lay.sl.TakeSlot(t.blockOf(s), now, n); ok {
					return d
				}
				k.outside(h&k.smask%maxShards, t, s)
			}
			return s.lim.Take(now, n)
		}
	}
	if k.newLimiter == nil {
		return Decision{RetryAfter: Never}
	}
	l, ok := k.insert(h, key, now, true)
	if !ok {
		return Decision{RetryAfter: Never}
	}
	return l.Take(now, n)
}

// insert is the slow path of Get and Take: key was not found without the
// lock. It returns key's limiter, or what the factory returned and false if
// that was nil (see NewKeyed).
func (k *Keyed[K, L]) insert(h uint64, key K, now time.Time, haveNow bool) (L, bool) {
	if k.newLimiter == nil {
		var zero L
		return zero, false
	}
	// Make the limiter, then reserve a place, both before taking the shard's
	// lock: the factory is the caller's code and eviction locks other shards,
	// and neither may run under this lock (no lock is ever held while
	// another is taken).
	l := k.newLimiter(key)
	if isNil(l) {
		return l, false
	}
	i := h & k.smask % maxShards
	if old, found := k.reserve(i, h, key, now, haveNow); found {
		return old, true
	}

	sh := &k.shards[i]
	sh.mu.Lock()
	t := k.tabs[i].Load()
	if t != nil {
		if s := t.find(h, key, false); s != nil {
			// Another goroutine inserted key since our lookup: use its limiter.
			old := s.lim
			sh.mu.Unlock()
			k.count.Add(-1)
			return old, true
		}
	}
	if t == nil || sh.full(int(t.size)) {
		t = k.rebuild(i, sh, t, int(sh.live.Load())+1)
	}
	t.put(withStamp(h&metaHash|metaLive, sh.epoch-newKeyAge), key, l)
	sh.used++
	sh.live.Add(1)
	sh.mu.Unlock()
	return l, true
}

// isNil reports whether l is a nil pointer, or a nil interface, map, slice,
// func or channel: a factory's refusal, or a nil member of a composite (see
// All). Only new keys, and composites, pay for the reflection.
func isNil[L any](l L) bool {
	v := reflect.ValueOf(any(l))
	switch v.Kind() {
	case reflect.Invalid:
		return true // a nil interface
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

// rebuild replaces shard i's table t with a table sized for live keys,
// holding t's live slots, and returns it (nil when live is 0). The caller
// holds sh.mu.
func (k *Keyed[K, L]) rebuild(i uint64, sh *shard, t *table[K, L], live int) *table[K, L] {
	nt := newTable(k.lay, t, tableSize(live))
	sh.used = int(sh.live.Load())
	sh.deleted = 0
	sh.outside.Store(0)
	if nt != nil {
		nt.epoch.Store(sh.epoch)
	}
	k.tabs[i].Store(nt) // publishes nt; readers of t finish on the old copy
	return nt
}

// reserve counts one more key for shard i, first evicting keys until the
// count is below MaxKeys. The count never exceeds MaxKeys: a place is taken
// by a CAS from below the cap, never by an unconditional add.
//
// Eviction never picks key itself: when goroutines race on a new key's first
// use at the cap, the one that inserts it first must not have its limiter
// (and the Takes it admitted) evicted by the others, which would otherwise
// each install a fresh limiter and admit a window's worth more apiece. So at
// the cap reserve looks key up before each eviction, and if another
// goroutine has inserted it, returns that limiter and found, reserving
// nothing.
func (k *Keyed[K, L]) reserve(i, h uint64, key K, now time.Time, haveNow bool) (_ L, found bool) {
	if k.max == 0 {
		k.count.Add(1)
		return
	}
	for {
		c := k.count.Load()
		if c < k.max {
			if k.count.CompareAndSwap(c, c+1) {
				return
			}
			continue
		}
		if t := k.tabs[i].Load(); t != nil {
			if s := t.find(h, key, false); s != nil {
				return s.lim, true
			}
		}
		if !haveNow {
			now, haveNow = k.clock.Now(), true
		}
		if !k.evictOne(i, h, key, now) {
			// Every counted key is key itself, about to be found above, or a
			// reservation whose insert is in progress (MaxKeys is below the
			// number of goroutines inserting at once): let them finish, and
			// evict one of them.
			runtime.Gosched()
		}
	}
}

// evictOne evicts one key other than key (whose hash is h), from shard i if
// it has one (so that at the cap each shard keeps its size: an insert into it
// evicts from it), else from the next shard that has, and reports whether it
// found one.
func (k *Keyed[K, L]) evictOne(i, h uint64, key K, now time.Time) bool {
	for j := uint64(0); j <= k.smask; j++ {
		s := (i + j) & k.smask
		if k.shards[s].live.Load() == 0 {
			continue
		}
		if k.evictFrom(s, h, key, now) {
			return true
		}
	}
	return false
}

// evictFrom evicts one key of shard i other than key (whose hash is h; see
// Keyed) and reports whether the shard had one.
//
// It samples: it looks at the next evictWindow live keys from the shard's
// cursor and evicts the first idle one or, if none is idle, the least
// recently used of them. Recency is counted in eviction epochs: a shard's
// epoch advances every live/8 of its evictions, so 8 epochs are about one
// turnover of its keys. Readers stamp a key with the current epoch when they
// use it (see table.find), and a key's age is the epoch minus its stamp,
// modulo 256. So that an age never wraps, the sampler restamps a key older
// than maxAge (16 turnovers) as exactly maxAge old: the cursor moves at
// least one key per eviction, so it sees every key at least once per
// turnover, long before an age could wrap (32 turnovers). A new key is
// stamped newKeyAge (8 turnovers) old: keys used once, such as a flood of
// random addresses, evict each other before any key used again since its
// insertion, unless that was 8 turnovers ago.
//
// Nothing here depends on where keys sit in the table, so rebuilds, which
// move every key, do not disturb it.
func (k *Keyed[K, L]) evictFrom(i, h uint64, key K, now time.Time) bool {
	sh := &k.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock() // Idle is the caller's code: unlock even if it panics
	t := k.tabs[i].Load()
	live := int(sh.live.Load())
	if t == nil || live == 0 {
		return false
	}
	victim, oldest, oldestAge := -1, -1, uint32(0)
	j := uint64(sh.cursor) % t.size
	for step, seen := uint64(0), 0; step < t.size && seen < evictWindow; step++ {
		si := j
		if j++; j == t.size {
			j = 0
		}
		s := t.at(si)
		m := s.meta.Load()
		if m&metaState != metaLive {
			continue
		}
		if m&metaHash == h&metaHash && s.key == key {
			continue // the key being inserted: never its own victim
		}
		seen++
		if k.isIdle(s.lim, now) {
			victim = int(si)
			break
		}
		age := (sh.epoch - stampOf(m)) & 0xff
		if age > maxAge {
			// Keep the age from wrapping. A failed CAS means a reader has
			// just stamped it: it is young, leave it.
			if s.meta.CompareAndSwap(m, withStamp(m, sh.epoch-maxAge)) {
				age = maxAge
			}
		}
		if oldest < 0 || age > oldestAge {
			oldest, oldestAge = int(si), age
		}
	}
	sh.cursor = int(j)
	idle := victim >= 0
	if !idle {
		if oldest < 0 {
			return false // the shard's only live key is key
		}
		victim = oldest
	}
	s := t.at(uint64(victim))
	k.unlink(sh, t, s)
	// Count it idle only if it still is once unlinked: a Take that reached it
	// in between made this eviction change a decision after all.
	if idle && k.isIdle(s.lim, now) {
		k.evictedIdle.Add(1)
	} else {
		k.evictedBusy.Add(1)
	}
	if sh.evictions++; sh.evictions >= max(live/8, 1) {
		sh.evictions = 0
		sh.epoch = (sh.epoch + 1) & 0xff
		t.epoch.Store(sh.epoch)
	}
	if sh.compactable() {
		k.rebuild(i, sh, t, int(sh.live.Load()))
	}
	return true
}

// maxAge and newKeyAge are ages in eviction epochs (see Keyed.evictFrom).
const (
	maxAge    = 128
	newKeyAge = 64
)

// unlink turns the live slot s of t into a tombstone, moves its limiter's
// state out of the table (keyed_slot.go) and uncounts it. The caller holds
// the shard's mutex.
func (k *Keyed[K, L]) unlink(sh *shard, t *table[K, L], s *slot[K, L]) {
	s.meta.Store(s.meta.Load()&metaHash | metaDeleted)
	t.moveOut(s)
	sh.deleted++
	sh.live.Add(-1)
	k.count.Add(-1)
}

// isIdle reports whether l says it is idle at now.
func (k *Keyed[K, L]) isIdle(l L, now time.Time) bool {
	if k.idle == idleNever {
		return false
	}
	// L is a pointer type in practice: converting it to an interface does
	// not allocate, and the assertion is an itab cache hit.
	if il, ok := any(l).(idler); ok {
		return il.Idle(now)
	}
	return false
}

// Delete drops key's limiter, if it has one, and reports whether it had.
// The key's next use makes a fresh limiter: unless the limiter was idle,
// this changes decisions as an eviction does (see Keyed).
func (k *Keyed[K, L]) Delete(key K) bool {
	h := maphash.Comparable(k.seed, key)
	i := h & k.smask % maxShards
	sh := &k.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := k.tabs[i].Load()
	if t == nil {
		return false
	}
	s := t.find(h, key, false)
	if s == nil {
		return false
	}
	k.unlink(sh, t, s)
	k.deleted.Add(1)
	if sh.compactable() {
		k.rebuild(i, sh, t, int(sh.live.Load()))
	}
	return true
}

// Len returns the number of keys, counting inserts in progress. With MaxKeys
// set it never exceeds MaxKeys.
func (k *Keyed[K, L]) Len() int { return int(k.count.Load()) }

// sweepBatch is how many slots a sweep visits per hold of a shard's lock:
// at a few nanoseconds to a memory miss per slot, a few tens of
// microseconds, the most a new key waits for a sweep.
const sweepBatch = 256

// Sweep drops every limiter whose Idle(now) holds and returns how many it
// dropped. Dropping an idle limiter changes no decision at now or later (but
// see Keyed for Takes racing with the sweep). A Take stamped before now, of
// a key Sweep dropped, is decided by the key's next limiter, which never saw
// the dropped one's Takes: for a fixed window, say, up to one more Limit in
// the window that now ended. Sweep with the oldest time a Take may still
// carry (now minus the longest request latency) where stale times matter.
// Limiters without an Idle method are never
// dropped. Shards whose keys are mostly gone are compacted, and a shard with
// none left frees its table, so memory returns after a flood of keys.
//
// Sweep visits every key; it locks one shard at a time for at most
// sweepBatch slots, so present keys' Takes never wait for it. Keys
// inserted during a sweep may or may not be visited.
func (k *Keyed[K, L]) Sweep(now time.Time) int {
	return k.sweep(now, nil)
}

// sweep is Sweep; with stop non-nil (the background sweeper) it yields the
// processor between batches and returns early once stop is closed.
func (k *Keyed[K, L]) sweep(now time.Time, stop <-chan struct{}) int {
	if k.idle == idleNever {
		return 0
	}
	dropped := 0
	for i := uint64(0); i <= k.smask; i++ {
		for pos := 0; pos >= 0; {
			var n int
			n, pos = k.sweepBatch(i, pos, now)
			dropped += n
			if stop != nil {
				runtime.Gosched()
				select {
				case <-stop:
					return dropped
				default:
				}
			}
		}
	}
	return dropped
}

// sweepBatch sweeps up to sweepBatch slots of shard i from slot pos, and
// returns how many limiters it dropped and where to go on (-1: the shard is
// done). If a rebuild replaced the table since the previous batch, it goes on
// at the same index of the new table: keys that moved may be skipped or seen
// twice, which is harmless (the next sweep finds them).
func (k *Keyed[K, L]) sweepBatch(i uint64, pos int, now time.Time) (dropped, next int) {
	sh := &k.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock() // Idle is the caller's code: unlock even if it panics
	t := k.tabs[i].Load()
	if t == nil {
		return 0, -1
	}
	end := min(pos+sweepBatch, int(t.size))
	for j := pos; j < end; j++ {
		s := t.at(uint64(j))
		m := s.meta.Load()
		if m&metaState != metaLive || !k.isIdle(s.lim, now) {
			continue
		}
		s.meta.Store(m&metaHash | metaDeleted)
		// The second check: a Take that found the limiter before the
		// tombstone and took before this load makes it busy again; put it
		// back. Any Take that lands later was in flight across both checks
		// (see Keyed). New lookups of the key wait for mu to re-check.
		if !k.isIdle(s.lim, now) {
			s.meta.Store(m)
			continue
		}
		t.moveOut(s)
		sh.deleted++
		sh.live.Add(-1)
		k.count.Add(-1)
		dropped++
	}
	if dropped > 0 {
		k.swept.Add(uint64(dropped))
	}
	if end < int(t.size) {
		return dropped, end
	}
	if live := int(sh.live.Load()); (live == 0 && sh.used > 0) || sh.compactable() {
		k.rebuild(i, sh, t, live)
	}
	return dropped, -1
}

// All returns an iterator over k's keys and their limiters, for persistence
// and metrics. Each shard is copied under its lock, one at a time, and its
// pairs are yielded with no lock held, so the loop body may use k. Every key
// present for the whole iteration is yielded exactly once; a key inserted
// or dropped during it may or may not be.
func (k *Keyed[K, L]) All() iter.Seq2[K, L] {
	return func(yield func(K, L) bool) {
		var buf []entry[K, L]
		for i := uint64(0); i <= k.smask; i++ {
			buf = k.snapshot(i, buf[:0])
			for _, e := range buf {
				if !yield(e.key, e.lim) {
					return
				}
			}
		}
	}
}

type entry[K comparable, L any] struct {
	key K
	lim L
}

func (k *Keyed[K, L]) snapshot(i uint64, buf []entry[K, L]) []entry[K, L] {
	sh := &k.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t := k.tabs[i].Load(); t != nil {
		for j := range t.size {
			if s := t.at(j); s.meta.Load()&metaState == metaLive {
				buf = append(buf, entry[K, L]{s.key, s.lim})
			}
		}
	}
	return buf
}

// KeyedStats counts what a Keyed has done since it was made.
type KeyedStats struct {
	Keys        int    // Len
	Swept       uint64 // idle limiters dropped by Sweep and the background sweeper
	EvictedIdle uint64 // idle limiters evicted to stay within MaxKeys: no decision changed
	// EvictedBusy counts limiters evicted to stay within MaxKeys that were
	// not idle: each let its key admit up to one window's worth more.
	EvictedBusy uint64
	Deleted     uint64 // limiters dropped by Delete
}

// Stats returns k's counts. They are read one after another, not as one
// snapshot.
func (k *Keyed[K, L]) Stats() KeyedStats {
	return KeyedStats{
		Keys:        k.Len(),
		Swept:       k.swept.Load(),
		EvictedIdle: k.evictedIdle.Load(),
		EvictedBusy: k.evictedBusy.Load(),
		Deleted:     k.deleted.Load(),
	}
}

// Close stops the background sweeper, if any, and waits for a sweep in
// progress to stop (it stops between batches). k stays usable: Get, Take
// and Sweep work as before, without background sweeping. Close is
// idempotent and always returns nil.
func (k *Keyed[K, L]) Close() error {
	if c := k.sweeper; c != nil {
		c.halt()
		<-c.done
	}
	return nil
}

// sweeperControl is shared by a Keyed and its sweeper goroutine. The
// goroutine holds it and a weak pointer to the Keyed, never a strong one
// between sweeps, so a Keyed that its owner drops without Close is collected,
// and a cleanup attached to it stops the goroutine.
type sweeperControl struct {
	once sync.Once
	stop chan struct{} // closed to stop the sweeper
	done chan struct{} // closed by the sweeper when it returns
}

func (c *sweeperControl) halt() { c.once.Do(func() { close(c.stop) }) }

func (k *Keyed[K, L]) startSweeper(interval time.Duration) {
	c := &sweeperControl{stop: make(chan struct{}), done: make(chan struct{})}
	k.sweeper = c
	clk, wk := k.clock, weak.Make(k)
	ticker := clk.Ticker(interval)
	go func() {
		defer close(c.done)
		defer ticker.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-ticker.C:
				k := wk.Value()
				if k == nil {
					return
				}
				k.sweep(clk.Now(), c.stop)
			}
		}
	}()
	runtime.AddCleanup(k, (*sweeperControl).halt, c)
}
