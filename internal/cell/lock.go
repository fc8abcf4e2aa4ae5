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
// Window, Policy): four words, what a Joint's Decide returns and a
// composite compares, filling a ratekit.Decision once, for the member that
// binds.
type Verdict struct {
	Remaining int
	Reset     time.Duration
	Retry     time.Duration
	OK        bool
}

// Joint is a limiter whose state is one word of a Ref, decided together
// with other such limiters by ratekit.TakeAll: locked, decided on the
// locked words, and stored all or none (see Joint decisions in the package
// documentation). Each algorithm implements it on an unexported type and
// hands it out through its Limiter's Joint method, which is exported only
// because ratekit's composites live in another package (see Jointer).
//
// Its methods pass values, not pointers to the caller's stack: a pointer
// passed to an interface method escapes, and a composite must not
// allocate.
type Joint interface {
	// Lock locks the limiter's state (with LockHold) and reports whether
	// it did; false (the zero fixedwindow Limiter, which has no block to
	// lock) sends the caller to the general path.
	Lock() (Hold, bool)
	// Decide is the limiter's Take of n at now, on w, a word of the locked
	// block of parameters p (the locked word, or what earlier decisions of
	// the same composite made of it): the word that taking leaves (w
	// itself when nothing is taken), the stamp to raise Aux to before that
	// word is stored (NoStamp: none), and the verdict. It writes nothing.
	// slow reports a Take this path must not decide: one that must replace
	// the block (a token bucket's rebase) or write on a denial
	// (fixedwindow's first full-window denial, which calls
	// OnLimitReached); the caller unlocks and takes the general path.
	Decide(p Erased, w int64, now time.Time, n int) (next, stamp int64, v Verdict, slow bool)
	// Policy returns the constant fields of a Decision of parameters p.
	Policy(p Erased) (limit int, window time.Duration, name string)
}

// NoStamp is the stamp of a decision that raises no Aux.
const NoStamp = math.MinInt64

// Jointer is what ratekit's composites look for in a member: the Joint
// view of a limiter. The algorithms' Limiter types implement it with an
// exported method that every package documents the same way, as not API.
type Jointer interface {
	Joint() Joint
}

// Erased is a block's *P out of its generic type, so that a composite can
// hold limiters of different algorithms; ParamsOf gives it back its type.
type Erased struct{ p unsafe.Pointer }

// ParamsOf returns the parameters in e, which a Joint of parameters P made.
func ParamsOf[P any](e Erased) *P { return (*P)(e.p) }

// Hold is one locked state: the block Lock returned, out of its generic
// type.
type Hold struct {
	w, aux *atomic.Int64
	// P is the block's parameters.
	P Erased
	// Word is W when the lock was taken: what Release stores back.
	Word int64
}

// LockHold is a Joint's Lock: it locks r and returns the hold of the
// block.
func LockHold[P any](r *Ref[P]) Hold {
	b, w := r.Lock()
	return Hold{w: &b.W, aux: &b.Aux, P: Erased{unsafe.Pointer(b.P)}, Word: w}
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
