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
// binds.
type Verdict struct {
	Remaining int
	Reset     time.Duration
	Retry     time.Duration
	OK        bool
}

// Member is a limiter whose state is one word of a Ref, decided together
// with other such limiters by ratekit.TakeAll: locked, decided on the
// locked words, and stored all or none (see Joint decisions in the package
// documentation). The algorithms' Limiter types implement it with one
// method, exported only because ratekit's composites live in another
// package, and documented in every package the same way, as not API.
//
// A composite asks each member once, so the one method locks (or loads)
// and decides: an interface call costs about what a small decision does.
// It passes values, not pointers to the caller's stack, since a pointer
// passed to an interface method escapes, and a composite must not
// allocate.
type Member interface {
	// Joint locks the limiter's state (lock; else it loads it, for the
	// member a composite stores by CAS, see Hold.CompareAndCommit), with
	// Grab, Regrab and HoldOf, and decides a Take of n at now on the word
	// it found: the Step.
	//
	// self is the member as the composite holds it. If it is not the
	// limiter itself (its dynamic type differs), the member is another
	// type that embeds the limiter and may override its Take: the Step is
	// Slow, and the general path calls that Take. (Comparing the data word
	// alone would not do: a struct of one pointer is stored in an
	// interface as that pointer.)
	Joint(self any, lock bool, now time.Time, n int) Step
}

// Step is a Member's answer: the hold of its state, and its decision.
type Step struct {
	Hold
	// Next is the word that taking leaves (Word itself when nothing is
	// taken), and Stamp what to raise Aux to before storing it (NoStamp:
	// nothing), as the algorithm's Take raises Aux before its CAS.
	Next, Stamp int64
	// V is the verdict.
	V Verdict
	// Policy returns the constant fields of a Decision of parameters P.
	Policy func(p Erased) (limit int, window time.Duration, name string)
	// Slow reports a Take this path must not decide, with nothing held
	// (a lock taken is released): a member that embeds the limiter (see
	// Joint), a zero Limiter, which has no block to lock (fixedwindow's
	// decides on a shared one; the others' panic, and must not while the
	// composite holds locks), a decision that must replace the block (a token
	// bucket's rebase), or one that writes on a denial (fixedwindow's
	// first full-window denial, which calls OnLimitReached). The caller
	// releases what it holds and takes the general path.
	Slow bool
}

// NoStamp is the stamp of a decision that raises no Aux.
const NoStamp = math.MinInt64

// Erased is a block's *P out of its generic type, so that a composite can
// hold limiters of different algorithms; ParamsOf gives it back its type.
type Erased struct{ p unsafe.Pointer }

// ParamsOf returns the parameters in e, which a Member of parameters P made.
func ParamsOf[P any](e Erased) *P { return (*P)(e.p) }

// Hold is one locked (or loaded) state: the block, out of its generic
// type.
type Hold struct {
	w, aux *atomic.Int64
	// P is the block's parameters.
	P Erased
	// Word is W when the lock was taken (or the word loaded): what Release
	// stores back.
	Word int64
}

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
	return Hold{w: &b.W, aux: &b.Aux, P: Erased{unsafe.Pointer(b.P)}, Word: w}
}

// CompareAndCommit stores w in the unlocked block of h (HoldOf without
// lock) if its W is still h.Word, after raising Aux to stamp (unless it is
// NoStamp), as a Take does before its CAS; it reports whether it stored.
func (h *Hold) CompareAndCommit(w, stamp int64) bool {
	if stamp != NoStamp {
		Raise(h.aux, stamp)
	}
	return h.w.CompareAndSwap(h.Word, w)
}

// Commit ends the lock in h storing w, after raising Aux to stamp (unless
// it is NoStamp), as a Take raises Aux before its CAS.
func (h *Hold) Commit(w, stamp int64) {
	if stamp != NoStamp {
		Raise(h.aux, stamp)
	}
	h.w.Store(w)
}

// Release ends the lock in h storing back the locked word: nothing changed.
func (h *Hold) Release() { h.w.Store(h.Word) }
