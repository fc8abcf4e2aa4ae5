package cell

import (
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Slot is the storage of one Block in a ratekit.Keyed table slot, its
// parameters' type erased so that one table layout serves every algorithm:
// the same three words as a Block[P] (P, W, Aux), in the same order. The
// algorithm that owns the slot's Ref views it as its Block with BlockOf.
// The zero Slot is not a block: a table stores Sealed in W until a Move
// publishes a block there (see Moving a block).
type Slot struct {
	p unsafe.Pointer
	// w is 8-aligned, as Block's W is, on 32-bit platforms too (where a
	// uint64 is 4-aligned): the zero-length atomic field aligns it, and
	// the words' atomics through BlockOf need it.
	_      [0]atomic.Int64
	w, aux uint64
}

// The layouts must agree: BlockOf reinterprets a *Slot.
var _ [unsafe.Sizeof(Slot{}) - unsafe.Sizeof(Block[int]{})]struct{}
var _ [unsafe.Sizeof(Block[int]{}) - unsafe.Sizeof(Slot{})]struct{}
var _ [unsafe.Offsetof(Slot{}.w) - unsafe.Offsetof(Block[int]{}.W)]struct{}
var _ [unsafe.Offsetof(Block[int]{}.W) - unsafe.Offsetof(Slot{}.w)]struct{}
var _ [unsafe.Alignof(Slot{}) - unsafe.Alignof(Block[int]{})]struct{}
var _ [unsafe.Alignof(Block[int]{}) - unsafe.Alignof(Slot{})]struct{}

// BlockOf returns s viewed as a block of parameters P. Only the algorithm
// whose Ref publishes s (its Slotter) calls it.
func BlockOf[P any](s *Slot) *Block[P] { return (*Block[P])(unsafe.Pointer(s)) }

// Seal makes the zero Slot s a retired block: W Sealed, P nil. A table
// seals a slot whose limiter's state it could not adopt, so that a reader
// of the slot falls back on the limiter.
func (s *Slot) Seal() { BlockOf[struct{}](s).W.Store(Sealed) }

// Sealed reports whether s's W is Sealed: retired, or locked or being
// moved away at the instant of the load.
func (s *Slot) Sealed() bool { return BlockOf[struct{}](s).W.Load() == Sealed }

// MoveTo replaces b, a block loaded from r, by dst, a block the caller
// provides: a Replace whose new block is at a given address, and whose
// parameters and words are b's final ones, unchanged (see Moving a block in
// the package documentation). dst must never have been published in any
// Ref (a fresh block, or a new table slot). It reports false, publishing
// nothing, if b was sealed first (replaced, locked, or moved); the caller
// reloads and starts again.
func (r *Ref[P]) MoveTo(b, dst *Block[P]) bool {
	w := b.W.Swap(Sealed)
	if w == Sealed {
		r.Wait()
		return false
	}
	dst.P = b.P
	dst.Aux.Store(b.Aux.Load())
	dst.W.Store(w)
	if MoveHook != nil {
		MoveHook()
	}
	r.cur.Store(dst) // publishes dst: it holds every update that got into b
	return true
}

// MoveHook, if set, is called by every move between its copy and its
// publication, where every other goroutine on the Ref waits. Tests set it
// (to runtime.Gosched) before they start goroutines, to widen that window:
// internal/lincheck's Keyed histories, so that a move that failed to seal
// would be seen losing updates. Nil otherwise.
var MoveHook func()

// MoveIn moves r's state, wherever it is, into the slot s: it reports false
// if r has no block yet (a zero limiter that Adopt will give one), and then
// s is left as it was.
func (r *Ref[P]) MoveIn(s *Slot) bool {
	dst := BlockOf[P](s)
	for {
		b := r.cur.Load()
		if b == nil {
			return false
		}
		if r.MoveTo(b, dst) {
			return true
		}
	}
}

// MoveOut moves r's state out of the slot s into a fresh block of its own,
// if s is the block in force; otherwise (the state was replaced or moved
// elsewhere since) it does nothing. A table unlinking a key calls it, so
// that a limiter kept by a caller does not keep the table alive.
func (r *Ref[P]) MoveOut(s *Slot) {
	src := BlockOf[P](s)
	for r.cur.Load() == src {
		if r.MoveTo(src, newBlock[P](nil, 0, 0)) {
			return
		}
	}
}

// Holds reports whether the slot s is r's block in force.
func (r *Ref[P]) Holds(s *Slot) bool { return r.cur.Load() == BlockOf[P](s) }

// OutOfLine reports whether r's block in force is one that Replace,
// MoveOut or Adopt made (newBlock), rather than a table slot, r's inline
// first block, or none: whether a ratekit.Keyed rebuild would move r's state
// into a slot for good. (A state in another key's slot, of a limiter shared
// by two keys or two Keyeds, is not: a rebuild would take it from that
// slot, whose key would then find it missing, and the tables would take
// turns.) It reads the word before the block: in newBlock's line, lineMark;
// before a table slot's block, the slot's limiter pointer or the tail of its
// inline key bytes; before the inline block, the Ref's pointer. None of
// those is lineMark but by a chance of 2^-64 a word (lineMark is random per
// process, so a key's bytes cannot be chosen to match it), and a mistake
// costs only a needless rebuild. So a Ref that asks must never have been
// moved into a Slot standing alone, with no word of its object before it.
func (r *Ref[P]) OutOfLine() bool {
	b := r.cur.Load()
	return b != nil && (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(b), -8)).Load() == lineMark
}

// lineMark marks the cache lines of out-of-line blocks (newBlock).
var lineMark = rand.Uint64() | 1

// Mover is a Ref as ratekit.Keyed sees it: MoveIn, MoveOut, Holds and
// OutOfLine, whatever P.
type Mover interface {
	MoveIn(s *Slot) bool
	MoveOut(s *Slot)
	Holds(s *Slot) bool
	OutOfLine() bool
}

var slotters sync.Map // reflect.Type of a limiter pointer -> its Slotter

// RegisterSlotter records that limiters of type t (a pointer type) can keep
// their state in a Keyed slot, through slotter, a value of the algorithm's
// that implements ratekit's internal slot interface (a Take on a Slot, and
// the limiter's Mover). Algorithm packages call it from init, with a
// pointer (a value of a pointer type in an interface calls its methods
// directly; a struct value goes through a wrapper that copies the result).
func RegisterSlotter(t reflect.Type, slotter any) { slotters.Store(t, slotter) }

// SlotterFor returns what RegisterSlotter recorded for t, or nil.
func SlotterFor(t reflect.Type) any {
	v, _ := slotters.Load(t)
	return v
}
