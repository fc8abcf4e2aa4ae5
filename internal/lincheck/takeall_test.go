package lincheck

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TakeAll over a fixed window and a sliding Counter, decided together
// under their locks (see internal/cell), is one atomic operation: every
// history of TakeAlls in both member orders, direct Takes, Peeks and
// Refunds on each member and Reconfigures of the window must be
// linearizable against a model that applies a TakeAll at one instant:
// PeekAll of the members, and if it admits, a Take of each. (TakeAll's
// general path, Take by Take with refunds, is not: a caller between a
// member's Take and its refund sees the units taken.) PeekAll of the two
// is one atomic read too: it must report what the model's TakeAll would
// decide at one instant. (Peek by Peek it is not: a PeekAll that peeks the
// window before a concurrent TakeAll or Take and the Counter after it
// reports a state that never was.)

// jointWindows are the fixed window's configurations: no OnLimitReached,
// whose first call TakeAll leaves to the general path.
var jointWindows = []fixedwindow.Config{
	{Limit: 4, Window: time.Second, Name: "w"},
	{Limit: 6, Window: time.Second, Name: "w"},
	{Limit: 3, Window: 2 * time.Second, Name: "w2"},
}

// pair is the model state: the window's and the Counter's models.
type pair struct {
	w *model.FixedWindow
	c *model.SlidingCounter
}

func (p pair) members(in input) []ratekit.Limiter {
	if in.Key == keyTakeAllCW {
		return []ratekit.Limiter{p.c, p.w}
	}
	return []ratekit.Limiter{p.w, p.c}
}

// Keys of the operations: which member, or which TakeAll.
const (
	keyTakeAllWC = 0 // TakeAll(window, counter)
	keyWindow    = 1
	keyCounter   = 2
	keyTakeAllCW = 3 // TakeAll(counter, window)
)

func TestTakeAllJoint(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		wcfg := jointWindows[0]
		wcfg.Clock = fixedClock{t: t0}
		w, err := fixedwindow.New(wcfg)
		if err != nil {
			t.Fatal(err)
		}
		ccfg := slidingwindow.Config{Limit: 5, Window: time.Second, Name: "c"}
		c, err := slidingwindow.NewCounter(ccfg)
		if err != nil {
			t.Fatal(err)
		}
		return &history{
			do: jointDo(w, c, func(arg int, now time.Time) error {
				cfg := jointWindows[arg]
				cfg.Clock = fixedClock{t: now}
				return w.Reconfigure(cfg)
			}),
			model: pairModel(wcfg, ccfg),
			next:  jointNext,
		}
	})
}

// pairModel is the model of a joint history over a fixed window of wcfg
// and a sliding Counter of ccfg (see jointDo): a TakeAll applies at one
// instant, PeekAll then a Take of each member if it admits.
func pairModel(wcfg fixedwindow.Config, ccfg slidingwindow.Config) porcupine.Model {
	a := &modelOf[pair]{
		clone: func(p pair) pair { return pair{p.w.Clone(), p.c.Clone()} },
		desc:  func(p pair) string { return p.w.State() + " | " + p.c.State() },
	}
	a.apply = func(p pair, in input) output {
		now := t0.Add(in.Now)
		var l ratekit.Limiter = p.w
		if in.Key == keyCounter {
			l = p.c
		}
		switch {
		case in.Kind == opTake && (in.Key == keyTakeAllWC || in.Key == keyTakeAllCW):
			ms := p.members(in)
			d := ratekit.PeekAll(now, in.N, ms...)
			if d.Allowed {
				for _, m := range ms {
					m.Take(now, in.N)
				}
			}
			return output{D: d}
		case in.Kind == opTake:
			return output{D: l.Take(now, in.N)}
		case in.Kind == opPeek && (in.Key == keyTakeAllWC || in.Key == keyTakeAllCW):
			return output{D: ratekit.PeekAll(now, in.N, p.members(in)...)}
		case in.Kind == opPeek:
			return output{D: l.Peek(now, in.N)}
		case in.Kind == opRefund:
			l.Refund(t0.Add(in.At), in.N)
		case in.Kind == opReconfigure:
			c := jointWindows[in.Arg]
			p.w.Reconfigure(now, c.Limit, c.Window, c.Offset, c.Name, false)
		}
		return output{}
	}
	return porcupineModel(func() state {
		return a.state(pair{
			model.NewFixedWindow(wcfg.Limit, wcfg.Window, wcfg.Offset, wcfg.Name, false),
			&model.SlidingCounter{Limit: ccfg.Limit, Window: ccfg.Window, Name: ccfg.Name},
		})
	})
}

// jointNext is the next operation of a joint history (see jointDo).
func jointNext(g *goroutine) input {
	in := input{Now: g.now(), N: g.units()}
	switch k := g.r.IntN(20); {
	case k < 8:
		in.Kind, in.Key = opTake, pick(g.r, keyTakeAllWC, keyTakeAllCW)
	case k < 12:
		in.Kind, in.Key = opTake, pick(g.r, keyWindow, keyCounter)
	case k < 15:
		in.Kind, in.Key = opPeek, pick(g.r, keyWindow, keyCounter, keyTakeAllWC, keyTakeAllCW)
	case k < 18:
		in.Kind, in.Key = opRefund, pick(g.r, keyWindow, keyCounter)
		in.At = g.refundAt(in.Now)
	default:
		in.Kind, in.Key, in.Arg = opReconfigure, keyWindow, g.r.IntN(len(jointWindows))
	}
	return in
}

// jointDo runs one operation of a joint history on members w and c: a
// Take, Peek or Refund of either alone (Key keyCounter is c), TakeAll or
// PeekAll over both in either order (keyTakeAllWC, keyTakeAllCW), and a
// Reconfigure of w to the configuration reconfigure picks by Arg.
func jointDo(w, c ratekit.Limiter, reconfigure func(arg int, now time.Time) error) func(input) output {
	return func(in input) output {
		now := t0.Add(in.Now)
		l := w
		if in.Key == keyCounter {
			l = c
		}
		switch {
		case in.Kind == opTake && in.Key == keyTakeAllWC:
			return output{D: ratekit.TakeAll(now, in.N, w, c)}
		case in.Kind == opTake && in.Key == keyTakeAllCW:
			return output{D: ratekit.TakeAll(now, in.N, c, w)}
		case in.Kind == opTake:
			return output{D: l.Take(now, in.N)}
		case in.Kind == opPeek && in.Key == keyTakeAllWC:
			return output{D: ratekit.PeekAll(now, in.N, w, c)}
		case in.Kind == opPeek && in.Key == keyTakeAllCW:
			return output{D: ratekit.PeekAll(now, in.N, c, w)}
		case in.Kind == opPeek:
			return output{D: l.Peek(now, in.N)}
		case in.Kind == opRefund:
			l.Refund(t0.Add(in.At), in.N)
		case in.Kind == opReconfigure:
			return output{Err: errText(reconfigure(in.Arg, now))}
		}
		return output{}
	}
}
