package lincheck

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/rolling"
)

// TakeAll over two rolling windows, Rollbar's user and system limits on
// one token, is TestTakeAllJoint's atomic operation too: rolling's words
// are locked in internal/cell's helping mode (cell.Locked), which its
// Takes, Peeks, Refunds and Reconfigures wait on rather than help from.
// The histories run TakeAlls in both orders, direct Takes, Peeks and
// Refunds on each member, and Reconfigures of the system limit, which
// publish a successor block under the locks.

// jointRolling are the system limit's configurations: no OnLimitReached,
// whose first call TakeAll leaves to the general path, and one Limit, so
// that a Reconfigure never widens the parameters for a count above it (a
// window opened on widened parameters needs a new block: the general path
// too), and small, so that every window is within its block's reach.
var jointRolling = []rolling.Config{
	{Limit: 4, Window: time.Second, Name: "system"},
	{Limit: 4, Window: 2 * time.Second, Name: "system2"},
	{Limit: 4, Window: 500 * time.Millisecond, Name: "system"},
}

// rollingPair is the model state: the user's and the system's models.
type rollingPair struct {
	w *model.Rolling // the system limit, reconfigured (keyWindow)
	c *model.Rolling // the user limit (keyCounter)
}

func (p rollingPair) members(in input) []ratekit.Limiter {
	if in.Key == keyTakeAllCW {
		return []ratekit.Limiter{p.c, p.w}
	}
	return []ratekit.Limiter{p.w, p.c}
}

func TestTakeAllJointRolling(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		wcfg := jointRolling[0]
		wcfg.Clock = fixedClock{t: t0}
		w, err := rolling.New(wcfg)
		if err != nil {
			t.Fatal(err)
		}
		ccfg := rolling.Config{Limit: 5, Window: 3 * time.Second, Name: "user", Clock: fixedClock{t: t0}}
		c, err := rolling.New(ccfg)
		if err != nil {
			t.Fatal(err)
		}
		a := &modelOf[rollingPair]{
			clone: func(p rollingPair) rollingPair { return rollingPair{p.w.Clone(), p.c.Clone()} },
			desc:  func(p rollingPair) string { return p.w.State() + " | " + p.c.State() },
		}
		a.apply = func(p rollingPair, in input) output {
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
			case in.Kind == opPeek:
				return output{D: l.Peek(now, in.N)}
			case in.Kind == opRefund:
				l.Refund(t0.Add(in.At), in.N)
			case in.Kind == opReconfigure:
				c := jointRolling[in.Arg]
				p.w.Reconfigure(now, c.Limit, c.Window, c.Name, false)
			}
			return output{}
		}
		return &history{
			do: jointDo(w, c, func(arg int, now time.Time) error {
				cfg := jointRolling[arg]
				cfg.Clock = fixedClock{t: now}
				return w.Reconfigure(cfg)
			}),
			model: porcupineModel(func() state {
				return a.state(rollingPair{
					model.NewRolling(wcfg.Limit, wcfg.Window, wcfg.Name, false),
					model.NewRolling(ccfg.Limit, ccfg.Window, ccfg.Name, false),
				})
			}),
			next: func(g *goroutine) input {
				in := input{Now: g.now(), N: g.units()}
				switch k := g.r.IntN(20); {
				case k < 8:
					in.Kind, in.Key = opTake, pick(g.r, keyTakeAllWC, keyTakeAllCW)
				case k < 12:
					in.Kind, in.Key = opTake, pick(g.r, keyWindow, keyCounter)
				case k < 15:
					in.Kind, in.Key = opPeek, pick(g.r, keyWindow, keyCounter)
				case k < 18:
					in.Kind, in.Key = opRefund, pick(g.r, keyWindow, keyCounter)
					in.At = g.refundAt(in.Now)
				default:
					in.Kind, in.Key, in.Arg = opReconfigure, keyWindow, g.r.IntN(len(jointRolling))
				}
				return in
			},
		}
	})
}
