package tokenbucket

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

// Mover returns l's Ref; l is a *Limiter.
func (*slotter) Mover(l any) cell.Mover { return &l.(*Limiter).c }

// TakeSlot is Take on the block in s, which a Limiter's Ref published there,
// without the Limiter: it reports false, deciding nothing, when the block is
// sealed (moved, replaced or locked: the Limiter's Take waits that out) or
// the Take needs a move of the epoch (a time outside the fast range), which
// replaces the Limiter's block.
func (*slotter) TakeSlot(s *cell.Slot, now time.Time, n int) (dec ratekit.Decision, ok bool) {
	b := cell.BlockOf[params](s)
	for {
		tat := b.W.Load()
		if tat == cell.Sealed {
			return dec, false
		}
		p := b.P
		ns := p.since(now)
		if p.fast(ns, n) {
			// Take's fast path, on the slot's block.
			nd, next := p.admit(tat, ns, n)
			dec.Limit, dec.Window, dec.Policy = p.limit, p.window, p.name
			if nd <= p.tau {
				cell.Raise(&b.Aux, next-nd)
				if !b.W.CompareAndSwap(tat, next) {
					continue
				}
				dec.Allowed = true
				dec.Remaining = int(p.burst - p.divP.Ceil(nd))
				dec.ResetAfter = time.Duration(p.divQ.Ceil(nd))
				return dec, true
			}
			d := nd - int64(n)*p.p
			dec.Remaining = p.holds(d)
			dec.ResetAfter = time.Duration(p.divQ.Ceil(d))
			dec.RetryAfter = time.Duration(p.divQ.Ceil(nd - p.tau))
			return dec, true
		}
		if ns < -p.rng || ns > p.rng && n > 0 && int64(n) <= p.burst {
			return dec, false // a move of the epoch: the Limiter's Take replaces its block
		}
		next, store, v := p.decide(tat, ns, n)
		if store {
			s, _ := p.clamp(ns)
			cell.Raise(&b.Aux, s)
			if !b.W.CompareAndSwap(tat, next) {
				continue
			}
		}
		p.fill(&dec, v)
		return dec, true
	}
}
