// Package cell is the state seam of ratekit's word-state algorithms: the one
// protocol by which a limiter loads, replaces (seals, converts, publishes)
// and stores its state. It is not API.
//
// # The split
//
// An algorithm is a set of immutable parameters P (a Config digested into
// the numbers its arithmetic needs, and the epoch its time counts from) and
// pure functions of (params, word, time, n): decide (the new word and a
// verdict), refund, idle, marshal. The state those functions read and write
// is one 64-bit word, W, plus, where an algorithm needs it, one auxiliary
// word, Aux, that is only ever raised (tokenbucket keeps in it the latest
// stamp it admitted, which Refund reads). governor's StateStore and its pure
// GCRA step are the model: the store owns the word and the protocol, the
// algorithm owns the arithmetic.
//
// A Block is one state: the parameters P, which never change once the
// block is published, and the words W and Aux, expressed in P's units and
// from P's epoch. A Ref is what a limiter holds: a pointer to the Block in
// force, and the limiter's first Block inline, which that pointer starts
// at. So a new limiter is one allocation, and from whatever points at the
// limiter (a variable, or the slot of a ratekit.Keyed table) to its words
// is one dependent memory access: the Ref and its inline Block share the
// limiter's cache line. The parameters are shared by every limiter of an
// equal Config (each algorithm interns them), so for many keys they stay in
// cache, and a key costs the 32 bytes of its Ref.
//
// # The hot path
//
// Take, Peek and Refund do, spelled out in each (a closure would stop the
// compiler inlining them, and the call would be a tenth of a Take):
//
//	b := r.Cur()
//	w := b.W.Load()
//	if w == cell.Sealed {
//		b, w = r.Wait()
//	}
//	next, verdict := decide(b.P, w, now, n)   // pure
//	cell.Raise(&b.Aux, stamp)                 // only if the algorithm keeps Aux
//	if !b.W.CompareAndSwap(w, next) { retry }
//
// A denial, and a Take of nothing, store nothing. The CAS is the
// linearization point of a Take: it succeeds only if W still holds the
// value the decision was made on, in the block the decision read P from.
//
// # Replacing a block
//
// Changing the parameters (Reconfigure), the epoch (a rebase when time runs
// past the arithmetic's range) or the whole state (UnmarshalBinary) replaces
// the block, with Replace:
//
//  1. Seal: swap the old block's W to Sealed. Every CAS still in flight on
//     it fails from then on, so the value the swap returned is final: every
//     update that got in before the swap is in it, and none gets in after.
//  2. Convert: the caller's function turns the final words, in the old
//     parameters' terms, into words of the new parameters.
//  3. Publish: store the new block, fully built, in the Ref. A goroutine
//     that found W sealed waits in Wait (yielding the processor) until the
//     Ref points at a block whose W is not sealed, and decides afresh there.
//
// The seal is also the lock between replacers: only the one whose swap
// returned a word rather than Sealed publishes; a replacer that finds the
// block sealed waits for the publication and starts again from the new
// block. A replacement holds that lock for the conversion of two words and
// never blocks inside it; Take, Peek and Refund take no lock, but do wait
// for a replacement in progress.
//
// Aux is not sealed: it is only ever raised, and a raise that lands on an
// old block after its seal belongs to a Take whose CAS will fail and which
// then raises the new block's Aux before it stores there. So Aux read after
// W, on a block, bounds every stamp that W reflects; that is all Refund
// needs of it, and all an algorithm may assume.
//
// # Why no CAS can succeed against changed parameters (no ABA)
//
// A CAS on W compares one word, not the parameters it was computed with;
// the protocol makes the parameters part of the word's identity instead:
//
//   - a block's P is written before the block is published and never after,
//     so W of a block is always in the units of that block's P;
//   - a retired block's W is never unsealed and a retired block is never
//     reused, not even the inline first block: a Ref that has left it never
//     returns to it (the inline block is then 24 dead bytes for the
//     limiter's life); only a Lock unseals, and only the block in force
//     (see Joint decisions);
//   - a goroutine that holds a pointer to a retired block keeps it alive,
//     so the garbage collector cannot recycle its memory into a new block
//     that the goroutine's CAS could then hit.
//
// So a CAS computed under parameters P compares against a W that is either
// still in P's units, or Sealed, which no decision produces and every CAS
// from a decision fails on. Go's atomics are sequentially consistent: a
// goroutine that sees Sealed and reloads the Ref sees a block published no
// earlier than the seal, with its P and words in place.
//
// # Joint decisions
//
// ratekit.TakeAll over members that all keep their state here decides them
// together, all or none, with no refund: in one canonical order it locks
// every member but the last and loads the last, decides each on its word,
// and then either CASes the last member's new word in (retrying it alone
// if that fails) and stores the others' into their locked blocks, or, if
// one denies, stores the locked words back (lock.go; the members implement
// Member). ratekit.PeekAll does the same and always stores the locked
// words back: every word it decides on is the member's at the load of the
// last, an atomic snapshot.
//
// A lock is a replacement that publishes nothing: Lock swaps the W of the
// block in force to Sealed, and Unlock stores a word, the old one or a new
// one in the same parameters' terms, back into the same block. So a Take,
// Peek, Refund or Replace that meets a locked word waits in Wait as it
// would for a replacement (Wait returns once the block in force is not
// Sealed), and the hot path is unchanged. Why that is exact:
//
//   - An unsealed W is always in the block in force. Replace seals a block
//     before it publishes its successor and never unseals it; a Lock
//     unseals only a block whose W it swapped from a word, and while it
//     holds it every Replace of that block finds Sealed and waits, so the
//     block is still in force when it is unlocked.
//   - Mutual exclusion: the swap that returns a word, not Sealed, owns the
//     block until it stores a word again, whether the owner is a Lock or a
//     Replace; every other swap returns Sealed and waits.
//   - No ABA: the block, hence P, is the same before and after the lock, so
//     a CAS computed on a word loaded before the lock compares against a
//     word of the same P. If it succeeds (the lock stored back an equal
//     word) it decided on exactly the state in force: the word is the whole
//     state, so the Take is one that ran after the unlock.
//   - Aux: a commit raises Aux before it stores W, as a Take raises it
//     before its CAS, so Aux read after W bounds every stamp W reflects.
//     Raises from Takes in flight on the locked block are raises by Takes
//     whose CAS will fail or that decided on the stored-back word:
//     allowed, as before (a higher bound only makes a refund give back
//     less).
//   - Atomicity: the last member's CAS succeeds only if its word is still
//     the one decided on, while every other member is locked, so at that
//     instant every decision holds: it is the composite's linearization
//     point. A caller that meets a locked member afterwards waits for its
//     new word; none sees the new word of one member and the old of
//     another. A denial writes only the locked words back: no caller sees
//     anything of it.
//   - No deadlock: members are locked in one canonical order, by address
//     (a composite listing a member twice takes the general path): a
//     composite waits, in a Lock or the last member's load, only for a
//     replacement, which never waits, or for a member later in the order
//     than every member it holds, whose holder waits for none it holds.
//     A holder never blocks: a decision
//     that must replace a block (a token bucket's rebase, a rolling window
//     out of its block's reach) or call out (OnLimitReached) unlocks
//     everything and takes the general path, Take by Take with refunds.
//   - A move (MoveTo, below) swaps W as a Replace does, so a lock on a
//     key's limiter holds across a Keyed table's rebuild: the move waits
//     for the unlock, then seals the unlocked block.
//
// In helping mode (rolling) a sealed word is no lock: any goroutine that
// finds it decides on the final word beside the seal bit and publishes a
// successor. So a lock there is Locked, the seal bit with bit 62, the
// sealed form of the word 1<<62, which the algorithm promises is none of
// its states (rolling's word of count 0 is always 0, so its notified bit
// never stands alone): LockHelping CASes an unsealed W of the block in
// force to Locked, and every helping-mode path that loads Locked (Take,
// Refund, Final, Renew; LockHelping and LoadHelping themselves) waits in
// WaitLocked for the word to change instead of deciding on it. Since only
// a CAS from an unsealed word locks, a lock never holds a sealed block,
// and since Seal and every CAS expect an unsealed word, nothing seals or
// writes a locked one: the block stays in force until the unlock, as
// above. A member whose block in force is sealed, its successor not yet
// out, waits for it (LockHelping), as for a replacement: every seal is
// followed by its Help, and a sealer waits for no lock.
// The slidingwindow Log and the concurrency semaphore keep more than a
// word and stay on the general path.
//
// # Keyed tables and persistence
//
// A ratekit.Keyed table keeps a word-state limiter's block in the key's
// table slot, so that a Take there is one memory access (the root
// package's keyed_slot.go). The block is the limiter's own, reached from
// its Ref as ever, and it changes place with the one protocol above:
//
// # Moving a block
//
// MoveTo is a Replace whose new block is at an address the caller gives
// (a new table slot, or a fresh block) and whose words are the old block's
// final ones, unchanged: seal the old block (swap W to Sealed), copy P,
// Aux and the final W into the new block, publish it in the Ref. Everything
// Replace guarantees holds: a CAS in flight on the old block fails, a
// goroutine that finds it sealed waits for the publication and decides
// again on the new block, and two movers, or a mover and a replacer, are
// ordered by the seal. The one new rule is the destination's: it must
// never have been published in any Ref, so that no goroutine can hold a
// pointer to it from an earlier life (a table slot is filled once; a
// rebuild makes a new table; a sealed slot is never reused). The
// algorithms register the Ref of their limiter type as a Mover (slot.go);
// MoveIn moves the state in force into a slot, MoveOut moves it out of a
// slot, if it is still there, into a fresh block, so that a limiter a
// caller keeps does not keep a table alive. Helping mode (below) does not
// move: a block there is replaced by whichever goroutine finds it sealed.
//
// Persistence reads the words with Load (a marshal is a pure function of
// the block) and restores with Replace, so a restore racing Takes is a
// replacement like any other.
//
// # Using it for a new algorithm
//
// Choose the encoding of W so that no state is math.MinInt64 (Sealed):
// tokenbucket's TAT stays within ±2^62; a packed word can keep its top bit
// clear, or never be exactly 1<<63. Write decide, refund, idle and marshal
// as methods of the params; intern the params by Config; spell out the hot
// path above in Take; route Reconfigure, UnmarshalBinary and any epoch move
// through Replace.
//
// For the algorithms still on copies of this protocol: fixedwindow's and
// slidingwindow Counter's sentinel (^0) becomes Sealed, so their packed
// words must never be exactly 1<<63 as a bit pattern (keep the top bit of
// the window index clear); their state/cell/counterState become Block,
// load/loadSlow/loadSealed become Cur+Wait or Load, replace becomes
// Replace, and their padded/compact/shared split goes (params are interned;
// the first block is inline).
//
// # Helping mode
//
// Replace makes every other goroutine on the Ref wait from seal to publish.
// That suits a rare replacement, not an algorithm that replaces its block
// in the course of ordinary Takes: rolling packs a window's start as an
// offset from a base, and a window that opens out of the offset's reach
// needs a block with a new base, which at large Limits is often. Such an
// algorithm uses the Ref in helping mode instead (help.go), for its life,
// and never calls Replace or Wait on it:
//
//  1. Seal: set SealBit, the word's sign bit, by CAS (Seal). The word the
//     CAS replaced, w, is final, as Replace's swap makes it, and it stays
//     readable: a sealed W is w|SealBit, so the algorithm's states keep
//     the sign bit clear, and a sealed word is a negative one.
//  2. Publish: any goroutine that finds a block sealed, and still in force,
//     decides on its final word as on any state, and publishes a successor
//     holding the result by one CAS on the Ref (Help); the first CAS wins,
//     and the others decide again on the winner's block. The sealer is one
//     of them: if it is preempted after its seal, the next Take publishes,
//     so nobody waits for anybody (lock-free), but for a joint decision's
//     lock (see Joint decisions).
//
// Final reads the state without waiting (the final word of a sealed block
// whose successor is not out yet is the state), and Renew is Replace's
// counterpart for Reconfigure and UnmarshalBinary: seal, then publish as
// any helper does, or, when the parameters and Aux stay, one CAS in place.
// Aux, in this mode, is a second immutable word of the block, set when it
// is built and never written after (rolling's base); it is not raised.
//
// The argument against ABA above holds unchanged: a block's P and Aux never
// change once it is published, a sealed word is never unsealed (every CAS
// on W expects an unsealed word, and Seal only sets the bit; Locked, which
// an unlock replaces, seals nothing), and a retired
// block is never published again (Help publishes a new one). A successor
// is built from a final word, which no later update can change, so every
// helper's successor carries every update that got in before the seal, and
// the one that is published carries its own update too; the others' CASes
// on the Ref fail and they decide again.
package cell

import (
	"math"
	"runtime"
	"sync/atomic"
)

// Sealed is the W of a retired block. No algorithm's state may be equal to
// it (see the package documentation).
const Sealed = math.MinInt64

// Block is one state: immutable parameters and the words in their terms.
// Fields are exported for the hot path to spell out; only this package and
// a block's builder write P.
type Block[P any] struct {
	// P is the parameters. Set before the block is published; never after.
	P *P
	// W is the state word, or Sealed once the block is retired.
	W atomic.Int64
	// Aux is the algorithm's auxiliary word: only ever raised (Raise),
	// never sealed. Unused by algorithms that need no second word. In
	// helping mode (help.go) it is immutable instead, like P.
	Aux atomic.Int64
}

// Raise raises a block's Aux (a) to v if v is greater: an atomic maximum,
// called as cell.Raise(&b.Aux, v). It writes only when v is a new maximum,
// so a word raised by every Take of a limiter is written only when the
// stamps move forward. (A function, not a method of the generic Block: the
// compiler inlines it into Take, where it would call a generic method.)
func Raise(a *atomic.Int64, v int64) {
	for {
		x := a.Load()
		if v <= x || a.CompareAndSwap(x, v) {
			return
		}
	}
}

// Ref is a limiter's handle on its state: the block in force, and the
// limiter's first block inline. The zero Ref is not usable: call Init. A
// Ref must not be copied once initialized (it points into itself).
type Ref[P any] struct {
	cur atomic.Pointer[Block[P]]
	b0  Block[P]
}

// Init makes r's first block, inline, of parameters p and the words w and
// aux, and publishes it. Call it once, before r is shared.
func (r *Ref[P]) Init(p *P, w, aux int64) {
	r.b0.P = p
	r.b0.W.Store(w)
	r.b0.Aux.Store(aux)
	r.cur.Store(&r.b0)
}

// Adopt publishes the first block of a Ref on which Init was never called,
// for an algorithm whose zero limiter is usable: one that reads a nil Cur
// as a block of its own that nothing ever writes (every algorithm's zero
// limiter, of Limit 0; see ratekit.Limiter). In helping mode too: the
// adopted block is then the first the helpers see. The block, of parameters p and words w and aux, is out of line, as
// Replace's are. Adopt reports false, publishing nothing, if r already has
// a block: Init was called, or another Adopt won. It is safe for
// concurrent use, and needs no seal, since the nil block is never written.
func (r *Ref[P]) Adopt(p *P, w, aux int64) bool {
	return r.cur.CompareAndSwap(nil, newBlock(p, w, aux))
}

// Cur returns the block in force, whose W may be Sealed: the first line of
// the hot path (see the package documentation).
func (r *Ref[P]) Cur() *Block[P] { return r.cur.Load() }

// Load returns the block in force and its W, not Sealed, waiting out a
// replacement in progress.
func (r *Ref[P]) Load() (*Block[P], int64) {
	b := r.cur.Load()
	if w := b.W.Load(); w != Sealed {
		return b, w
	}
	return r.Wait()
}

// Wait is Load after W was found Sealed: it yields the processor until the
// replacement in progress has published its block, and returns that block
// and its W.
func (r *Ref[P]) Wait() (*Block[P], int64) {
	for {
		runtime.Gosched() // a replacement is between seal and publish
		b := r.cur.Load()
		if w := b.W.Load(); w != Sealed {
			return b, w
		}
	}
}

// Replace replaces b, a block loaded from r, by a new block: it seals b,
// calls next with b's final W and Aux (never Sealed), and publishes the
// block of the parameters and words next returns. It reports whether it did;
// false means another replacement sealed b first, and has published by the
// time Replace returns: the caller reloads and starts again (the new block
// may call for other new parameters).
//
// next runs while every other goroutine on r waits: it must be quick, must
// not panic (r would stay sealed) and must not use r. Compute anything slow
// (new parameters) before calling Replace. New blocks are out of line, each
// in a cache line of its own (64 bytes): a replacement is rare, and a block
// shared by a whole process must not share its line with other objects'
// writes.
func (r *Ref[P]) Replace(b *Block[P], next func(w, aux int64) (np *P, nw, naux int64)) bool {
	w := b.W.Swap(Sealed)
	if w == Sealed {
		r.Wait()
		return false
	}
	np, nw, naux := next(w, b.Aux.Load())
	r.cur.Store(newBlock(np, nw, naux))
	return true
}

// newBlock returns a block out of line, in a cache line of its own, at the
// line's end, after lineMark (see Ref.OutOfLine).
func newBlock[P any](p *P, w, aux int64) *Block[P] {
	line := &struct {
		_    [64 - 24 - 8]byte
		mark atomic.Uint64
		b    Block[P]
	}{}
	line.mark.Store(lineMark)
	nb := &line.b
	nb.P = p
	nb.W.Store(w)
	nb.Aux.Store(aux)
	return nb
}

// First returns r's inline first block, for tests: r.Cur() == r.First()
// until the first replacement, and never after.
func (r *Ref[P]) First() *Block[P] { return &r.b0 }
