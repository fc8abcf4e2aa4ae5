package tokenbucket_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

// farMixAnchors are the instants a history jumps between (see
// conformance.FarMixTimes).
var farMixAnchors = conformance.FarMixTimes(t0)

// farMixCfgs are the Configs a history starts with and reconfigures to:
// fast ranges (2^60/q ns either side of the epoch) of 36 years (q = 1),
// 12 years (q = 3), 5 years (q = 7) and 1.15 s (q = 999999937).
var farMixCfgs = []tokenbucket.Config{
	{Limit: 3, Window: time.Second, Burst: 3},
	{Limit: 1, Window: time.Hour, Burst: 2},
	{Limit: 7, Window: 10 * time.Second, Burst: 3},
	{Limit: 2, Window: 30 * day, Burst: 4},
	{Limit: 999_999_937, Window: time.Second, Burst: 50},
	{Limit: 999_999_937, Window: 3 * time.Second, Burst: 7},
}

// TestFarMixedHistories drives two limiters and their reference models
// with histories whose times jump between instants centuries apart and
// back (near Take, far Take, near Refund, far Refund), through Take,
// TakeAll of the two, and a Keyed that holds them, with Reconfigures and
// restarts whose clocks read any of those instants between; the two
// limiters are of one Template (they share parameters until one moves its
// epoch) or of New, and a restart restores into a new Limiter (of New, or
// of the Template and reconfigured), into the limiter itself, or restores
// the other limiter's state. Every Decision and Idle answer must be the
// model's; a TakeAll must be all or none and report the binding member's
// Decision (see the TakeAll case for the one it cannot follow exactly).
// It runs seeds 0 to 299; FARMIX_SEEDS=a:b runs seeds a to b-1 instead
// (a failure names its seed). It found a mark and a bound on stamps cut at
// 2^62/q ns and carried below their Takes by a later move of the epoch
// (TestFarMoveKeepsRestoreMark, TestFarReconfigureKeepsStamps) and a mark
// before the fast range kept at its bound (TestFarPastMarkRefund).
func TestFarMixedHistories(t *testing.T) {
	lo, hi := uint64(0), uint64(300)
	if v := os.Getenv("FARMIX_SEEDS"); v != "" {
		if _, err := fmt.Sscanf(v, "%d:%d", &lo, &hi); err != nil {
			t.Fatalf("FARMIX_SEEDS=%q: want a:b", v)
		}
	}
	t.Logf("seeds %d to %d (FARMIX_SEEDS=%d:%d)", lo, hi-1, lo, hi)
	for seed := lo; seed < hi; seed++ {
		farMixHistory(t, seed)
	}
}

// farOp is one step of a history: op (see farMix.step) on limiter k at
// now with n units; at is a Refund's stamp; cfg and clock a Reconfigure's
// or a restart's Config and clock reading; from the limiter whose state a
// restore reads; tmpl whether a restart's limiter is the Template's.
type farOp struct {
	op, k, n, from int
	now, at, clock time.Time
	cfg            tokenbucket.Config
	tmpl           bool
}

// String describes o as a failing history lists it.
func (o farOp) String() string {
	switch {
	case o.op < 3:
		return fmt.Sprintf("%d: Take(%v, %d) [op %d]", o.k, o.now, o.n, o.op)
	case o.op == 3:
		return fmt.Sprintf("TakeAll(%v, %d)", o.now, o.n)
	case o.op == 4:
		return fmt.Sprintf("%d: Peek(%v, %d)", o.k, o.now, o.n)
	case o.op < 8:
		return fmt.Sprintf("%d: Refund(%v, %d)", o.k, o.at, o.n)
	case o.op == 8:
		return fmt.Sprintf("%d: Idle(%v)", o.k, o.now)
	case o.op == 9:
		return fmt.Sprintf("%d: Reconfigure at %v to %d/%v burst %d", o.k, o.clock, o.cfg.Limit, o.cfg.Window, o.cfg.Burst)
	case o.op == 10:
		return fmt.Sprintf("%d: restart at %v as %d/%v burst %d (template %v), restoring its state", o.k, o.clock, o.cfg.Limit, o.cfg.Window, o.cfg.Burst, o.tmpl)
	case o.op == 13:
		return fmt.Sprintf("%d: AllowN(%d) with the clock at %v", o.k, o.n, o.now)
	case o.op == 14:
		return fmt.Sprintf("%d: Wait(%d) with the clock at %v", o.k, o.n, o.now)
	}
	return fmt.Sprintf("%d: restore %d's state", o.k, o.from)
}

// farMix is a history's two limiters, their models, the Keyed that holds
// them and the Takes each admitted.
type farMix struct {
	t            *testing.T
	base         tokenbucket.Config
	fromTemplate bool
	tmpl         *tokenbucket.Template
	cfgs         [2]tokenbucket.Config
	ls           [2]*tokenbucket.Limiter
	ms           [2]*model.TokenBucket
	keyed        *ratekit.Keyed[int, *tokenbucket.Limiter]
	taken        [2][]time.Time
	done         []farOp
}

func newFarMix(t *testing.T, base tokenbucket.Config, fromTemplate bool) *farMix {
	f := &farMix{t: t, base: base, fromTemplate: fromTemplate, tmpl: mustTemplate(t, base)}
	for i := range f.ls {
		f.cfgs[i] = base
		if fromTemplate {
			f.ls[i] = f.tmpl.New()
		} else {
			f.ls[i] = mustNew(t, base)
		}
		f.ms[i] = model.NewTokenBucket(base.Limit, base.Window, base.Burst, base.Name, t0)
	}
	f.keyed = ratekit.NewKeyed(func(k int) *tokenbucket.Limiter { return f.ls[k] }, ratekit.KeyedConfig{})
	return f
}

// farMixHistory runs the history of seed (see TestFarMixedHistories).
func farMixHistory(t *testing.T, seed uint64) {
	t.Helper()
	if f, msg := farMixRun(t, seed); msg != "" {
		f.fail(seed, msg)
	}
}

// farMixRun runs the history of seed, and returns it with what differed
// ("" if nothing did).
func farMixRun(t *testing.T, seed uint64) (*farMix, string) {
	rng := rand.New(rand.NewPCG(seed, 0x7b4d))
	clockAt := func() time.Time {
		a := farMixAnchors[rng.IntN(len(farMixAnchors))]
		return a.Add(time.Duration(rng.IntN(5)-2) * time.Second)
	}
	pick := func() tokenbucket.Config {
		c := farMixCfgs[rng.IntN(len(farMixCfgs))]
		c.Name = string(rune('a' + rng.IntN(2)))
		return c
	}
	base := pick()
	base.Clock = &setClock{now: clockAt()}
	f := newFarMix(t, base, rng.IntN(2) == 0)
	for range 40 {
		o := farOp{k: rng.IntN(2), op: rng.IntN(15)}
		cfg := f.cfgs[o.k]
		a := farMixAnchors[rng.IntN(len(farMixAnchors))]
		iv := cfg.Window / time.Duration(cfg.Limit) // the emission interval, rounded down
		tau := iv * time.Duration(cfg.Burst)
		far := farRange(cfg)
		offs := []time.Duration{0, 1, -1, iv, -iv, tau, -tau, 2 * tau, time.Second, -time.Second, far, -far, far + 1, -far - 1}
		o.now = a.Add(offs[rng.IntN(len(offs))])
		if taken := f.taken[o.k]; len(taken) > 0 && rng.IntN(4) == 0 {
			o.now = taken[rng.IntN(len(taken))].Add(offs[rng.IntN(7)]) // near an earlier Take
		}
		o.n = []int{0, 1, 1, 2, cfg.Burst, cfg.Burst + 1}[rng.IntN(6)]
		o.at = o.now
		if taken := f.taken[o.k]; len(taken) > 0 && rng.IntN(3) > 0 {
			o.at = taken[rng.IntN(len(taken))]
		}
		o.cfg, o.clock, o.from = pick(), clockAt(), o.k
		if o.op == 10 && rng.IntN(2) == 0 {
			o.cfg = cfg
		}
		o.tmpl = f.fromTemplate && rng.IntN(2) == 0
		if o.op == 12 {
			o.from = 1 - o.k
		}
		if msg, end := f.step(o); msg != "" || end {
			return f, msg
		}
	}
	return f, ""
}

// fail fails the test with msg after logging the history that led to it.
func (f *farMix) fail(seed uint64, msg string) {
	f.t.Helper()
	for _, o := range f.done {
		f.t.Log(o)
	}
	f.t.Fatalf("seed %d (template %v): %s", seed, f.fromTemplate, msg)
}

// step runs o on the limiters and their models, and returns what differed
// ("" if nothing did) and whether the history ends (see the TakeAll case).
func (f *farMix) step(o farOp) (msg string, end bool) {
	f.done = append(f.done, o)
	l, m, k, now, n := f.ls[o.k], f.ms[o.k], o.k, o.now, o.n
	switch o.op {
	case 0, 1, 2:
		var got ratekit.Decision
		if o.op == 2 {
			got = f.keyed.Take(now, k, n)
		} else {
			got = l.Take(now, n)
		}
		want := m.Take(now, n)
		if got != want {
			return fmt.Sprintf("limiter %d: Take(%v, %d) = %v; model %v%s", k, now, n, got, want, farSide(got, want)), false
		}
		if got.Allowed && n > 0 {
			f.taken[k] = append(f.taken[k], now)
		}
	case 3:
		w0, w1 := f.ms[0].Peek(now, n), f.ms[1].Peek(now, n)
		peeked := ratekit.PeekAll(now, n, f.ls[0], f.ls[1])
		got := ratekit.TakeAll(now, n, f.ls[0], f.ls[1])
		if peeked != got {
			return fmt.Sprintf("PeekAll(%v, %d) = %v; TakeAll then %v", now, n, peeked, got), false
		}
		switch {
		case w0.Allowed && w1.Allowed:
			want := w0
			if farBinds(w1, w0) {
				want = w1
			}
			if got != want {
				return fmt.Sprintf("TakeAll(%v, %d) = %v; models %v, %v", now, n, got, w0, w1), false
			}
			for j := range f.ms {
				f.ms[j].Take(now, n)
				if n > 0 {
					f.taken[j] = append(f.taken[j], now)
				}
			}
		case !w0.Allowed:
			want := w0
			if !w1.Allowed && w1.RetryAfter > w0.RetryAfter && w0.RetryAfter != ratekit.Never {
				want = w1
			}
			if got != want {
				return fmt.Sprintf("TakeAll(%v, %d) = %v; models %v, %v", now, n, got, w0, w1), false
			}
		default:
			// The second member alone denies: where TakeAll decides
			// the two together, the first is as it was; where it
			// takes its general path, the first is rolled back by a
			// Refund at now, which gives back less if a later stamp
			// was seen. It must decide as one of the two.
			if got != w1 {
				return fmt.Sprintf("TakeAll(%v, %d) = %v; models %v, %v", now, n, got, w0, w1), false
			}
			rolled := f.ms[0].Clone()
			rolled.Take(now, n)
			rolled.Refund(now, n)
			return f.rollback(rolled, now), true // the first member's state is one of two: the history ends
		}
	case 4:
		if got, want := l.Peek(now, n), m.Peek(now, n); got != want {
			return fmt.Sprintf("limiter %d: Peek(%v, %d) = %v; model %v%s", k, now, n, got, want, farSide(got, want)), false
		}
	case 5, 6, 7:
		l.Refund(o.at, n)
		m.Refund(o.at, n)
	case 8:
		if got, want := l.Idle(now), m.Idle(now); got != want {
			return fmt.Sprintf("limiter %d: Idle(%v) = %v; model %v", k, now, got, want), false
		}
	case 13, 14:
		// The limiter's own clock reads now: AllowN is
		// Take(now, n).Allowed, and Wait, with a deadline of now, Take's
		// Decision, with ErrWaitExceedsDeadline for a denial (or
		// ErrExceedsLimit for n outside [0, Burst]).
		want := m.Peek(now, n)
		f.cfgs[k].Clock.(*setClock).now = now
		var got ratekit.Decision
		if o.op == 13 {
			got = ratekit.Decision{Allowed: l.AllowN(n)}
			want = ratekit.Decision{Allowed: want.Allowed}
		} else {
			var err error
			got, err = l.Wait(deadlineAt(now), n)
			wantErr := error(nil)
			switch {
			case n < 0 || n > f.cfgs[k].Burst:
				wantErr = ratekit.ErrExceedsLimit
			case !want.Allowed:
				wantErr = ratekit.ErrWaitExceedsDeadline
			}
			if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				return fmt.Sprintf("limiter %d: Wait(%d) at %v: %v; want %v", k, n, now, err, wantErr), false
			}
		}
		m.Take(now, n)
		if got != want {
			return fmt.Sprintf("limiter %d: [op %d] at %v, %d: %v; model %v%s", k, o.op, now, n, got, want, farSide(got, want)), false
		}
		if got.Allowed && n > 0 {
			f.taken[k] = append(f.taken[k], now)
		}
	case 9:
		c := o.cfg
		c.Clock = &setClock{now: o.clock}
		if err := l.Reconfigure(c); err != nil {
			return fmt.Sprintf("Reconfigure: %v", err), false
		}
		f.cfgs[k] = c
		m.Reconfigure(o.clock, c.Limit, c.Window, c.Burst, c.Name)
	case 10, 11, 12: // a restart; into itself (its Takes are marked); the other's state
		state, err := f.ls[o.from].MarshalBinary()
		if err != nil {
			return fmt.Sprintf("MarshalBinary: %v", err), false
		}
		saved := f.ms[o.from].Clone()
		r := l
		if o.op == 10 {
			c := o.cfg
			c.Clock = &setClock{now: o.clock}
			r = mustNew(f.t, c)
			if o.tmpl {
				r = f.tmpl.New()
				if err := r.Reconfigure(c); err != nil {
					return fmt.Sprintf("Reconfigure: %v", err), false
				}
			}
			f.cfgs[k] = c
			f.ms[k] = model.NewTokenBucket(c.Limit, c.Window, c.Burst, c.Name, t0)
			f.taken[k] = nil
		}
		if err := r.UnmarshalBinary(state); err != nil {
			return fmt.Sprintf("UnmarshalBinary: %v", err), false
		}
		f.ms[k].Restore(saved)
		// The Keyed makes its limiter anew: the restored one.
		f.ls[k] = r
		f.keyed.Delete(k)
	}
	return "", false
}

// deadlineAt is a context that is never done, with the deadline at:
// Wait reads it on the limiter's clock, which the tests set far from
// the real one.
type deadlineAt time.Time

func (d deadlineAt) Deadline() (time.Time, bool) { return time.Time(d), true }
func (deadlineAt) Done() <-chan struct{}         { return nil }
func (deadlineAt) Err() error                    { return nil }
func (deadlineAt) Value(any) any                 { return nil }

// farSide says which side of the model a Decision that differs from it
// falls on: fuller (it admits more, or sooner) or emptier.
func farSide(got, want ratekit.Decision) string {
	switch {
	case got.Allowed != want.Allowed:
		if got.Allowed {
			return " (fuller)"
		}
		return " (emptier)"
	case got.Remaining != want.Remaining:
		if got.Remaining > want.Remaining {
			return " (fuller)"
		}
		return " (emptier)"
	case got.ResetAfter < want.ResetAfter || got.RetryAfter < want.RetryAfter:
		return " (fuller)"
	}
	return " (emptier)"
}

// farBinds reports whether the allowed decision d binds more tightly than
// cur, as TakeAll chooses: less Remaining, or as much and a longer
// ResetAfter.
func farBinds(d, cur ratekit.Decision) bool {
	if d.Remaining != cur.Remaining {
		return d.Remaining < cur.Remaining
	}
	return d.ResetAfter > cur.ResetAfter
}

// farRange returns cfg's fast range in ns: 2^60/q, q the denominator of
// Window/Limit in lowest terms.
func farRange(cfg tokenbucket.Config) time.Duration {
	a, b := int64(cfg.Limit), int64(cfg.Window)
	for b != 0 {
		a, b = b, a%b
	}
	return time.Duration(int64(1<<60) / (int64(cfg.Limit) / a))
}

// rollback checks the limiters after a TakeAll at now that the second
// member alone denied: the second decides as its model at every probed
// time, and the first as its model (the TakeAll decided together) or as
// rolled (a Take and a Refund at now: the general path) at every one, the
// same of the two at all.
func (f *farMix) rollback(rolled *model.TokenBucket, now time.Time) string {
	probes := append([]time.Time{now, now.Add(-1), now.Add(1), now.Add(time.Second), now.Add(-time.Second)}, farMixAnchors...)
	probes = append(append(probes, f.taken[0]...), f.taken[1]...)
	asKept, asRolled, side := true, true, ""
	for _, at := range probes {
		for _, n := range []int{1, f.cfgs[0].Burst} {
			got, kept := f.ls[0].Peek(at, n), f.ms[0].Peek(at, n)
			asKept = asKept && got == kept
			asRolled = asRolled && got == rolled.Peek(at, n)
			if got != kept && side != " (fuller)" {
				side = farSide(got, kept)
			}
		}
		b := f.cfgs[1].Burst
		if got, want := f.ls[1].Peek(at, b), f.ms[1].Peek(at, b); got != want {
			return fmt.Sprintf("after TakeAll(%v): limiter 1: Peek(%v, %d) = %v; model %v", now, at, b, got, want)
		}
	}
	if !asKept && !asRolled {
		return fmt.Sprintf("after TakeAll(%v), denied by the second member: the first decides as neither its model nor its model rolled back%s", now, side)
	}
	return ""
}
