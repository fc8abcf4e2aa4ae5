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
func (c *Counter) Joint(self any, lock bool, now time.Time, n int) (s cell.Step) {
	if self != any(c) {
		s.Slow = true // a type embedding c, whose Take may differ: see cell.Member
		return s
	}
	b := c.c.Cur() // the hot path of internal/cell, as in Take
	if b == nil {
		// The zero Counter, which is not usable: its Take panics on the
		// general path, where the composite holds no lock.
		s.Slow = true
		return s
	}
	w := cell.Grab(&b.W, lock)
	if w == cell.Sealed {
		b, w = c.c.Regrab(b, lock)
	}
	s.Hold = cell.HoldOf(b, w)
	s.Policy = counterPolicy
	p := cell.ParamsOf[counterParams](s.P)
	x := p.since(now)
	rel, cur, prev := p.unpack(uint64(w))
	start := p.start0 + int64(rel)*p.window
	if e := x - start; uint64(e) < uint64(p.window) && uint(n)-1 < uint(p.limit) {
		// Take's admitted fast case, spelled out as there (see Take for
		// why the weight is computed this way).
		hi, lo := bits.Mul64(prev, uint64(e)<<p.divW.s)
		lim, wp, un := uint64(p.limit), prev-p.divW.quo(hi, lo), uint64(n)
		if cur+un+wp <= lim {
			s.Next, s.Stamp = int64(p.pack(rel, cur+un, prev)), cell.NoStamp
			s.V = cell.Verdict{OK: true, Remaining: int(lim - cur - un - wp), Reset: time.Duration(start + 2*p.window - x)}
			return s
		}
	}
	next, store, v := p.decide(uint64(w), x, n)
	switch {
	case !store:
		next = uint64(s.Word)
	case !v.OK:
		// The first denial of a run marks the word and calls
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

// counterPolicy is a cell.Step's Policy.
func counterPolicy(e cell.Erased) (int, time.Duration, string) {
	p := cell.ParamsOf[counterParams](e)
	return p.limit, time.Duration(p.window), p.name
}
