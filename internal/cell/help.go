package cell

import (
	"runtime"
	"sync/atomic"
)

// This file is the helping mode of the protocol (see "Helping mode" in the
// package documentation): a seal that keeps the final word readable, and a
// successor published by a CAS on the Ref, which any goroutine may do.

// SealBit seals a block's W in helping mode: W|SealBit is the word of a
// retired block whose final state is W. An algorithm in helping mode keeps
// this bit, the sign bit, clear in every state, so a sealed word is a
// negative one. (It is the bit pattern of Sealed: Replace's seal leaves the
// bit alone, Seal's keeps the word beside it.)
const SealBit int64 = Sealed

// Seal seals the W at a (a block's, called as cell.Seal(&b.W, w)) at w, an
// unsealed word loaded from it: it sets SealBit, so that every CAS still in
// flight on the word fails from then on, and the word stays readable as
// the block's final state. It reports false, changing nothing, if the word
// is no longer w (another goroutine changed or sealed it first). (A
// function of the word, as Raise is, so that it inlines into Take.)
func Seal(a *atomic.Int64, w int64) bool {
	return a.CompareAndSwap(w, w|SealBit)
}

// Final returns the block in force and its state word, unsealed, without
// waiting for a replacement: if the block is sealed and its successor not
// yet published, its final word is still the limiter's state (helping
// mode). It waits out a joint decision's lock (Locked). It writes nothing.
func (r *Ref[P]) Final() (*Block[P], int64) {
	b := r.cur.Load()
	for {
		w := b.W.Load()
		if w >= 0 {
			return b, w
		}
		if w == Locked {
			b, _ = r.WaitLocked(b)
			continue
		}
		nb := r.cur.Load()
		if nb == b {
			return b, w &^ SealBit
		}
		b = nb
	}
}

// Help publishes the successor of b, a sealed block, with parameters p and
// words w and aux: one CAS on the Ref, which succeeds only while b is in
// force. Any goroutine that found b sealed may call it, with a successor
// it computed from b's final word (its own update applied), so a sealer
// preempted before it publishes stalls nobody. Help reports false,
// publishing nothing, if another successor of b was published first: the
// caller reloads and decides again on that one. The new block is out of
// line, in a cache line of its own, as Replace's are; Help allocates it
// only if b is still in force when it looks.
func (r *Ref[P]) Help(b *Block[P], p *P, w, aux int64) bool {
	if r.cur.Load() != b {
		return false
	}
	return r.cur.CompareAndSwap(b, newBlock(p, w, aux))
}

// Renew is Replace in helping mode, for the slow paths (Reconfigure,
// UnmarshalBinary): it replaces the state in force, whatever it is when
// Renew gets there, by the one next returns for it, and returns once that
// is in force. next gets the block's parameters, final (or current) word
// and aux, and returns the new state's. If it returns the same parameters
// and aux, and the block is not sealed, the new word is stored in place by
// one CAS (a limiter that keeps its parameters keeps its inline block);
// otherwise the block is sealed and a successor published by Help. Renew
// is lock-free: it starts again only when another goroutine's update got
// in first, and next may be called more than once, so it must be pure. It
// waits out a joint decision's lock (Locked).
func (r *Ref[P]) Renew(next func(p *P, w, aux int64) (np *P, nw, naux int64)) {
	for {
		b := r.cur.Load()
		w := b.W.Load()
		if w == Locked {
			r.WaitLocked(b)
			continue
		}
		aux := b.Aux.Load()
		np, nw, naux := next(b.P, w&^SealBit, aux)
		if w >= 0 {
			if np == b.P && naux == aux {
				if b.W.CompareAndSwap(w, nw) {
					return
				}
				continue
			}
			if !Seal(&b.W, w) {
				continue
			}
		}
		if r.Help(b, np, nw, naux) {
			return
		}
	}
}

// Locked is the W of a helping-mode block locked for a joint decision (see
// Joint decisions in the package documentation): the seal bit with bit 62,
// the final word 1<<62 sealed. An algorithm in helping mode that is a
// Member must never have the state 1<<62, so that no sealed final word is
// Locked: its goroutines wait on Locked (WaitLocked) instead of deciding on
// it and helping.
const Locked int64 = SealBit | 1<<62

// WaitLocked is what a helping-mode path does when it loads Locked from b's
// W: it yields the processor until the lock is released (the same block's
// W changes) or another block is in force, and returns the block in force
// and its W, which may be sealed (not Locked) or locked again.
func (r *Ref[P]) WaitLocked(b *Block[P]) (*Block[P], int64) {
	for {
		if LockedHook != nil {
			LockedHook()
		}
		runtime.Gosched() // a joint decision holds the word
		nb := r.cur.Load()
		if w := nb.W.Load(); w != Locked || nb != b {
			return nb, w
		}
	}
}

// LockedHook, if not nil, is called by WaitLocked each time it finds the
// word locked: for tests only, which set it before the goroutines they
// start and clear it after they end.
var LockedHook func()

// LockHelping is Lock for a helping-mode Ref: it CASes the unsealed W of
// the block in force to Locked and returns that block and the word it
// held. It waits out another lock, and a seal whose successor is not yet
// published: the sealer publishes it without waiting for anything (Seal
// is followed by Help in every path), so, as Wait does for a replacement,
// it waits for a goroutine that is not waiting. The holder unlocks with
// Unlock, on the same block.
func (r *Ref[P]) LockHelping() (*Block[P], int64) {
	b := r.cur.Load()
	for {
		w := b.W.Load()
		if w >= 0 {
			if b.W.CompareAndSwap(w, Locked) {
				return b, w
			}
			continue
		}
		b = r.waitOpen(b, w)
	}
}

// LoadHelping is Load for a helping-mode Ref, for the one member of a joint
// decision that is loaded, not locked: it returns the block in force and
// its unsealed W, waiting out a lock or a seal (see LockHelping).
func (r *Ref[P]) LoadHelping() (*Block[P], int64) {
	b := r.cur.Load()
	for {
		w := b.W.Load()
		if w >= 0 {
			return b, w
		}
		b = r.waitOpen(b, w)
	}
}

// waitOpen waits, after w was loaded from b's W and found sealed or
// Locked, until the block in force or its word changes, and returns the
// block in force.
func (r *Ref[P]) waitOpen(b *Block[P], w int64) *Block[P] {
	if w == Locked {
		b, _ = r.WaitLocked(b)
		return b
	}
	for {
		if nb := r.cur.Load(); nb != b {
			return nb
		}
		runtime.Gosched() // a seal's successor is on its way
	}
}
