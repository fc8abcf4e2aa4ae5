package bench

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
)

// What composition costs: ratekit.AllOf(token bucket, fixed window, sliding
// counter).Take at an explicit time, all or none, beside one token bucket's
// Take in the same run ("ratekit-tokenbucket"). No peer composes limits of
// different algorithms (allof_test.go composes what they can), so the
// case has no peer: its figure is the ratio of the two rows, which issue
// 17 wants at 2x or less. A third row, "ratekit-members", is the three
// members' own Takes one after the other (not all or none): what deciding
// the three costs with no composite at all, the floor a composite's
// admission is measured against.
//
// Every member admits every call: the token bucket and fixed window as in
// the one-key cases, the sliding counter at its largest limit per second,
// which with the time advancing 4 windows/limit per call (as in its
// one-key case) never runs out. Both rows advance the time by the same
// step.

// BenchmarkTakeAll is one Take of three members, all admitting, against
// one token bucket's.
func BenchmarkTakeAll(b *testing.B) {
	counterCfg := slidingwindow.Config{Limit: slidingwindow.MaxCounterLimit(time.Second), Window: time.Second}
	step := max(defaultStep, 4*counterCfg.Window/time.Duration(counterCfg.Limit))
	for _, impl := range []struct {
		name string
		new  func() func(time.Time) bool
	}{
		{"ratekit", func() func(time.Time) bool {
			all := ratekit.AllOf(
				newTokenBucket(false),
				must(fixedwindow.New(fixedwindow.Config{Limit: wide(1 << 40), Window: time.Hour})),
				must(slidingwindow.NewCounter(counterCfg)),
			)
			return func(t time.Time) bool { return all.Take(t, 1).Allowed }
		}},
		{"ratekit-tokenbucket", func() func(time.Time) bool {
			l := newTokenBucket(false)
			return func(t time.Time) bool { return l.Take(t, 1).Allowed }
		}},
		{"ratekit-members", func() func(time.Time) bool {
			tb := newTokenBucket(false)
			fw := must(fixedwindow.New(fixedwindow.Config{Limit: wide(1 << 40), Window: time.Hour}))
			sc := must(slidingwindow.NewCounter(counterCfg))
			return func(t time.Time) bool {
				return tb.Take(t, 1).Allowed && fw.Take(t, 1).Allowed && sc.Take(t, 1).Allowed
			}
		}},
	} {
		b.Run("explicit-allow/"+impl.name, func(b *testing.B) {
			take := impl.new()
			now := time.Now()
			loop(b, impl.name, false, func() bool {
				now = now.Add(step)
				return take(now)
			})
		})
	}
}

// BenchmarkTakeAllRolling is Rollbar's case: a user's daily limit and a
// system limit, both rolling windows, on one token, TakeAll'd at an
// explicit time, beside one rolling window's Take in the same run
// ("ratekit-rolling"). Both windows are of MaxLimit, so every call admits
// and no window closes within a run (2^48 units, an hour of 100 ns steps
// at least).
func BenchmarkTakeAllRolling(b *testing.B) {
	for _, impl := range []struct {
		name string
		new  func() func(time.Time) bool
	}{
		{"ratekit", func() func(time.Time) bool {
			user := must(rolling.New(rolling.Config{Limit: wide(rolling.MaxLimit), Window: 24 * time.Hour, Name: "user"}))
			system := must(rolling.New(rolling.Config{Limit: wide(rolling.MaxLimit), Window: time.Hour, Name: "system"}))
			return func(t time.Time) bool { return ratekit.TakeAll(t, 1, user, system).Allowed }
		}},
		{"ratekit-rolling", func() func(time.Time) bool {
			l := newRolling(b, false)
			return func(t time.Time) bool { return l.Take(t, 1).Allowed }
		}},
	} {
		b.Run("explicit-allow/"+impl.name, func(b *testing.B) {
			take := impl.new()
			now := time.Now()
			loop(b, impl.name, false, func() bool {
				now = now.Add(defaultStep)
				return take(now)
			})
		})
	}
}

// BenchmarkJointAtomics is the floor of BenchmarkTakeAll's admission in
// locked instructions alone, with no decision: words on separate cache
// lines, updated as the paths update them, one goroutine, every operation
// succeeding.
//
//   - one-bucket: a token bucket's Take, Raise of its stamp word (a CAS,
//     the stamps advancing) and the CAS of its word: 2 locked.
//   - members: the three members' own Takes, the bucket's two and one CAS
//     each for the fixed window and the Counter: 4 locked.
//   - joint: TakeAll of the three decided together, lock two members
//     (Swap), load the third, Raise the bucket's stamp, CAS the third,
//     store the two locked words (Go's atomic Store is an XCHG on amd64):
//     6 locked.
//
// A composite all or none of k members that each Take of a member can
// race needs a locked write per member plus, for all but one, a second one
// to release it: 2k-1, and the bucket's stamp.
func BenchmarkJointAtomics(b *testing.B) {
	type padded struct {
		w atomic.Int64
		_ [56]byte
	}
	var words [4]padded // three members' words and the bucket's stamp
	raise := func(a *atomic.Int64, v int64) {
		for {
			x := a.Load()
			if v <= x || a.CompareAndSwap(x, v) {
				return
			}
		}
	}
	stamp := &words[3].w
	cases := []struct {
		name string
		op   func(i int64) bool
	}{
		{"one-bucket", func(i int64) bool {
			raise(stamp, i)
			w := words[0].w.Load()
			return words[0].w.CompareAndSwap(w, w+1)
		}},
		{"members", func(i int64) bool {
			raise(stamp, i)
			ok := true
			for m := range 3 {
				w := words[m].w.Load()
				ok = words[m].w.CompareAndSwap(w, w+1) && ok
			}
			return ok
		}},
		{"joint", func(i int64) bool {
			w0 := words[0].w.Swap(-1)
			w1 := words[1].w.Swap(-1)
			w2 := words[2].w.Load()
			raise(stamp, i)
			ok := words[2].w.CompareAndSwap(w2, w2+1)
			words[0].w.Store(w0 + 1)
			words[1].w.Store(w1 + 1)
			return ok
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			i := stamp.Load()
			loop(b, c.name, false, func() bool {
				i++
				return c.op(i)
			})
		})
	}
}
