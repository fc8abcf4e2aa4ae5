package fixedwindow

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
		// The zero Limiter decides on the shared zeroBlock, which must
		// never be locked: Slow, the general path.
		return cell.Hold{}, cell.Move{}, cell.Verdict{}
	}
	w := cell.Grab(&b.W, lock)
	if w == cell.Sealed {
		b, w = l.c.Regrab(b, lock)
	}
	idx, toEnd := b.P.locate(now)
	next, store, v := b.P.decide(uint64(w), idx, toEnd, n)
	return cell.HoldOf(b, w).Decided(lock, int64(next), store, v)
}

// JointPolicy is internal to ratekit, not for use (see Joint).
func (l *Limiter) JointPolicy(h cell.Hold) (int, time.Duration, string) {
	p := cell.ParamsOf[params](h)
	return p.cfg.Limit, p.cfg.Window, p.cfg.Name
}
