package rolling

import (
	"math"
	"sync/atomic"
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
	if l.c.Cur() == nil {
		return cell.Hold{}, cell.Move{}, cell.Verdict{} // Slow: the zero Limiter (see cell.Member)
	}
	var b *block
	var w int64
	if lock {
		b, w = l.c.LockHelping()
	} else {
		b, w = l.c.LoadHelping()
	}
	h := cell.HoldOf(b, w)
	p, base := b.P, b.Aux.Load()
	t, ok := p.wall.Since(wall) // p.since(now), as Take counts it
	if !ok {
		t = p.since(now)
	}
	if count := w & p.cmask; count != 0 {
		// Take's common case, spelled out as there: n joins the window
		// open at t, with room.
		start := base + int64(uint64(w&(laterBit-1))>>p.cb)
		if n64 := int64(n); t >= start && !closed(start, t, p.window) &&
			uint64(n64-1) < uint64(p.limit) && count+n64 <= p.limit {
			next := w + n64
			if t > start {
				next |= laterBit
			}
			if jointSteps != nil {
				jointSteps.Add(1)
			}
			return h.Answer(next, cell.NoStamp, cell.Verdict{OK: true, Remaining: int(p.limit - count - n64), Reset: untilEnd(start, t, p.window)})
		}
	}
	if t == math.MinInt64 || t == math.MaxInt64 {
		// More than 292 years from the epoch: Take decides it exactly,
		// and moves the epoch if it opens a window (see farTake).
		return h.Defer(lock)
	}
	prev := p.decode(w, base)
	v, next, act := p.take(prev, t, n)
	nw := w
	switch act {
	case write:
		// In place, as publish stores it, or not at all: a window out of
		// the block's reach (or one that leaves widened parameters) needs
		// a new block, which only the general path publishes.
		var fits bool
		if nw, fits = p.encode(next, base); !fits || p != p.natural && opens(prev, next) {
			return h.Defer(lock)
		}
	case notify:
		// The first denial of a window sets the mark and calls
		// OnLimitReached: the general path's Take does both.
		return h.Defer(lock)
	}
	if jointSteps != nil {
		jointSteps.Add(1)
	}
	return h.Answer(nw, cell.NoStamp, v)
}

// jointSteps, if not nil, counts the Steps Joint decides (not Slow): for
// tests, which set it before the goroutines they start.
var jointSteps *atomic.Int64

// JointPolicy is internal to ratekit, not for use (see Joint).
func (l *Limiter) JointPolicy(h cell.Hold) (int, time.Duration, string) {
	p := cell.ParamsOf[params](h)
	return p.cfg.Limit, p.cfg.Window, p.cfg.Name
}
