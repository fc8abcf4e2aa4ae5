package tokenbucket

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

func (j *joint) Lock() (cell.Hold, bool) {
	return cell.LockHold(&j.c), true
}

// Decide is Take's decision on a locked TAT, and its stamp, the time s
// that Take raises Aux to: the fast case spelled out as
// in Take, decide otherwise, and a time past the fast range, which needs a
// rebase (a replacement), left to the general path.
func (j *joint) Decide(e cell.Erased, tat int64, now time.Time, n int) (int64, int64, cell.Verdict, bool) {
	p := cell.ParamsOf[params](e)
	ns := p.since(now)
	if p.fast(ns, n) {
		nd, next := p.admit(tat, ns, n)
		if nd <= p.tau {
			return next, next - nd, cell.Verdict{OK: true, Remaining: int(p.burst - p.divP.Ceil(nd)), Reset: time.Duration(p.divQ.Ceil(nd))}, false
		}
		d := nd - int64(n)*p.p
		return tat, cell.NoStamp, cell.Verdict{Remaining: p.holds(d), Reset: time.Duration(p.divQ.Ceil(d)), Retry: time.Duration(p.divQ.Ceil(nd - p.tau))}, false
	}
	if ns > p.rng && n > 0 && int64(n) <= p.burst {
		return tat, cell.NoStamp, cell.Verdict{}, true
	}
	next, store, v := p.decide(tat, ns, n)
	stamp := int64(cell.NoStamp)
	if store {
		stamp, _ = p.clamp(ns)
	}
	return next, stamp, cell.Verdict{Remaining: v.remaining, Reset: v.reset, Retry: v.retry, OK: v.ok}, false
}

func (j *joint) Policy(e cell.Erased) (int, time.Duration, string) {
	p := cell.ParamsOf[params](e)
	return p.limit, p.window, p.name
}
