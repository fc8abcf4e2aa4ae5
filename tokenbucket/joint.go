package tokenbucket

import (
	"time"

	"github.com/ratekit/ratekit/internal/cell"
)

// Joint is internal to ratekit, not for use: ratekit.TakeAll decides the
// limiters that have it together, all or none, with no refund (see
// internal/cell). Its result's type is internal and may change.
func (l *Limiter) Joint(self any, lock bool, now time.Time, wall int64, n int) (cell.Hold, cell.Move, cell.Verdict) {
	if self != any(l) {
		return cell.Hold{}, cell.Move{}, cell.Verdict{} // Slow (see cell.Member)
	}
	b := l.c.Cur() // the hot path of internal/cell, as in Take
	if b == nil {
		return cell.Hold{}, cell.Move{}, cell.Verdict{} // Slow: the zero Limiter (see cell.Member)
	}
	w := cell.Grab(&b.W, lock)
	if w == cell.Sealed {
		b, w = l.c.Regrab(b, lock)
	}
	h, p, tat := cell.HoldOf(b, w), b.P, w
	ns, ok := p.wall.Since(wall) // p.since(now), as Take counts it
	if !ok {
		ns = p.since(now)
	}
	if p.fast(ns, n) {
		// Take's fast case, spelled out as there.
		nd, next := p.admit(tat, ns, n)
		if nd <= p.tau {
			// The stamp is the time, s.
			return h.Answer(next, next-nd, cell.Verdict{OK: true, Remaining: int(p.burst - p.divP.Ceil(nd)), Reset: time.Duration(p.divQ.Ceil(nd))})
		}
		d := nd - int64(n)*p.p
		return h.Answer(tat, cell.NoStamp, cell.Verdict{Remaining: p.holds(d), Reset: time.Duration(p.divQ.Ceil(d)), Retry: time.Duration(p.divQ.Ceil(nd - p.tau))})
	}
	if ns < -p.rng || ns > p.rng && n > 0 && int64(n) <= p.burst {
		// A time past the fast range needs a rebase, a replacement, and
		// one before it an exact decision and a move of the epoch: the
		// general path's Take does them.
		return h.Defer(lock)
	}
	next, store, v := p.decide(tat, ns, n)
	stamp := int64(cell.NoStamp)
	if store {
		stamp, _ = p.clamp(ns)
	}
	return h.Answer(next, stamp, v)
}

// JointPolicy is internal to ratekit, not for use (see Joint).
func (l *Limiter) JointPolicy(h cell.Hold) (int, time.Duration, string) {
	p := cell.ParamsOf[params](h)
	return p.limit, p.window, p.name
}
