package ratekit

import (
	"encoding/binary"
	"reflect"
	"time"
	"unsafe"

	"github.com/ratekit/ratekit/internal/cell"
)

// Keyed state at one dependent miss.
//
// With more keys than the caches hold, a Take costs its dependent cache
// misses (bench/RESULTS.md, "Keyed at 1M keys"). In the plain layout a
// slot holds the key and the limiter pointer, so a Take of a string key
// misses on the slot, then on the key's bytes and the limiter (overlapping),
// and its compare-and-swap waits for both. When the limiter keeps its state
// in one word of an internal/cell Ref (tokenbucket, fixedwindow, the
// slidingwindow Counter: their packages register a slotter) and the key
// compares inside the slot (a string of at most maxInlineKey bytes, copied
// into the slot, or a key with no string or interface in it), the slot also
// holds the key's state block: Keyed.Take finds the slot, compares the key
// there, and decides on the block there, one miss in all, through the
// algorithm's pure decision, never touching the limiter.
//
// The block in the slot is the limiter's own state, not a copy: insert
// moves the factory's limiter's block into the slot with cell's one
// protocol (Ref.MoveIn: seal the block in force, copy its words, publish
// the slot's block in the limiter's Ref), so Get's limiter, its Refund,
// Reconfigure and persistence, and Keyed.Take all act on one state. What
// moves it next:
//
//   - A rebuild moves each live key's state into its slot in the new table
//     (MoveIn again, from wherever it is: a limiter reconfigured since, whose
//     state went out of line, comes back into the table).
//   - Unlinking a key (Sweep, eviction, Delete) moves the state out of the
//     slot into a block of its own (Ref.MoveOut), so that a limiter a caller
//     kept does not keep the table alive through a pointer into it.
//   - Reconfigure, UnmarshalBinary and an epoch rebase on the limiter
//     replace its block by one out of line; the slot's block stays sealed,
//     and Takes that find it so are counted until one rebuilds the table
//     (Keyed.outside), which moves the state back into a slot.
//
// Keyed.Take falls back on the limiter's own Take whenever it finds the
// slot's block sealed (moved, replaced, or locked by a joint decision at
// that instant), and when the algorithm's slot decision declines (a case
// off its fast path: an epoch rebase, a hook to call). The limiter's Take
// then waits out a move in progress and decides on the block in force.
//
// No ABA: a slot's block is published at most once. A table's slots are
// written once (put), tombstones are never reused in place, and a rebuild
// makes a new table; so a block that has been sealed is never unsealed
// (cell.Ref.MoveTo never publishes into a block that was published before)
// and a goroutine still holding an old table's slot keeps that array alive
// and its CAS fails on Sealed. A Joint lock (cell.Lock) unseals only the
// block in force, which a move waits for.
//
// Rolling keeps the plain layout: it uses its Ref in helping mode
// (internal/cell/help.go), where a sealed word is not a lock and any
// goroutine that finds one publishes a successor block out of line, so a
// slot's block would be left behind at the first window that opens out of
// its base's reach; a move there would need a helping-mode MoveTo.

// maxInlineKey is the longest string key kept inline in a slot.
const maxInlineKey = 16

// slotter is what a word-state algorithm registers with
// cell.RegisterSlotter for its limiter type.
type slotter interface {
	// TakeSlot is Take on the block in s, which the limiter's Ref published
	// there; it reports false, deciding nothing, if the block is sealed or
	// the Take needs the limiter (its Ref or hooks). It must not touch the
	// limiter.
	TakeSlot(s *cell.Slot, now time.Time, n int) (Decision, bool)
	// Mover returns the Ref of l, a limiter of the registered type.
	Mover(l any) cell.Mover
}

// layout describes the slots of a Keyed's tables (see table).
type layout[K comparable, L any] struct {
	stride  uintptr // size of one slot
	kb, blk uintptr // offsets of the inline key bytes and the block; 0: none
	alloc   func(n int) unsafe.Pointer
	sl      slotter // blk != 0
}

// Slot layouts. slot[K, L] comes first in each, so that every table
// operation works on a *slot[K, L]; the rest are at the layout's offsets.
//
// The string layout is 72 bytes: the meta word (8), the key's header (16:
// its length is compared in the slot, and it keeps the key for All and for
// keys over maxInlineKey bytes), the limiter pointer (8, for Get and the
// fall back), the key's bytes (16) and the state block (24: the shared
// parameters' pointer, the state word, the auxiliary word). The other
// word-state layout has no key bytes: 56 bytes with an 8-byte key.
type (
	stateSlot[K comparable, L any] struct {
		slot[K, L]
		blk cell.Slot
	}
	stringStateSlot[K comparable, L any] struct {
		slot[K, L]
		kb  [maxInlineKey]byte
		blk cell.Slot
	}
)

// newLayout chooses the slot layout of a Keyed[K, L].
func newLayout[K comparable, L any]() *layout[K, L] {
	plain := &layout[K, L]{
		stride: unsafe.Sizeof(slot[K, L]{}),
		alloc: func(n int) unsafe.Pointer {
			return unsafe.Pointer(unsafe.SliceData(make([]slot[K, L], n)))
		},
	}
	sl, ok := cell.SlotterFor(reflect.TypeFor[L]()).(slotter)
	if !ok {
		return plain
	}
	kt := reflect.TypeFor[K]()
	switch {
	case kt.Kind() == reflect.String:
		var s stringStateSlot[K, L]
		return &layout[K, L]{
			stride: unsafe.Sizeof(s), kb: unsafe.Offsetof(s.kb), blk: unsafe.Offsetof(s.blk), sl: sl,
			alloc: func(n int) unsafe.Pointer {
				return unsafe.Pointer(unsafe.SliceData(make([]stringStateSlot[K, L], n)))
			},
		}
	case comparesInSlot(kt):
		var s stateSlot[K, L]
		return &layout[K, L]{
			stride: unsafe.Sizeof(s), blk: unsafe.Offsetof(s.blk), sl: sl,
			alloc: func(n int) unsafe.Pointer {
				return unsafe.Pointer(unsafe.SliceData(make([]stateSlot[K, L], n)))
			},
		}
	}
	// A key whose comparison reads memory outside the slot (a struct with a
	// string, an interface) would still be a second miss: the state in the
	// slot would cost its bytes and save nothing.
	return plain
}

// comparesInSlot reports whether == on values of t reads only the values
// themselves: no string's bytes, no interface's dynamic value.
func comparesInSlot(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Interface:
		return false
	case reflect.Array:
		return comparesInSlot(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !comparesInSlot(t.Field(i).Type) {
				return false
			}
		}
	}
	return true
}

// blockOf returns slot s's state block; t.blk != 0.
func (t *table[K, L]) blockOf(s *slot[K, L]) *cell.Slot {
	return (*cell.Slot)(unsafe.Add(unsafe.Pointer(s), t.blk))
}

// inlineEq reports whether s holds key, a string of at most maxInlineKey
// bytes, comparing the length in the slot's key header and the slot's
// inline copy of the bytes: nothing outside the slot. t.kb != 0.
func (t *table[K, L]) inlineEq(s *slot[K, L], key K) bool {
	ks := *(*string)(unsafe.Pointer(&key))
	n := len(ks)
	if len(*(*string)(unsafe.Pointer(&s.key))) != n {
		return false
	}
	kb := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(s), t.kb)), maxInlineKey)
	if n >= 8 {
		// Two 8-byte loads each side, overlapping for n < 16, instead of a
		// call to the runtime's memequal: most keys (tokens, addresses,
		// ids) have 8 to 16 bytes.
		q := unsafe.Slice(unsafe.StringData(ks), n)
		return binary.LittleEndian.Uint64(kb) == binary.LittleEndian.Uint64(q) &&
			binary.LittleEndian.Uint64(kb[n-8:]) == binary.LittleEndian.Uint64(q[n-8:])
	}
	return string(kb[:n]) == ks
}

// fill completes slot s of t, before put publishes it: the key's bytes
// inline, and the limiter's state moved into the slot's block, or, if it
// cannot be (a limiter with no block yet), that block sealed, so that
// readers use the limiter.
func (t *table[K, L]) fill(s *slot[K, L]) {
	if t.kb != 0 {
		if ks := *(*string)(unsafe.Pointer(&s.key)); len(ks) <= maxInlineKey {
			copy(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(s), t.kb)), maxInlineKey), ks)
		}
	}
	if t.blk != 0 {
		b := t.blockOf(s)
		if !t.lay.sl.Mover(s.lim).MoveIn(b) {
			b.Seal()
		}
	}
}

// moveOut moves the state of s's limiter out of s's block, if it is there,
// after s has been unlinked. The caller holds the shard's mutex.
func (t *table[K, L]) moveOut(s *slot[K, L]) {
	if t.blk != 0 {
		t.lay.sl.Mover(s.lim).MoveOut(t.blockOf(s))
	}
}

// outsideRebuild is how many Takes of a shard may find their key's state
// out of its slot (see Keyed.outside) before one rebuilds its table: at
// least this, and at least an eighth of the shard's keys.
const outsideRebuild = 16

// outside is Keyed.Take's slow path when the block in slot s of shard i's
// table t was sealed. If the limiter's state is no longer there (a
// Reconfigure, an UnmarshalBinary, a persist restore, a rebase moved it out
// of line), every Take of the key now goes through the limiter, one more
// miss than before the slot held states, until a rebuild moves the state
// back into a new slot (a sealed block is never reused). So such Takes are
// counted, and one of every max(outsideRebuild, live/8) of them rebuilds
// the shard's table, if it gets the shard's lock without waiting: the
// rebuild costs O(table size), amortized over that many Takes, so a
// constant per Take; it allocates the new table. Only a state out of line
// (cell.Ref.OutOfLine) is counted: not a block sealed for a moment (a move,
// a joint decision's lock), nor a state in another key's slot, nor none.
func (k *Keyed[K, L]) outside(i uint64, t *table[K, L], s *slot[K, L]) {
	if !t.lay.sl.Mover(s.lim).OutOfLine() {
		// Sealed for a moment in this slot (moving, or locked), or in
		// another key's slot (a limiter shared by keys or Keyeds), or no
		// block at all (a zero limiter): no rebuild brings it back for
		// good, and rebuilding for such a key's Takes would allocate a
		// table every few of them.
		return
	}
	sh := &k.shards[i]
	if c := sh.outside.Add(1); c < outsideRebuild || int64(c) < sh.live.Load()/8 {
		return
	}
	if !sh.mu.TryLock() {
		return // a writer is at work; a later Take will try again
	}
	defer sh.mu.Unlock()
	if t := k.tabs[i].Load(); t != nil && sh.outside.Load() >= outsideRebuild {
		k.rebuild(i, sh, t, int(sh.live.Load()))
	}
}
