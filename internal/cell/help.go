package cell

import "sync/atomic"

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
// waiting: if the block is sealed and its successor not yet published, its
// final word is still the limiter's state (helping mode). It writes
// nothing.
func (r *Ref[P]) Final() (*Block[P], int64) {
	b := r.cur.Load()
	for {
		w := b.W.Load()
		if w >= 0 {
			return b, w
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
// in first, and next may be called more than once, so it must be pure.
func (r *Ref[P]) Renew(next func(p *P, w, aux int64) (np *P, nw, naux int64)) {
	for {
		b := r.cur.Load()
		w := b.W.Load()
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
