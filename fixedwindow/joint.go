package fixedwindow

import (
	"time"

	"github.com/ratekit/ratekit/internal/cell"
)

// Joint is internal to ratekit, not for use: ratekit.TakeAll decides the
// limiters it returns it for together, all or none, with no refund (see
// internal/cell). Its result's type is internal and may change.
func (l *Limiter) Joint() cell.Joint { return (*joint)(l) }

// joint is a Limiter as a cell.Joint.
type joint Limiter

// Lock locks the block in force; the zero Limiter has none (it decides on
// the shared zeroBlock, which must never be locked) and takes the general
// path.
func (j *joint) Lock() (cell.Hold, bool) {
	if j.c.Cur() == nil {
		return cell.Hold{}, false
	}
	return cell.LockHold(&j.c), true
}

// Decide is Take's decision on a locked word. The one denial that writes,
// the first of a full window setting the flag for OnLimitReached, is left
// to the general path, which calls the hook.
func (j *joint) Decide(e cell.Erased, w int64, now time.Time, n int) (int64, int64, cell.Verdict, bool) {
	p := cell.ParamsOf[params](e)
	idx, toEnd := p.locate(now)
	next, store, v := p.decide(uint64(w), idx, toEnd, n)
	if !store {
		next = uint64(w)
	} else if !v.ok {
		return w, cell.NoStamp, cell.Verdict{}, true
	}
	return int64(next), cell.NoStamp, cell.Verdict{Remaining: v.remaining, Reset: v.reset, Retry: v.retry, OK: v.ok}, false
}

func (j *joint) Policy(e cell.Erased) (int, time.Duration, string) {
	p := cell.ParamsOf[params](e)
	return p.cfg.Limit, p.cfg.Window, p.cfg.Name
}
