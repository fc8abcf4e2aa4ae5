package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// SeedEnv names the environment variable that replays a randomized check:
// RATEKIT_SEED=<the seed a failing run logged>. Unset, each run draws a
// new seed and logs it.
const SeedEnv = "RATEKIT_SEED"

// seed is Seed, for the checks of Run.
func seed(t *testing.T) uint64 {
	t.Helper()
	return Seed(t)
}

// overflowSamples is how many random counts the overflow check adds to
// its edge values.
const overflowSamples = 24

// overflowCounts returns the counts the overflow check tries: n values at
// the edges of int and of the capacity, where n+used, n·cost or a time
// computed from n wraps, then a seeded random sample spread over every
// magnitude of the whole int range, both signs.
func (s Subject) overflowCounts(rng *rand.Rand) []int {
	c := s.Capacity
	ns := []int{
		math.MaxInt, math.MaxInt - 1, math.MaxInt/2 + 1, math.MaxInt / 2,
		math.MaxInt - c, math.MaxInt - c + 1, math.MaxInt - c + 2,
		c + 1, 2 * c, 1<<31 - 1,
		math.MinInt, math.MinInt + 1, math.MinInt / 2, -c, -1,
	}
	// Past 2^31, where int has 64 bits (the package builds for 32-bit
	// platforms, where the edges of int above are these).
	for _, v := range []int64{1 << 31, 1 << 32, 1<<32 - 1, 1 << 53, 1 << 62} {
		if v <= math.MaxInt {
			ns = append(ns, int(v))
		}
	}
	for range overflowSamples {
		// A magnitude of a uniformly random bit length, so that small,
		// middling and huge counts are all drawn; then a random sign.
		n := int(rng.Int64N(1 << rng.IntN(63)))
		if rng.IntN(2) == 0 {
			n = -n - 1
		}
		ns = append(ns, n)
	}
	return ns
}

// farInstants are the instants the overflow check probes: its Start, a
// century either side, the zero time.Time (year 1) and the last
// nanosecond of year 9999. Durations between them overflow int64
// nanoseconds, which time.Time.Sub saturates.
func (s Subject) farInstants() []time.Time {
	return []time.Time{
		s.Start,
		s.Start.AddDate(-100, 0, 0),
		s.Start.AddDate(100, 0, 0),
		{},
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
	}
}

// fixedClock reads at: it is the clock that Wait is given. A Timer, which
// Wait asks for only when a limiter wrongly reports a finite wait, cancels
// Wait's context so the check fails instead of hanging.
type fixedClock struct {
	*clock.Mock
	at     time.Time
	cancel context.CancelFunc
}

func (c fixedClock) Now() time.Time { return c.at }
func (c fixedClock) Timer(d time.Duration) *clock.Timer {
	c.cancel()
	return c.Mock.Timer(d)
}

// waiter is the Wait method of the algorithm limiters that have one.
type waiter interface {
	Wait(ctx context.Context, n int) (ratekit.Decision, error)
}

// acquirer is the blocking Acquire of the Holders that have one.
type acquirer interface {
	Acquire(ctx context.Context, n int) (release func(), err error)
}

// overflow drives partly used limiters (nothing, one unit or all but one
// taken, at Start or at the instant probed) with counts over the whole int
// range, at Start and at far past and future instants, through Take, Peek,
// Refund (and Release on Holders), TakeAll, AllOf and Wait. A count that
// cannot fit (n < 0 or n > Capacity) is denied with RetryAfter Never and
// changes nothing; a Refund of a count that was never taken never leaves
// the limiter able to admit more than a fresh one; every Remaining is in
// [0, Limit]; nothing panics, a Holder's Release or Refund of more than it
// holds included.
func (s Subject) overflow(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 0x0f10))
	counts := s.overflowCounts(rng)
	for _, at := range s.farInstants() {
		preps := []time.Time{s.Start}
		if at != s.Start {
			preps = append(preps, at) // used at the instant probed, too
		}
		for _, prepAt := range preps {
			for _, used := range []int{0, 1, s.Capacity - 1} {
				sc := overflowScenario{Subject: s, prepAt: prepAt, at: at, used: used, counts: counts}
				sc.name = fmt.Sprintf("%d used at %s, probed at %s", used, stamp(prepAt), stamp(at))
				sc.unfit(t)
				sc.badRefunds(t)
				sc.inRange(t, rng)
			}
		}
	}
}

// stamp prints an instant in full: the far ones are what the check is about.
func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

// overflowScenario is a limiter state and instant the overflow check
// probes: used units taken at prepAt, probed at at.
type overflowScenario struct {
	Subject
	prepAt, at time.Time
	used       int
	counts     []int
	name       string
}

// prepared returns a limiter with the scenario's units taken.
func (sc overflowScenario) prepared(t *testing.T) ratekit.Limiter {
	t.Helper()
	l := sc.New(t)
	if sc.used > 0 {
		if d := l.Take(sc.prepAt, sc.used); !sc.okRemaining(d) {
			t.Fatalf("%s: preparing Take(%d) = %v: Remaining outside [0, %d]", sc.name, sc.used, d, sc.Limit)
		}
	}
	return l
}

func (sc overflowScenario) fits(n int) bool { return n >= 0 && n <= sc.Capacity }

func (sc overflowScenario) okRemaining(d ratekit.Decision) bool {
	return d.Remaining >= 0 && d.Remaining <= sc.Limit
}

// state is what the scenario compares before and after an operation that
// must change nothing.
func (sc overflowScenario) state(l ratekit.Limiter) [2]ratekit.Decision {
	return [2]ratekit.Decision{l.Peek(sc.at, 1), l.Peek(sc.at, sc.Capacity)}
}

// call runs f and returns what it panicked with, nil if it did not.
func call(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// drains drains l at the probed instant, then at prepAt, and returns the
// two counts: with a twin's, they tell whether two states admit the same.
func (sc overflowScenario) drains(l ratekit.Limiter) [2]int {
	return [2]int{drain(l, sc.at, 2*sc.Capacity), drain(l, sc.prepAt, 2*sc.Capacity)}
}

// unfit asks every count that cannot fit, through every entry point, and
// requires a denial with RetryAfter Never that changes nothing.
func (sc overflowScenario) unfit(t *testing.T) {
	l, twin := sc.prepared(t), sc.prepared(t)
	other := sc.New(t)
	before, otherBefore := sc.state(l), sc.state(other)
	all := ratekit.AllOf(l)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := fixedClock{Mock: clock.NewMock(), at: sc.at, cancel: cancel}
	for _, n := range sc.counts {
		if sc.fits(n) {
			continue
		}
		check := func(what string, d ratekit.Decision) {
			t.Helper()
			if d.Allowed || d.RetryAfter != ratekit.Never || !sc.okRemaining(d) {
				t.Fatalf("%s: %s(%d) = %v; want denied with RetryAfter Never and Remaining in [0, %d]",
					sc.name, what, n, d, sc.Limit)
			}
			if after := sc.state(l); after != before {
				t.Fatalf("%s: %s(%d) changed state: Peek(1), Peek(%d) before %v, after %v",
					sc.name, what, n, sc.Capacity, before, after)
			}
		}
		var d ratekit.Decision
		if p := call(func() { d = l.Peek(sc.at, n) }); p != nil {
			t.Fatalf("%s: Peek(%d) panicked: %v", sc.name, n, p)
		}
		check("Peek", d)
		if p := call(func() { d = l.Take(sc.at, n) }); p != nil {
			t.Fatalf("%s: Take(%d) panicked: %v", sc.name, n, p)
		}
		check("Take", d)
		if p := call(func() { d = all.Peek(sc.at, n) }); p != nil {
			t.Fatalf("%s: AllOf(l).Peek(%d) panicked: %v", sc.name, n, p)
		}
		check("AllOf(l).Peek", d)
		if p := call(func() { d = all.Take(sc.at, n) }); p != nil {
			t.Fatalf("%s: AllOf(l).Take(%d) panicked: %v", sc.name, n, p)
		}
		check("AllOf(l).Take", d)
		if p := call(func() { d = ratekit.TakeAll(sc.at, n, other, l) }); p != nil {
			t.Fatalf("%s: TakeAll(%d, fresh, l) panicked: %v", sc.name, n, p)
		}
		check("TakeAll(fresh, l)", d)
		if got := sc.state(other); got != otherBefore {
			t.Fatalf("%s: a denied TakeAll(%d) changed its fresh member: Peek before %v, after %v",
				sc.name, n, otherBefore, got)
		}
		var err error
		if p := call(func() { d, err = ratekit.Wait(ctx, clk, l, n) }); p != nil {
			t.Fatalf("%s: Wait(%d) panicked: %v", sc.name, n, p)
		}
		if !errors.Is(err, ratekit.ErrExceedsLimit) {
			t.Fatalf("%s: Wait(%d) = %v, %v; want ErrExceedsLimit at once", sc.name, n, d, err)
		}
		check("Wait", d)
		if w, ok := l.(waiter); ok {
			// The limiter's own Wait reads its Config clock; for a count
			// that cannot fit it must not read it at all, but return at
			// once (a wrong wait hangs here until the test times out).
			if p := call(func() { d, err = w.Wait(context.Background(), n) }); p != nil {
				t.Fatalf("%s: %T.Wait(%d) panicked: %v", sc.name, l, n, p)
			}
			if !errors.Is(err, ratekit.ErrExceedsLimit) {
				t.Fatalf("%s: %T.Wait(%d) = %v, %v; want ErrExceedsLimit at once", sc.name, l, n, d, err)
			}
			check("Wait method", d)
		}
		if a, ok := l.(acquirer); ok {
			var release func()
			if p := call(func() { release, err = a.Acquire(context.Background(), n) }); p != nil {
				t.Fatalf("%s: %T.Acquire(%d) panicked: %v", sc.name, l, n, p)
			}
			if !errors.Is(err, ratekit.ErrExceedsLimit) {
				t.Fatalf("%s: %T.Acquire(%d) = %v; want ErrExceedsLimit at once", sc.name, l, n, err)
			}
			release()
			check("Acquire", l.Peek(sc.at, n))
		}
	}
	got, want := sc.drains(l), sc.drains(twin)
	if got != want {
		t.Fatalf("%s: after denied counts that cannot fit, drains at the instant probed and at the one used admit %v; an untouched twin admits %v",
			sc.name, got, want)
	}
	if got[0] > sc.Capacity || got[1] > sc.Capacity {
		t.Fatalf("%s: drains at the instant probed and at the one used admit %v; want at most %d at an instant",
			sc.name, got, sc.Capacity)
	}
}

// badRefunds refunds (and on a Holder releases) counts that were never
// taken: negative ones must change nothing, larger ones must not leave
// the limiter able to admit more than a fresh one. None may panic.
func (sc overflowScenario) badRefunds(t *testing.T) {
	type op struct {
		name string
		do   func(l ratekit.Limiter, n int)
	}
	ops := []op{
		{"Refund", func(l ratekit.Limiter, n int) { l.Refund(sc.at, n) }},
		{"AllOf(l).Refund", func(l ratekit.Limiter, n int) { ratekit.AllOf(l).Refund(sc.at, n) }},
	}
	if sc.Holder {
		ops = append(ops,
			op{"Release", func(l ratekit.Limiter, n int) { l.(ratekit.Holder).Release(n) }},
			op{"ReleaseAll", func(l ratekit.Limiter, n int) { ratekit.ReleaseAll(n, l) }})
	}
	for _, o := range ops {
		// Negative counts: nothing changes.
		l, twin := sc.prepared(t), sc.prepared(t)
		before := sc.state(l)
		for _, n := range sc.counts {
			if n >= 0 {
				continue
			}
			if p := call(func() { o.do(l, n) }); p != nil {
				t.Fatalf("%s: %s(%d) panicked: %v", sc.name, o.name, n, p)
			}
			if after := sc.state(l); after != before {
				t.Fatalf("%s: %s(%d) changed state: Peek(1), Peek(%d) before %v, after %v",
					sc.name, o.name, n, sc.Capacity, before, after)
			}
		}
		if got, want := sc.drains(l), sc.drains(twin); got != want {
			t.Fatalf("%s: after %s of negative counts, drains admit %v; an untouched twin admits %v",
				sc.name, o.name, got, want)
		}

		// Counts above what was taken: never more than a fresh limiter.
		l = sc.prepared(t)
		for _, n := range sc.counts {
			if n <= sc.used {
				continue
			}
			if p := call(func() { o.do(l, n) }); p != nil {
				t.Fatalf("%s: %s(%d) panicked: %v", sc.name, o.name, n, p)
			}
			for i, d := range sc.state(l) {
				if !sc.okRemaining(d) {
					t.Fatalf("%s: after %s(%d), Peek(%d) = %v: Remaining outside [0, %d]",
						sc.name, o.name, n, []int{1, sc.Capacity}[i], d, sc.Limit)
				}
			}
		}
		if got := sc.drains(l); got[0] > sc.Capacity || got[1] > sc.Capacity {
			t.Fatalf("%s: after %s of counts above those taken, drains at the instant probed and at the one used admit %v; a fresh limiter admits at most %d at an instant",
				sc.name, o.name, got, sc.Capacity)
		}
	}
}

// inRange drives the limiter at the probed instant with random counts
// that fit, some refunded (or released) at once at the same instant:
// Peek matches Take, Remaining stays in [0, Limit], and the net units
// admitted at the instant, with those used before when they were used at
// it or later, stay within Capacity.
func (sc overflowScenario) inRange(t *testing.T, rng *rand.Rand) {
	l := sc.prepared(t)
	net := 0
	if !sc.prepAt.Before(sc.at) {
		net = sc.used
	}
	for i := 0; i < 4*sc.Capacity && i < 400; i++ {
		n := rng.IntN(sc.Capacity + 1)
		if rng.IntN(3) == 0 {
			n = 1
		}
		var p, d ratekit.Decision
		if pn := call(func() { p = l.Peek(sc.at, n); d = l.Take(sc.at, n) }); pn != nil {
			t.Fatalf("%s: Peek/Take(%d) panicked: %v", sc.name, n, pn)
		}
		if p != d {
			t.Fatalf("%s: step %d: Peek(%d) = %v but Take = %v", sc.name, i, n, p, d)
		}
		if !sc.okRemaining(d) || d.Allowed != (d.RetryAfter == 0) {
			t.Fatalf("%s: step %d: Take(%d) = %v: Remaining outside [0, %d] or RetryAfter inconsistent",
				sc.name, i, n, d, sc.Limit)
		}
		if !d.Allowed {
			continue
		}
		net += n
		if rng.IntN(3) == 0 {
			if pn := call(func() { l.Refund(sc.at, n) }); pn != nil {
				t.Fatalf("%s: Refund(%d) of an allowed Take(%d) panicked: %v", sc.name, n, n, pn)
			}
			net -= n
		}
		if net > sc.Capacity {
			t.Fatalf("%s: step %d: %d units admitted at one instant; want at most %d", sc.name, i, net, sc.Capacity)
		}
	}
	if net += drain(l, sc.at, 2*sc.Capacity); net > sc.Capacity {
		t.Fatalf("%s: %d units admitted at one instant with the drain; want at most %d", sc.name, net, sc.Capacity)
	}
}
