package slidingwindow

import (
	"math/bits"
	"reflect"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
)

// counterSlotter lets a ratekit.Keyed keep a Counter's state in its table
// slot (see keyed_slot.go in the root package). Not API. The Log keeps more
// than a word and stays out.
type counterSlotter struct{}

func init() { cell.RegisterSlotter(reflect.TypeFor[*Counter](), new(counterSlotter)) }

// Mover returns c's Ref; c is a *Counter.
func (*counterSlotter) Mover(c any) cell.Mover { return &c.(*Counter).c }

// TakeSlot is Counter.Take, line for line (keep them in step; the comments
// are Take's), on the block in s, which a Counter's Ref published there,
// without the Counter; it reports false, deciding nothing, when the block is
// sealed (moved, replaced or locked: the Counter's Take waits that out).
func (*counterSlotter) TakeSlot(s *cell.Slot, now time.Time, n int) (d ratekit.Decision, ok bool) {
	b := cell.BlockOf[counterParams](s)
	for {
		w := b.W.Load()
		if w == cell.Sealed {
			return d, false
		}
		p := b.P
		x := p.since(now)
		rel, cur, prev := p.unpack(uint64(w))
		start := p.start0 + int64(rel)*p.window
		if e := x - start; uint64(e) < uint64(p.window) && uint(n)-1 < uint(p.limit) {
			hi, lo := bits.Mul64(prev, uint64(e)<<p.divW.s)
			lim, wp, un := uint64(p.limit), prev-p.divW.quo(hi, lo), uint64(n)
			if cur+un+wp <= lim {
				if !b.W.CompareAndSwap(w, int64(p.pack(rel, cur+un, prev))) {
					continue
				}
				p.fill(&d, verdict{OK: true, Remaining: int(lim - cur - un - wp), Reset: time.Duration(start + 2*p.window - x)})
				return d, true
			}
			vw := view{rel: rel, start: start, e: e, cur: cur, prev: prev}
			v := verdict{Remaining: p.left(cur, wp), Reset: p.reset(&vw, cur, x), Retry: time.Duration(p.admitAt(&vw, un) - x)}
			if mark := uint64(w) | p.fbit; mark != uint64(w) {
				if !b.W.CompareAndSwap(w, int64(mark)) {
					continue
				}
				p.fill(&d, v)
				p.hook(d)
				return d, true
			}
			p.fill(&d, v)
			return d, true
		}
		next, store, v := p.decide(uint64(w), x, n)
		if store && !b.W.CompareAndSwap(w, int64(next)) {
			continue
		}
		p.fill(&d, v)
		if store && !v.OK {
			p.hook(d)
		}
		return d, true
	}
}
