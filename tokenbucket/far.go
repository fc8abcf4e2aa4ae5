package tokenbucket

import (
	"math"
	"math/big"
	"time"

	"github.com/ratekit/ratekit"
)

// This file holds the cold path of times the epoch cannot hold: more than
// rng ns before it (2^60/q ns; since's reading saturated, 292 years and
// more, included). The hot paths send such a time here with one compare
// they make anyway (fast's range test); it is decided exactly, in
// math/big, against the TAT exactly (see past), and an admitted Take moves
// the epoch to its time before it stores (see movedTo), as a Take past the
// range moves it forward (rebase), or stores in place where the move would
// not keep the state (see storedAt). Nothing here is on a hot path: it may
// allocate.

// units returns now - epoch in units of 1/q ns, exactly, for any now: ns
// (since's reading of now) times q, or, where since saturated (292 years
// and more; a monotonic reading spans no such time), the wall clocks'
// difference.
func (p *params) units(now time.Time, ns int64) *big.Int {
	v := big.NewInt(ns)
	if ns == math.MinInt64 || ns == math.MaxInt64 {
		v.Sub(unixNano(now), unixNano(p.epoch))
	}
	return v.Mul(v, big.NewInt(p.q))
}

// exactTAT returns the TAT of the word w of p exactly, in units from p's
// epoch: w, or for minTAT the TAT p keeps in past (nil: full since
// forever). The result is the caller's to change.
func (p *params) exactTAT(w int64) *big.Int {
	if w == minTAT {
		return copyInt(p.past)
	}
	return big.NewInt(w)
}

// copyInt returns a copy of v, or nil for nil: past and pastZ are shared
// by every reader of their parameters and never changed.
func copyInt(v *big.Int) *big.Int {
	if v == nil {
		return nil
	}
	return new(big.Int).Set(v)
}

// exactZ returns the bound on stamps of the word aux of p exactly, in
// units from p's epoch: aux, or for minTAT the bound p keeps in pastZ (nil:
// no stamp). The result is the caller's to change.
func (p *params) exactZ(aux int64) *big.Int {
	if aux == minTAT {
		return copyInt(p.pastZ)
	}
	return big.NewInt(aux)
}

// withPasts returns a private copy of p whose word minTAT stands for the
// TAT past, and whose Aux minTAT for the bound on stamps pastZ (in p's
// units, below -fastBound; nil: full since forever, no stamp), or p
// itself if it already has those. It keeps past and pastZ, which no one
// may change after.
func (p *params) withPasts(past, pastZ *big.Int) *params {
	if past == p.past && pastZ == p.pastZ {
		return p
	}
	q := *p
	q.past, q.pastZ = past, pastZ
	return &q
}

// farDecide is decide at the exact time s (units from the epoch, any
// value) on the exact TAT tat (nil: full since forever): the same rules,
// with no clamp. It returns the TAT an admitted Take of n > 0 leaves (nil
// if it stores nothing) and the verdict.
func (p *params) farDecide(tat, s *big.Int, n int) (*big.Int, verdict) {
	d := new(big.Int)
	if tat != nil && tat.Cmp(s) > 0 {
		d.Sub(tat, s)
	}
	if n <= 0 || int64(n) > p.burst {
		v := verdict{OK: n == 0, Remaining: p.holdsBig(d), Reset: p.afterBig(d)}
		if n != 0 {
			v.Retry = ratekit.Never
		}
		return nil, v
	}
	nd := d.Add(d, big.NewInt(int64(n)*p.p))
	if nd.Cmp(big.NewInt(p.tau)) <= 0 {
		x := nd.Int64()
		return nd.Add(nd, s), verdict{OK: true, Remaining: int(p.burst - p.divP.Ceil(x)), Reset: p.after(x, 0)}
	}
	e := new(big.Int).Sub(nd, big.NewInt(int64(n)*p.p))
	return nil, verdict{Remaining: p.holdsBig(e), Reset: p.afterBig(e), Retry: p.afterBig(nd.Sub(nd, big.NewInt(p.tau)))}
}

// holdsBig is holds for any d >= 0.
func (p *params) holdsBig(d *big.Int) int {
	if d.Cmp(big.NewInt(p.tau)) > 0 {
		return 0
	}
	return p.holds(d.Int64())
}

// afterBig is after for any x, behind 0: whole ns rounded up, saturated
// below Never.
func (p *params) afterBig(x *big.Int) time.Duration {
	if x.Sign() <= 0 {
		return 0
	}
	ns := ceilDiv(x, big.NewInt(p.q))
	if !ns.IsInt64() || ns.Int64() > int64(ratekit.Never-1) {
		return ratekit.Never - 1
	}
	return time.Duration(ns.Int64())
}

// farPeek is Peek at now, ns before the epoch by more than rng: decided
// exactly, against the TAT exactly.
func (p *params) farPeek(tat int64, now time.Time, ns int64, n int) (dec ratekit.Decision) {
	_, v := p.farDecide(p.exactTAT(tat), p.units(now, ns), n)
	p.fill(&dec, v)
	return dec
}

// farTake is Take at now, ns before the epoch by more than rng: decided
// exactly; admitted, the epoch moves to now and the Take stores there,
// under the seal of b (see movedTo), or, where the move would not keep the
// state (see movedTo), the Take stores in place (see storedAt). It reports
// false, deciding nothing, if another replacement sealed b first: the
// caller loads again.
func (l *Limiter) farTake(b *block, tat int64, now time.Time, ns int64, n int) (dec ratekit.Decision, done bool) {
	p := b.P
	s := p.units(now, ns)
	next, v := p.farDecide(p.exactTAT(tat), s, n)
	if next == nil {
		p.fill(&dec, v) // denied, or n == 0: nothing to store, nothing moves
		return dec, true
	}
	if !l.c.Replace(b, func(w, aux int64) (*params, int64, int64) {
		// The state may have changed since the decision: decide again on
		// the one sealed.
		np, nw, naux, ok := p.movedTo(now, ns, s, w, aux)
		if !ok {
			next, v = p.farDecide(p.exactTAT(w), s, n)
			if next == nil {
				return p, w, aux
			}
			return p.storedAt(next, s, aux)
		}
		next, store, nv := np.decide(nw, 0, n)
		v = nv
		if store {
			return np, next, max(naux, 0) // now, 0, is the stamp
		}
		return np, nw, naux
	}) {
		return dec, false
	}
	p.fill(&dec, v)
	return dec, true
}

// storedAt returns the state that an admitted Take stamped at s (before
// the fast range) leaves, as the TAT next and with aux, the bound on
// stamps, in p's own units, the epoch staying: a TAT before the range is
// kept in past (the word minTAT), and the stamp raises a bound kept in
// pastZ (a bound in the range, or past it, is later than s already).
func (p *params) storedAt(next, s *big.Int, aux int64) (*params, int64, int64) {
	pastZ := p.pastZ
	if aux == minTAT && (pastZ == nil || pastZ.Cmp(s) < 0) {
		pastZ = s
	}
	if next.Cmp(big.NewInt(-fastBound)) >= 0 {
		return p.withPasts(p.past, pastZ), next.Int64(), aux // next <= s + tau: in the range
	}
	return p.withPasts(next, pastZ), minTAT, aux
}

// moveBack moves the epoch of b back to now, ns before it by more than
// rng, keeping every decision (see movedTo); it reports whether it did
// (not if the state does not fit from now, or another replacement sealed b
// first).
func (l *Limiter) moveBack(b *block, now time.Time, ns int64) bool {
	p := b.P
	s := p.units(now, ns)
	moved := false
	l.c.Replace(b, func(w, aux int64) (*params, int64, int64) {
		np, nw, naux, ok := p.movedTo(now, ns, s, w, aux)
		if !ok {
			return p, w, aux
		}
		moved = true
		return np, nw, naux
	})
	return moved
}

// movedTo returns the state (w, aux) of p, with p's restore mark, moved to
// parameters of p's Config whose epoch is now, where since read ns and
// units s: every value moves by -s, exactly, and every decision stays as
// it was. A TAT or a bound on stamps left before the fast range is kept in
// past or pastZ. It reports false if the TAT, the bound on stamps or the
// mark does not fit (more than 2^62 units past now); nothing is moved.
// (Cut to the bound there, a mark or a bound on stamps would come back
// below the Takes it stands for when a later Take moves the epoch forward
// again: TestFarMoveKeepsRestoreMark.)
func (p *params) movedTo(now time.Time, ns int64, s *big.Int, w, aux int64) (np *params, nw, naux int64, ok bool) {
	var t *big.Int
	if e := p.exactTAT(w); e != nil {
		t = new(big.Int).Sub(e, s)
		if t.Cmp(big.NewInt(maxTAT)) > 0 {
			return nil, 0, 0, false
		}
	}
	var z *big.Int
	if e := p.exactZ(aux); e != nil {
		z = new(big.Int).Sub(e, s)
		if z.Cmp(big.NewInt(maxTAT)) > 0 {
			return nil, 0, 0, false
		}
	}
	mark := p.exactMark()
	if mark != nil {
		if mark.Sub(mark, s).Cmp(big.NewInt(maxTAT)) > 0 {
			return nil, 0, 0, false
		}
	}
	epoch := p.epoch.Add(time.Duration(ns)) // keeps the epoch's monotonic reading, as rebase does
	if ns == math.MinInt64 || ns == math.MaxInt64 {
		epoch = now.Round(0) // since saturated: the wall clock's, which s counted
	}
	np, err := newParams(p.cfg, epoch)
	if err != nil {
		return nil, 0, 0, false // cannot happen: p.cfg was validated
	}
	np = np.withMark(mark) // private: past and pastZ are set on it below
	nw = minTAT
	switch {
	case t == nil:
	case t.Cmp(big.NewInt(-fastBound)) < 0:
		np.past = t
	default:
		nw = t.Int64()
	}
	naux = minTAT
	switch {
	case z == nil:
	case z.Cmp(big.NewInt(-fastBound)) < 0:
		np.pastZ = z
	default:
		naux = z.Int64()
	}
	return np, nw, naux, true
}

// farRefund is Refund of n units taken at `at`, ns before the epoch by
// more than rng, read exactly (see Refund; a mark in the word is at least
// -fastBound, after `at`, and one in pastMark may be too: then nothing
// comes back). A TAT it leaves before the
// fast range is kept in past, in parameters of the limiter's own. It
// reports false if the state changed under it: the caller loads again.
func (l *Limiter) farRefund(b *block, tat int64, at time.Time, ns int64, n int) bool {
	p := b.P
	t := p.exactTAT(tat)
	if t == nil || p.mark != minTAT {
		return true
	}
	s := p.units(at, ns)
	if p.pastMark != nil && s.Cmp(p.pastMark) <= 0 {
		return true // a Take from before a restore
	}
	give := big.NewInt(min(int64(n), p.burst) * p.p)
	z := b.Aux.Load()
	if zv := p.exactZ(z); zv != nil {
		if zs := zv.Sub(zv, s); zs.Sign() > 0 {
			give.Sub(give, zs)
		}
	}
	if give.Sign() <= 0 {
		return true
	}
	next := new(big.Int).Sub(t, give)
	floor := s
	if t.Cmp(s) < 0 {
		floor = t
	}
	if next.Cmp(floor) < 0 {
		next = floor
	}
	if next.Cmp(t) >= 0 {
		return true
	}
	if next.Cmp(big.NewInt(-fastBound)) >= 0 {
		return b.W.CompareAndSwap(tat, next.Int64())
	}
	same := false
	return l.c.Replace(b, func(w, aux int64) (*params, int64, int64) {
		if w != tat || aux != z {
			return p, w, aux // changed: decide again
		}
		same = true
		return p.withPasts(next, p.pastZ), minTAT, aux
	}) && same
}

// farIdle is idle at ns before the epoch by more than rng, read exactly as
// s: full at s, and no restore mark within tau before s (one in the word
// is at least -fastBound, after s; one before the range is in pastMark).
func (p *params) farIdle(tat int64, s *big.Int) bool {
	t := p.exactTAT(tat)
	if p.pastMark != nil && new(big.Int).Sub(s, big.NewInt(p.tau)).Cmp(p.pastMark) < 0 {
		return false
	}
	return p.mark == minTAT && (t == nil || t.Cmp(s) <= 0)
}
