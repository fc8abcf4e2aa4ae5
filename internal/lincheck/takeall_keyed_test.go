package lincheck

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestTakeAllJointKeyed is TestTakeAllJoint with the window and the Counter
// each a key of its own Keyed, whose table slots hold their states
// (keyed_slot.go in the root package), while a background goroutine
// inserts and deletes other keys in both Keyeds, one shard each, so that
// every few of its operations a rebuild moves both states into new slots
// under the recorded TakeAlls, PeekAlls, Takes (by Get's limiter or by
// the Keyed, in the slot), Refunds and Reconfigures (which move the
// window's state out of its slot, until a rebuild brings it back); each
// move yields between its copy and its publication (cell.MoveHook). The
// model is TestTakeAllJoint's: a TakeAll is one atomic step, whatever
// moves under it.
func TestTakeAllJointKeyed(t *testing.T) {
	yieldInMoves(t)
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		wcfg := jointWindows[0]
		wcfg.Clock = fixedClock{t: t0}
		ccfg := slidingwindow.Config{Limit: 5, Window: time.Second, Name: "c"}
		for _, err := range []error{wcfg.Validate(), ccfg.Validate()} {
			if err != nil {
				t.Fatal(err)
			}
		}
		// MaxKeys 64: one shard, never reached (the background keeps at
		// most a few keys), so the hot keys are never evicted.
		kcfg := ratekit.KeyedConfig{MaxKeys: 64, Clock: fixedClock{t: t0}}
		wins := ratekit.NewKeyed(func(string) *fixedwindow.Limiter {
			l, _ := fixedwindow.New(wcfg) // validated above
			return l
		}, kcfg)
		ctrs := ratekit.NewKeyed(func(int) *slidingwindow.Counter {
			l, _ := slidingwindow.NewCounter(ccfg) // validated above
			return l
		}, kcfg)
		w, c := wins.Get("w"), ctrs.Get(7)
		base := jointDo(w, c, func(arg int, now time.Time) error {
			cfg := jointWindows[arg]
			cfg.Clock = fixedClock{t: now}
			return wins.Get("w").Reconfigure(cfg)
		})
		return &history{
			do: func(in input) output {
				// Half the lone Takes through the Keyed, which decides in
				// the slot when the state is there.
				if in.Kind == opTake && rand.IntN(2) == 0 {
					switch in.Key {
					case keyWindow:
						return output{D: wins.Take(t0.Add(in.Now), "w", in.N)}
					case keyCounter:
						return output{D: ctrs.Take(t0.Add(in.Now), 7, in.N)}
					}
				}
				return base(in)
			},
			model: pairModel(wcfg, ccfg),
			next:  jointNext,
			background: func(stop <-chan struct{}) {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					wins.Get("o" + strconv.Itoa(i))
					ctrs.Get(1000 + i)
					if i >= 4 {
						wins.Delete("o" + strconv.Itoa(i-4))
						ctrs.Delete(1000 + i - 4)
					}
					runtime.Gosched()
				}
			},
		}
	})
}
