package cell

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"
)

// Lock locks r's state for a joint decision (see Joint decisions in the
// package documentation): it swaps the W of the block in force to Sealed,
// waiting out a replacement or another lock in progress, and returns that
// block and the word it held, never Sealed. Until Unlock, every Take, Peek,
// Refund and Replace on r waits, exactly as for a replacement; the holder
// must not block, must not use r, and must Unlock the same block.
func (r *Ref[P]) Lock() (*Block[P], int64) {
	b := r.cur.Load()
	if w := b.W.Swap(Sealed); w != Sealed {
		return b, w
	}
	return r.lockSlow(b)
}

// lockSlow is Lock after its first swap found b sealed: out of line, so
// that Lock inlines.
func (r *Ref[P]) lockSlow(b *Block[P]) (*Block[P], int64) {
	for {
		if w := b.W.Swap(Sealed); w != Sealed {
			return b, w
		}
		// Sealed already: retired (the swap changed nothing), or locked
		// or being replaced; wait until the block in force is open.
		b, _ = r.Wait()
	}
}

// Unlock ends a Lock of b: it stores w, the word Lock returned or a new one
// in b's parameters' terms, in the same block.
func Unlock[P any](b *Block[P], w int64) { b.W.Store(w) }

// Verdict is a decision without its policy's constant fields (Limit,
// Window, Policy): four words, what a Member's Step carries and a
// composite compares, filling a ratekit.Decision once, for the member that
// binds. Every algorithm decides into one, passed between its functions in
// registers where a 64-byte Decision would be copied through memory at
// every level, and fills the caller's Decision once (core.Fill).
type Verdict struct {
	Remaining int
	Reset     time.Duration
	Retry     time.Duration
	OK        bool
}

// Member is a limiter whose state is one word of a Ref, decided together
// with other such limiters by ratekit.TakeAll: locked, decided on the
// locked words, and stored all or none (see Joint decisions in the package
// documentation). The algorithms' Limiter types implement it, exported
// only because ratekit's composites live in another package, and
// documented in every package the same way, as not API.
//
// A composite asks each member once, so the one method Joint locks (or
// loads) and decides: an interface call costs about what a small decision
// does. It passes values, not pointers to the caller's stack, since a
// pointer passed to an interface method escapes, and a composite must not
// allocate. Its answer is three results of at most four words each, not
// one struct: Go returns them in registers and keeps each in registers in
// the caller, where a struct of more than four words is copied through
// the stack twice.
//
// A Member's value is a pointer to a struct whose first field is its Ref,
// so that a composite can read the block in force with StateOf before it
// locks anything.
type Member interface {
	// Joint locks the limiter's state (lock; else it loads it, for the
	// member a composite stores by CAS, see Hold.CompareAndCommit), with
	// Grab, Regrab and HoldOf, and decides a Take of n at now on the word
	// it found: the Hold, what committing stores, and the verdict; or a
	// Slow Hold (see Hold.Slow).
	//
	// self is the member as the composite holds it. If it is not the
	// limiter itself (its dynamic type differs), the member is another
	// type that embeds the limiter and may override its Take: the Hold is
	// Slow, and the general path calls that Take. (Comparing the data word
	// alone would not do: a struct of one pointer is stored in an
	// interface as that pointer.) So is a zero limiter, with no block: the
	// general path, where the composite holds no lock, calls its Take.
	//
	// wall is Wall(now), which a composite reads once for all its
	// members: a member whose decision counts time as now.Sub(epoch) takes
	// it from its Epoch's Since, and calls Sub only for the times Since
	// leaves.
	Joint(self any, lock bool, now time.Time, wall int64, n int) (Hold, Move, Verdict)
	// JointPolicy returns the constant fields of a Decision (Limit,
	// Window, Policy) of the parameters of h's block, h being a Hold this
	// member's Joint returned: a composite asks it once, for the member
	// that binds (TakeEach: for each member).
	JointPolicy(h Hold) (limit int, window time.Duration, name string)
}

// StateOf returns the address of the block in force of the Ref at m (nil:
// none yet), m being the pointer a Member's value holds (see Member): the
// identity of the state it decides on. A composite tells two members of
// one state apart by it, before it locks either: a limiter listed twice,
// and a struct copy of a limiter beside its original, which shares its
// original's block at another address (the Ref must not be copied, see
// Ref), so that locking both would wait for itself. An atomic load and
// only compared: for a type that gains Member's methods by embedding a
// limiter, whose Joint is Slow, it reads the type's first word.
func StateOf(m unsafe.Pointer) uintptr { return (*atomic.Uintptr)(m).Load() }

// Monotonic reports whether t carries a monotonic clock reading (as
// time.Now's do, and times derived from them by Add), the one fact about
// t that decides which clock t.Sub reads.
func Monotonic(t time.Time) bool { return t != t.Round(0) }

// NoWall is Wall's answer for a time that a member must count with Sub.
const NoWall = math.MinInt64

// wallSec bounds the Unix seconds of the times Wall and EpochOf serve,
// either way (136 years from 1970): two such times in ns are under 2^62
// in magnitude, so their difference cannot overflow.
const wallSec = 1 << 32

// Wall returns now in Unix ns, which a composite reads once and passes to
// every member's Joint: NoWall if now carries a monotonic reading (then
// Sub reads the monotonic clocks, its fast case) or lies 2^32 seconds
// (136 years) or more from 1970.
//
// Sub reads the monotonic clocks only when both times carry one; otherwise
// it subtracts wall clocks and checks the result for overflow with an Add
// and an Equal, four times the subtraction's cost. A member counts time as
// its Take does, int64(now.Sub(epoch)), as Epoch.Since(Wall(now)): one
// subtraction per member, exact (see Epoch.Since), and Sub only for the
// times it leaves. (Unix seconds near 0 are exact: Unix wraps only for
// times within 2^36 seconds of the ends of int64, far outside the bound.)
func Wall(now time.Time) int64 {
	if Monotonic(now) {
		return NoWall // Sub's fast case: no conversion wasted on it
	}
	if e := EpochOf(now); e.ok {
		return e.ns
	}
	return NoWall
}

// Epoch is a member's epoch in Unix ns, read once when its parameters are
// made (EpochOf), for Since. The zero Epoch serves no time: Since leaves
// every time to Sub, so parameters made without it are only slower.
type Epoch struct {
	ns int64 // the Unix ns of an epoch within wallSec of 1970, if ok
	ok bool
}

// EpochOf returns the Epoch of epoch (whether it carries a monotonic
// reading does not matter: Since serves only times that do not).
func EpochOf(epoch time.Time) Epoch {
	if s := epoch.Unix(); -wallSec < s && s < wallSec {
		return Epoch{s*1e9 + int64(epoch.Nanosecond()), true}
	}
	return Epoch{}
}

// Since returns int64(now.Sub(epoch)) for wall = Wall(now) and e its
// member's epoch, and true; or false when either is out of its reach (the
// member then calls Sub). Exact: Sub of a now with no monotonic reading
// subtracts the wall clocks, which is wall - e.ns, and both are under
// 2^62 in magnitude, so nothing overflows and Sub does not saturate.
func (e Epoch) Since(wall int64) (int64, bool) {
	return wall - e.ns, e.ok && wall != NoWall
}

// Step is a Member's answer as a composite keeps it: the hold of its
// state, what committing stores, and its decision.
type Step struct {
	Hold
	Move
	// V is the verdict.
	V Verdict
}

// Move is what a Member's decision stores if the composite commits it.
type Move struct {
	// Next is the word that taking leaves (Word itself when nothing is
	// taken), and Stamp what to raise Aux to before storing it (NoStamp:
	// nothing), as the algorithm's Take raises Aux before its CAS.
	Next, Stamp int64
}

// NoStamp is the stamp of a decision that raises no Aux.
const NoStamp = math.MinInt64

// Hold is one locked (or loaded) state: its block, and the word found.
// The zero Hold is Slow.
type Hold struct {
	// b is the block out of its generic type, so that a composite can
	// hold limiters of different algorithms: a Block's layout does not
	// depend on P (P is a pointer), and ParamsOf gives P back its type.
	// nil in a Slow Hold.
	b *Block[struct{}]
	// Word is W when the lock was taken (or the word loaded): what Release
	// stores back.
	Word int64
}

// Slow reports a Take the joint path must not decide, with nothing held
// (a lock taken was released, see Defer): a member that embeds the
// limiter (see Member.Joint), a zero Limiter, which has no block to lock
// (fixedwindow's decides on a shared one; the others' Takes panic, which
// they must not do while a composite holds locks), a decision that must replace the block (a token bucket's
// rebase, a rolling window out of its block's reach), or one that writes
// on a denial (the first denial of a full window or run, which calls
// OnLimitReached). The caller releases what it holds and takes the general
// path.
func (h Hold) Slow() bool { return h.b == nil }

// ParamsOf returns the parameters of h's block, which a Member of
// parameters P made.
func ParamsOf[P any](h Hold) *P { return (*P)(unsafe.Pointer(h.b.P)) }

// Grab is a Member's first step, spelled out in each (a generic helper
// taking the Ref would not inline there): it locks (lock) or loads w, the
// W of the block r.Cur() returned, and returns the word; Sealed means a
// replacement or another lock is in progress, and then Regrab waits it
// out.
func Grab(w *atomic.Int64, lock bool) int64 {
	if lock {
		return w.Swap(Sealed)
	}
	return w.Load()
}

// Regrab is Grab after it returned Sealed for b: it waits until the block
// in force is open, and locks (lock) or loads it.
func (r *Ref[P]) Regrab(b *Block[P], lock bool) (*Block[P], int64) {
	if lock {
		return r.lockSlow(b)
	}
	return r.Wait()
}

// HoldOf returns the hold of block b and its word w, from Grab or Regrab.
func HoldOf[P any](b *Block[P], w int64) Hold {
	return Hold{b: (*Block[struct{}])(unsafe.Pointer(b)), Word: w}
}

// Answer returns a Member's Joint answer on h deciding v, leaving next and
// raising Aux to stamp (NoStamp: not at all) if the composite commits.
func (h Hold) Answer(next, stamp int64, v Verdict) (Hold, Move, Verdict) {
	return h, Move{next, stamp}, v
}

// Defer ends a Member's Joint that leaves the Take to the general path
// (see Slow): it releases h if it is locked (lock), storing back its word,
// and returns the Slow answer. The one place a member's Joint goes slow
// once it holds its state, whatever the reason.
func (h Hold) Defer(lock bool) (Hold, Move, Verdict) {
	if lock {
		h.Release()
	}
	return Hold{}, Move{}, Verdict{}
}

// Decided ends a Member's Joint with its algorithm's general decision,
// given as the word-state algorithms' decide returns it: the next word,
// whether it must be stored, and the verdict. A decision that stores
// nothing leaves Word; one that stores on a denial is the first denial of
// a full window or run, which marks the word and calls OnLimitReached, so
// it is Deferred to the general path's Take, which does both. An admission
// raises no Aux.
func (h Hold) Decided(lock bool, next int64, store bool, v Verdict) (Hold, Move, Verdict) {
	switch {
	case !store:
		next = h.Word
	case !v.OK:
		return h.Defer(lock)
	}
	return h, Move{next, NoStamp}, v
}

// CompareAndCommit stores w in the unlocked block of h (HoldOf without
// lock) if its W is still h.Word, after raising Aux to stamp (unless it is
// NoStamp), as a Take does before its CAS; it reports whether it stored.
func (h *Hold) CompareAndCommit(w, stamp int64) bool {
	if stamp != NoStamp {
		Raise(&h.b.Aux, stamp)
	}
	return h.b.W.CompareAndSwap(h.Word, w)
}

// Commit ends the lock in h storing w, after raising Aux to stamp (unless
// it is NoStamp), as a Take raises Aux before its CAS.
func (h *Hold) Commit(w, stamp int64) {
	if stamp != NoStamp {
		Raise(&h.b.Aux, stamp)
	}
	h.b.W.Store(w)
}

// Release ends the lock in h storing back the locked word: nothing changed.
func (h *Hold) Release() { h.b.W.Store(h.Word) }
