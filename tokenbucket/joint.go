package tokenbucket

import (
	"time"

	"github.com/ratekit/ratekit/internal/cell"
)

// Joint is internal to ratekit, not for use: ratekit.TakeAll decides the
// limiters that have it together, all or none, with no refund (see
// internal/cell). Its result's type is internal and may change.
func (l *Limiter) Joint(self any, lock bool, now time.Time, n int) (s cell.Step) {
	if self != any(l) {
		s.Slow = true // a type embedding l, whose Take may differ: see cell.Member
		return s
	}
	b := l.c.Cur() // the hot path of internal/cell, as in Take
	if b == nil {
		// The zero Limiter, which is not usable: its Take panics on the
		// general path, where the composite holds no lock.
		s.Slow = true
		return s
	}
	w := cell.Grab(&b.W, lock)
	if w == cell.Sealed {
		b, w = l.c.Regrab(b, lock)
	}
	s.Hold = cell.HoldOf(b, w)
	s.Policy = policy
	p := cell.ParamsOf[params](s.P)
	tat := s.Word
	ns := p.since(now)
	if p.fast(ns, n) {
		// Take's fast case, spelled out as there.
		nd, next := p.admit(tat, ns, n)
		if nd <= p.tau {
			s.Next, s.Stamp = next, next-nd // the stamp is the time, s
			s.V = cell.Verdict{OK: true, Remaining: int(p.burst - p.divP.Ceil(nd)), Reset: time.Duration(p.divQ.Ceil(nd))}
			return s
		}
		d := nd - int64(n)*p.p
		s.Next, s.Stamp = tat, cell.NoStamp
		s.V = cell.Verdict{Remaining: p.holds(d), Reset: time.Duration(p.divQ.Ceil(d)), Retry: time.Duration(p.divQ.Ceil(nd - p.tau))}
		return s
	}
	if ns > p.rng && n > 0 && int64(n) <= p.burst {
		// A time past the fast range needs a rebase, a replacement: the
		// general path's Take does it.
		if lock {
			s.Release()
		}
		s.Slow = true
		return s
	}
	next, store, v := p.decide(tat, ns, n)
	s.Next, s.Stamp = next, cell.NoStamp
	if store {
		s.Stamp, _ = p.clamp(ns)
	}
	s.V = v
	return s
}

// policy is a cell.Step's Policy.
func policy(e cell.Erased) (int, time.Duration, string) {
	p := cell.ParamsOf[params](e)
	return p.limit, p.window, p.name
}
