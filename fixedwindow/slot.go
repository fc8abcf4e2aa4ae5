package fixedwindow

import (
	"reflect"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
)

// slotter lets a ratekit.Keyed keep a Limiter's state in its table slot
// (see keyed_slot.go in the root package). Not API.
type slotter struct{}

func init() { cell.RegisterSlotter(reflect.TypeFor[*Limiter](), new(slotter)) }

// Mover returns l's Ref; l is a *Limiter. A zero Limiter has no block to
// move until its first Reconfigure: the Keyed then uses the Limiter.
func (*slotter) Mover(l any) cell.Mover { return &l.(*Limiter).c }

// TakeSlot is Take on the block in s, which a Limiter's Ref published there,
// without the Limiter; it reports false, deciding nothing, when the block is
// sealed (moved, replaced or locked: the Limiter's Take waits that out).
func (*slotter) TakeSlot(s *cell.Slot, now time.Time, n int) (dec ratekit.Decision, ok bool) {
	b := cell.BlockOf[params](s)
	w := b.W.Load()
	if w == cell.Sealed {
		return dec, false
	}
	p := b.P
	idx, toEnd := p.locate(now)
	for {
		next, store, v := p.decide(uint64(w), idx, toEnd, n)
		if !store || b.W.CompareAndSwap(w, int64(next)) {
			p.fill(&dec, v)
			if store && !v.OK {
				p.cfg.OnLimitReached(dec) // as Take: after the flag is written
			}
			return dec, true
		}
		if w = b.W.Load(); w == cell.Sealed {
			return dec, false
		}
	}
}
