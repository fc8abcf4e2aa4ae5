package fixedwindow

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
		// The zero Limiter decides on the shared zeroBlock, which must
		// never be locked: the general path.
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
	idx, toEnd := p.locate(now)
	next, store, v := p.decide(uint64(s.Word), idx, toEnd, n)
	switch {
	case !store:
		next = uint64(s.Word)
	case !v.OK:
		// The first denial of a full window sets the flag and calls
		// OnLimitReached: the general path's Take does both.
		if lock {
			s.Release()
		}
		s.Slow = true
		return s
	}
	s.Next, s.Stamp = int64(next), cell.NoStamp
	s.V = v
	return s
}

// policy is a cell.Step's Policy.
func policy(e cell.Erased) (int, time.Duration, string) {
	p := cell.ParamsOf[params](e)
	return p.cfg.Limit, p.cfg.Window, p.cfg.Name
}
