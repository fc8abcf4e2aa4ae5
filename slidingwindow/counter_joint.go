package slidingwindow

import (
	"math/bits"
	"time"

	"github.com/ratekit/ratekit/internal/cell"
)

// Joint is internal to ratekit, not for use: ratekit.TakeAll decides the
// limiters that have it together, all or none, with no refund (see
// internal/cell). Its result's type is internal and may change. (The Log
// keeps more than a word and has none.)
func (c *Counter) Joint(self any, lock bool, now time.Time, wall int64, n int) (cell.Hold, cell.Move, cell.Verdict) {
	if self != any(c) {
		return cell.Hold{}, cell.Move{}, cell.Verdict{} // Slow (see cell.Member)
	}
	b := c.c.Cur() // the hot path of internal/cell, as in Take
	if b == nil {
		return cell.Hold{}, cell.Move{}, cell.Verdict{} // Slow: the zero Counter (see cell.Member)
	}
	w := cell.Grab(&b.W, lock)
	if w == cell.Sealed {
		b, w = c.c.Regrab(b, lock)
	}
	h, p := cell.HoldOf(b, w), b.P
	x, ok := p.wall.Since(wall) // p.since(now), as Take counts it
	if ok {
		x = min(max(x, minTime), maxTime)
	} else {
		x = p.since(now)
	}
	rel, cur, prev := p.unpack(uint64(w))
	start := p.start0 + int64(rel)*p.window
	if e := x - start; uint64(e) < uint64(p.window) && uint(n)-1 < uint(p.limit) {
		// Take's admitted fast case, spelled out as there (see Take for
		// why the weight is computed this way).
		hi, lo := bits.Mul64(prev, uint64(e)<<p.divW.s)
		lim, wp, un := uint64(p.limit), prev-p.divW.quo(hi, lo), uint64(n)
		if cur+un+wp <= lim {
			return h.Answer(int64(p.pack(rel, cur+un, prev)), cell.NoStamp,
				cell.Verdict{OK: true, Remaining: int(lim - cur - un - wp), Reset: time.Duration(start + 2*p.window - x)})
		}
	}
	next, store, v := p.decide(uint64(w), x, n)
	return h.Decided(lock, int64(next), store, v)
}

// JointPolicy is internal to ratekit, not for use (see Joint).
func (c *Counter) JointPolicy(h cell.Hold) (int, time.Duration, string) {
	p := cell.ParamsOf[counterParams](h)
	return p.limit, time.Duration(p.window), p.name
}
