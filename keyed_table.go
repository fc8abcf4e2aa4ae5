package ratekit

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The hash table behind Keyed.
//
// Keys are split over shards by the low bits of their hash. Each shard has a
// mutex that only writers take (inserting a key, dropping one, rebuilding the
// table) and an atomic pointer to its current table, which readers load
// without any lock. A table is an open-addressing array of slots, probed
// linearly, with the key and the limiter stored inline in the slot: a new key
// costs no allocation of its own, only a share of the table.
//
// Why a slot's key and limiter can be read without a lock: a slot of a table
// is written at most once (its key and limiter, then its meta word with an
// atomic store that publishes them). Removing a key only stores a tombstone
// in meta; the key and limiter stay as they were, so a reader that loaded
// meta before the tombstone reads a consistent pair (the "in flight" reader
// of Keyed's doc). Tombstones are never reused in place: a rebuild copies
// the live slots into a fresh table and publishes it with one atomic store,
// and readers still holding the old table read a frozen copy until they
// return. This is the whole memory-ordering argument; everything written
// before a meta or table-pointer store is visible to a reader that loads it
// (sync/atomic operations are sequentially consistent in Go). The one part
// of a slot written after it is published, the state block of the
// word-state layouts (keyed_slot.go), is written only with atomics, under
// internal/cell's protocol.

// A slot's meta word: the state in the low two bits, the key's last-use
// stamp (see Keyed.evictFrom) in the next eight, and the key's hash from bit
// 10 up (54 bits; the shard is chosen by bits below 8), compared before the
// key itself so that a probe rarely touches a key it does not want.
const (
	metaEmpty   uint64 = 0 // never used in this table; ends a probe
	metaLive    uint64 = 1
	metaDeleted uint64 = 2 // a tombstone: probes continue past it
	metaState   uint64 = 3
	stampShift         = 2
	stampMask   uint64 = 0xff << stampShift
	metaHash           = ^uint64(1<<10 - 1)
)

// stampOf returns the epoch stamped in meta word m.
func stampOf(m uint64) uint32 { return uint32(m&stampMask) >> stampShift }

// withStamp returns m stamped with epoch e.
func withStamp(m uint64, e uint32) uint64 {
	return m&^stampMask | uint64(e&0xff)<<stampShift
}

type slot[K comparable, L any] struct {
	meta atomic.Uint64
	key  K
	lim  L
}

// table is immutable except for the meta words, the writing of empty slots
// (both under the shard's mutex) and, in a word-state layout (keyed_slot.go),
// the state blocks in the slots.
//
// A key's probe starts at slot hash*size/2^64 (the multiply-shift of Lemire's
// "fastrange"), so any size works, not only powers of two, and tables grow
// by 4/3 or 3/2 rather than doubling: they stay between 1/2 and 3/4 full,
// where doubling would leave them between 3/8 and 3/4, which costs a fifth
// more memory for the same longest probes. The start uses the high bits of
// the hash (the low bits choose the shard), the ones meta keeps, so a rebuild
// places a slot from its meta word alone, without hashing the key again.
//
// The slots are an array of one of the layouts of keyed_slot.go, each
// beginning with a slot[K, L]: base is its first element and stride the
// size of one, so that a Keyed whose limiters keep no state in the table
// pays nothing for those that do.
type table[K comparable, L any] struct {
	size   uint64         // number of slots
	base   unsafe.Pointer // the slots' array (it keeps the array alive)
	stride uintptr        // bytes from one slot to the next
	kb     uintptr        // offset of a slot's inline key bytes; 0: none
	blk    uintptr        // offset of a slot's state block; 0: none
	lay    *layout[K, L]
	// epoch is the shard's eviction epoch (shard.epoch), here for readers to
	// stamp the keys they use. It changes every few dozen evictions of the
	// shard at most, so it rarely costs readers a cache miss.
	epoch atomic.Uint32
}

// at returns slot i of t, i < t.size.
func (t *table[K, L]) at(i uint64) *slot[K, L] {
	return (*slot[K, L])(unsafe.Add(t.base, uintptr(i)*t.stride))
}

// minTableSize is the size of a shard's first table. With 8 slots of 32
// bytes (a string key and a pointer limiter) a shard costs 256 bytes once it
// holds a key (576 in the 72-byte layout of a string key and a word-state
// limiter, see keyed_slot.go).
const minTableSize = 8

// tableSize is the size of a table built to hold live keys: the least of 8,
// 12, 16, 24, 32, 48, ... (each 4/3 or 3/2 of the one before) that is at
// least 8/5 of live, so the load is at most 5/8 after a rebuild, and a table
// grows (see shard.full) at 3/4 to 1/2 or 9/16 full. 0 live keys need no
// table at all.
func tableSize(live int) int {
	if live <= 0 {
		return 0
	}
	n := minTableSize
	for 5*n < 8*live {
		if n&(n-1) == 0 {
			n = n / 2 * 3
		} else {
			n = n / 3 * 4
		}
	}
	return n
}

// home is the slot where the probe for a key with hash (or meta word) h
// starts.
func (t *table[K, L]) home(h uint64) uint64 {
	i, _ := bits.Mul64(h&metaHash, t.size)
	return i
}

// find returns the live slot holding key, or nil. It takes no lock and
// writes nothing, except (with stamp set) to stamp the key with the current
// epoch if it has an older one, so that eviction spares a key in use: a key
// in steady use is written once per epoch, not once per use. A table always
// has an empty slot (see shard.full), so the probe ends.
func (t *table[K, L]) find(h uint64, key K, stamp bool) *slot[K, L] {
	want := h&metaHash | metaLive
	inline := t.kb != 0 && len(*(*string)(unsafe.Pointer(&key))) <= maxInlineKey
	for i := t.home(h); ; {
		s := t.at(i)
		m := s.meta.Load()
		if m == metaEmpty {
			return nil
		}
		if m&^stampMask == want && (inline && t.inlineEq(s, key) || !inline && s.key == key) {
			if stamp {
				if e := t.epoch.Load(); stampOf(m) != e {
					// A failed CAS means another reader stamped it, or a
					// writer made it a tombstone: nothing to retry.
					s.meta.CompareAndSwap(m, withStamp(m, e))
				}
			}
			return s
		}
		if i++; i == t.size {
			i = 0
		}
	}
}

// put writes key and l into the first empty slot of key's probe sequence and
// publishes it with meta. The caller holds the shard's mutex, knows key is
// absent and that the table has room.
func (t *table[K, L]) put(meta uint64, key K, l L) {
	for i := t.home(meta); ; {
		s := t.at(i)
		if s.meta.Load() == metaEmpty {
			s.key, s.lim = key, l
			if t.blk != 0 || t.kb != 0 {
				t.fill(s) // the inline key bytes; the state moved in
			}
			s.meta.Store(meta) // publishes key, lim (and block) to readers
			return
		}
		if i++; i == t.size {
			i = 0
		}
	}
}

// newTable returns a table of layout lay and size slots (nil for 0) holding
// old's live slots, stamps included. It does not modify old's keys; in a
// word-state layout it moves their states into the new slots, sealing the
// old slots' blocks (keyed_slot.go).
func newTable[K comparable, L any](lay *layout[K, L], old *table[K, L], size int) *table[K, L] {
	if size == 0 {
		return nil
	}
	t := &table[K, L]{
		size: uint64(size), base: lay.alloc(size), stride: lay.stride,
		kb: lay.kb, blk: lay.blk, lay: lay,
	}
	if old != nil {
		for i := range old.size {
			s := old.at(i)
			if m := s.meta.Load(); m&metaState == metaLive {
				t.put(m, s.key, s.lim)
			}
		}
	}
	return t
}

// shard is the writers' side of one shard; its table pointer lives in
// Keyed.tabs, apart from this mutable state, so that inserts and sweeps do
// not invalidate the cache line readers load the table pointer from.
type shard struct {
	mu   sync.Mutex
	live atomic.Int64 // live keys; read without mu to skip empty shards
	// used counts live and deleted slots of the current table, deleted the
	// tombstones; cursor is where eviction looks next, a slot index (a
	// rebuild leaves it pointing somewhere else: no matter, it only samples);
	// evictions counts them in the current epoch, the eviction epoch of
	// Keyed.evictFrom. All under mu.
	used, deleted, cursor, evictions int
	epoch                            uint32
	// outside counts Takes that found their key's state out of its slot
	// since the table was built (see Keyed.outside); written without mu.
	outside atomic.Int32
	_       [8]byte // pad to 64 bytes: shards are written by different cores
}

// full reports whether a table of size slots must be rebuilt before one more
// slot is used. Keeping used below 3/4 of the size bounds linear probes
// (about 2.5 slots for a hit, 8.5 for a miss at worst) and keeps an empty
// slot in every table, which ends every probe.
func (sh *shard) full(size int) bool { return sh.used+1 > size/4*3 }

// compactable reports whether tombstones pin enough dropped limiters to be
// worth a rebuild: more than half as many as live keys, and at least 4.
// Tombstones keep their limiters reachable until the rebuild, so this bounds
// that memory at half the live keys' (plus 4 per shard). A rebuild costs
// O(table size); a table holds at least 5/12 of its size in live keys when
// built, so at least a seventh of its size in removals (or an eighth in
// inserts, see full) come before the next one: a small constant per change.
func (sh *shard) compactable() bool {
	return sh.deleted >= 4 && 2*sh.deleted > int(sh.live.Load())
}
