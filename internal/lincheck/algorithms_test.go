package lincheck

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// A word-state limiter as the histories drive it.
type stateful interface {
	ratekit.Limiter
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// snapshot is a saved state: bytes from a limiter's MarshalBinary, and the
// model that went through the same operations.
type snapshot[M any] struct {
	b []byte
	m M
}

// snapshots makes count saved states: each a fresh limiter and model
// driven through the same few sequential Takes (whose Decisions must agree:
// a sequential mismatch is reported at once), then marshalled.
func snapshots[L stateful, M any](t *testing.T, r *rand.Rand, count int, step time.Duration,
	newPair func() (L, M), take func(m M, now time.Duration, n int) ratekit.Decision) []snapshot[M] {
	t.Helper()
	var out []snapshot[M]
	for range count {
		l, m := newPair()
		now := time.Duration(0)
		for range r.IntN(12) {
			now += time.Duration(r.Int64N(int64(step))) - step/4
			n := 1 + r.IntN(3)
			if got, want := l.Take(t0.Add(now), n), take(m, now, n); got != want {
				t.Fatalf("snapshot: sequential Take(+%v, %d) = %v; the model says %v", now, n, got, want)
			}
		}
		b, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, snapshot[M]{b, m})
	}
	return out
}

// wordOps returns do for the operations every word-state limiter has:
// Take, Peek, Refund, Unmarshal of snaps; reconfigure handles Reconfigure.
func wordOps[M any](l stateful, snaps []snapshot[M], reconfigure func(in input) error) func(in input) output {
	return func(in input) output {
		switch in.Kind {
		case opTake:
			return output{D: l.Take(t0.Add(in.Now), in.N)}
		case opPeek:
			return output{D: l.Peek(t0.Add(in.Now), in.N)}
		case opRefund:
			l.Refund(t0.Add(in.At), in.N)
		case opReconfigure:
			return output{Err: errText(reconfigure(in))}
		case opRestore:
			return output{Err: errText(l.UnmarshalBinary(snaps[in.Arg].b))}
		}
		return output{}
	}
}

// wordNext generates Take, Peek, Refund, Reconfigure (of configs configs)
// and Unmarshal (of snaps snapshots), Takes the most.
func wordNext(configs, snaps int) func(g *goroutine) input {
	return func(g *goroutine) input {
		in := input{Now: g.now(), N: g.units()}
		switch k := g.r.IntN(20); {
		case k < 10:
			in.Kind = opTake
		case k < 14:
			in.Kind = opPeek
		case k < 17:
			in.Kind = opRefund
			in.At = g.refundAt(in.Now)
		case k < 19:
			in.Kind, in.Arg = opReconfigure, g.r.IntN(configs)
		default:
			in.Kind, in.Arg = opRestore, g.r.IntN(snaps)
		}
		return in
	}
}

const nSnapshots = 3

// yieldHook is an OnLimitReached that yields, so that other operations run
// while a denied Take is in flight.
func yieldHook(ratekit.Decision) { runtime.Gosched() }

// tokenbucket: rates whose time scales divide one another (q = 1 or 3), so
// that a state restored under another of them is kept exactly.
var bucketConfigs = []tokenbucket.Config{
	{Limit: 10, Window: time.Second, Burst: 5, Name: "a"},
	{Limit: 4, Window: time.Second, Burst: 3, Name: "b"},
	{Limit: 20, Window: time.Second, Burst: 8, Name: "a"},
	{Limit: 3, Window: time.Second, Burst: 2, Name: "c"},
}

func newBucket(t *testing.T, cfg tokenbucket.Config) *tokenbucket.Limiter {
	t.Helper()
	cfg.Clock = fixedClock{t: t0}
	l, err := tokenbucket.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newBucketModel(cfg tokenbucket.Config) *model.TokenBucket {
	return model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
}

var bucketModel = &modelOf[*model.TokenBucket]{
	clone: (*model.TokenBucket).Clone,
	desc:  (*model.TokenBucket).State,
}

// bucketMaxBurst is the largest Burst of bucketConfigs: a Take may find
// the state of one config, raise the stamp bound, and then, its CAS lost to
// a Reconfigure, be denied under another config with a smaller Burst.
var bucketMaxBurst = slices.MaxFunc(bucketConfigs, func(a, b tokenbucket.Config) int { return a.Burst - b.Burst }).Burst

// bucketChecker is the porcupine model of a token bucket starting at init,
// whose operations apply decides, for histories passed through withStamps:
// it is deterministic but for the Stamps, which raise the bound on stamps to
// their time or leave it.
func bucketChecker(init func() *model.TokenBucket, apply func(*model.TokenBucket, input) output) porcupine.Model {
	a := *bucketModel
	a.apply = apply
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{a.state(init())} },
		Step: func(s, inAny, outAny any) []any {
			st, in, out := s.(*mstate[*model.TokenBucket]), inAny.(input), outAny.(output)
			if in.Kind == opStamp {
				m := st.m.Clone()
				m.Stamp(t0.Add(in.Now))
				return []any{st, a.state(m)}
			}
			next, want := st.step(in)
			if want != out {
				return nil
			}
			return []any{next}
		},
		Equal: func(a, b any) bool { return a.(state).key() == b.(state).key() },
		Hash: func(s any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(s.(state).key()))
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string { return fmt.Sprintf("%v -> %v", in, out) },
		DescribeState:     func(s any) string { return s.(state).key() },
	}
	return nm.ToModel()
}

func TestTokenBucket(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return tokenBucketHistory(t, r, func(l *tokenbucket.Limiter) stateful { return l })
	})
}

// tokenBucketHistory is a history of a token bucket, with wrap choosing
// what the goroutines call (the limiter itself, or a broken variant).
func tokenBucketHistory(t *testing.T, r *rand.Rand, wrap func(*tokenbucket.Limiter) stateful) *history {
	snaps := snapshots(t, r, nSnapshots, 150*time.Millisecond,
		func() (*tokenbucket.Limiter, *model.TokenBucket) {
			return newBucket(t, bucketConfigs[0]), newBucketModel(bucketConfigs[0])
		},
		func(m *model.TokenBucket, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) })
	l := newBucket(t, bucketConfigs[0])
	w := wrap(l)
	a := *bucketModel
	a.apply = func(m *model.TokenBucket, in input) output {
		switch in.Kind {
		case opTake:
			return output{D: m.Take(t0.Add(in.Now), in.N)}
		case opPeek:
			return output{D: m.Peek(t0.Add(in.Now), in.N)}
		case opRefund:
			m.Refund(t0.Add(in.At), in.N)
		case opReconfigure:
			c := bucketConfigs[in.Arg]
			m.Reconfigure(t0.Add(in.Now), c.Limit, c.Window, c.Burst, c.Name)
		case opRestore:
			m.Restore(snaps[in.Arg].m)
		}
		return output{}
	}
	return &history{
		do: wordOps(w, snaps, func(in input) error {
			c := bucketConfigs[in.Arg]
			c.Clock = fixedClock{t: t0.Add(in.Now)}
			return l.Reconfigure(c)
		}),
		model:      bucketChecker(func() *model.TokenBucket { return newBucketModel(bucketConfigs[0]) }, a.apply),
		stampBurst: bucketMaxBurst,
		next:       wordNext(len(bucketConfigs), nSnapshots),
	}
}

// fixedwindow: windows of one and two seconds, one with an offset; some with
// OnLimitReached (its calls are not observed, but its mark is state).
var windowConfigs = []fixedwindow.Config{
	{Limit: 5, Window: time.Second, Name: "a"},
	{Limit: 3, Window: time.Second, Name: "b", OnLimitReached: yieldHook},
	{Limit: 8, Window: time.Second, Offset: 250 * time.Millisecond, Name: "a"},
	{Limit: 4, Window: 2 * time.Second, Name: "c", OnLimitReached: yieldHook},
}

func newWindowModel(c fixedwindow.Config) *model.FixedWindow {
	return model.NewFixedWindow(c.Limit, c.Window, c.Offset, c.Name, c.OnLimitReached != nil)
}

func TestFixedWindow(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		newL := func() *fixedwindow.Limiter {
			c := windowConfigs[0]
			c.Clock = fixedClock{t: t0}
			l, err := fixedwindow.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		snaps := snapshots(t, r, nSnapshots, 300*time.Millisecond,
			func() (*fixedwindow.Limiter, *model.FixedWindow) { return newL(), newWindowModel(windowConfigs[0]) },
			func(m *model.FixedWindow, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) })
		l := newL()
		a := &modelOf[*model.FixedWindow]{clone: (*model.FixedWindow).Clone, desc: (*model.FixedWindow).State}
		a.apply = func(m *model.FixedWindow, in input) output {
			switch in.Kind {
			case opTake:
				return output{D: m.Take(t0.Add(in.Now), in.N)}
			case opPeek:
				return output{D: m.Peek(t0.Add(in.Now), in.N)}
			case opRefund:
				m.Refund(t0.Add(in.At), in.N)
			case opReconfigure:
				c := windowConfigs[in.Arg]
				m.Reconfigure(c.Limit, c.Window, c.Offset, c.Name, c.OnLimitReached != nil)
			case opRestore:
				m.Restore(snaps[in.Arg].m)
			}
			return output{}
		}
		return &history{
			do: wordOps(l, snaps, func(in input) error {
				c := windowConfigs[in.Arg]
				c.Clock = fixedClock{t: t0.Add(in.Now)}
				return l.Reconfigure(c)
			}),
			model: porcupineModel(func() state { return a.state(newWindowModel(windowConfigs[0])) }),
			next:  wordNext(len(windowConfigs), nSnapshots),
		}
	})
}

var rollingConfigs = []rolling.Config{
	{Limit: 5, Window: time.Second, Name: "a"},
	{Limit: 3, Window: time.Second, Name: "b", OnLimitReached: yieldHook},
	{Limit: 8, Window: 500 * time.Millisecond, Name: "a"},
	{Limit: 4, Window: 2 * time.Second, Name: "c", OnLimitReached: yieldHook},
}

func newRollingModel(c rolling.Config) *model.Rolling {
	return model.NewRolling(c.Limit, c.Window, c.Name, c.OnLimitReached != nil)
}

func TestRolling(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		newL := func() *rolling.Limiter {
			c := rollingConfigs[0]
			c.Clock = fixedClock{t: t0}
			l, err := rolling.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		snaps := snapshots(t, r, nSnapshots, 300*time.Millisecond,
			func() (*rolling.Limiter, *model.Rolling) { return newL(), newRollingModel(rollingConfigs[0]) },
			func(m *model.Rolling, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) })
		l := newL()
		a := &modelOf[*model.Rolling]{clone: (*model.Rolling).Clone, desc: (*model.Rolling).State}
		a.apply = func(m *model.Rolling, in input) output {
			switch in.Kind {
			case opTake:
				return output{D: m.Take(t0.Add(in.Now), in.N)}
			case opPeek:
				return output{D: m.Peek(t0.Add(in.Now), in.N)}
			case opRefund:
				m.Refund(t0.Add(in.At), in.N)
			case opReconfigure:
				c := rollingConfigs[in.Arg]
				m.Reconfigure(c.Limit, c.Window, c.Name, c.OnLimitReached != nil)
			case opRestore:
				m.Restore(snaps[in.Arg].m)
			}
			return output{}
		}
		return &history{
			do: wordOps(l, snaps, func(in input) error {
				c := rollingConfigs[in.Arg]
				c.Clock = fixedClock{t: t0.Add(in.Now)}
				return l.Reconfigure(c)
			}),
			model: porcupineModel(func() state { return a.state(newRollingModel(rollingConfigs[0])) }),
			next:  wordNext(len(rollingConfigs), nSnapshots),
		}
	})
}

var logConfigs = []slidingwindow.Config{
	{Limit: 5, Window: time.Second, Name: "a"},
	{Limit: 3, Window: time.Second, Name: "b"},
	{Limit: 8, Window: time.Second, Name: "a"},
	{Limit: 4, Window: 500 * time.Millisecond, Name: "c"},
}

func TestSlidingLog(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		newL := func() *slidingwindow.Log {
			l, err := slidingwindow.NewLog(logConfigs[0])
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		newM := func() *model.SlidingLog {
			c := logConfigs[0]
			return &model.SlidingLog{Limit: c.Limit, Window: c.Window, Name: c.Name}
		}
		snaps := snapshots(t, r, nSnapshots, 300*time.Millisecond,
			func() (*slidingwindow.Log, *model.SlidingLog) { return newL(), newM() },
			func(m *model.SlidingLog, now time.Duration, n int) ratekit.Decision { return m.Take(now, n) })
		l := newL()
		a := &modelOf[*model.SlidingLog]{clone: (*model.SlidingLog).Clone, desc: (*model.SlidingLog).State}
		a.apply = func(m *model.SlidingLog, in input) output {
			switch in.Kind {
			case opTake:
				return output{D: m.Take(in.Now, in.N)}
			case opPeek:
				return output{D: m.Peek(in.Now, in.N)}
			case opRefund:
				m.Refund(in.At, in.N)
			case opReconfigure:
				c := logConfigs[in.Arg]
				m.Reconfigure(c.Limit, c.Window)
				m.Name = c.Name
			case opRestore:
				m.Restore(snaps[in.Arg].m)
			}
			return output{}
		}
		return &history{
			do:    wordOps(l, snaps, func(in input) error { return l.Reconfigure(logConfigs[in.Arg]) }),
			model: porcupineModel(func() state { return a.state(newM()) }),
			next:  wordNext(len(logConfigs), nSnapshots),
		}
	})
}

// The Counter's Reconfigure keeps the Window (a change of Window is not
// modelled).
var counterConfigs = []slidingwindow.Config{
	{Limit: 5, Window: time.Second, Name: "a"},
	{Limit: 3, Window: time.Second, Name: "b"},
	{Limit: 8, Window: time.Second, Name: "a"},
	{Limit: 12, Window: time.Second, Name: "c"},
}

func TestSlidingCounter(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		newL := func() *slidingwindow.Counter {
			l, err := slidingwindow.NewCounter(counterConfigs[0])
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		newM := func() *model.SlidingCounter {
			c := counterConfigs[0]
			return &model.SlidingCounter{Limit: c.Limit, Window: c.Window, Name: c.Name}
		}
		snaps := snapshots(t, r, nSnapshots, 300*time.Millisecond,
			func() (*slidingwindow.Counter, *model.SlidingCounter) { return newL(), newM() },
			func(m *model.SlidingCounter, now time.Duration, n int) ratekit.Decision {
				return m.Take(t0.Add(now), n)
			})
		l := newL()
		a := &modelOf[*model.SlidingCounter]{clone: (*model.SlidingCounter).Clone, desc: (*model.SlidingCounter).State}
		a.apply = func(m *model.SlidingCounter, in input) output {
			switch in.Kind {
			case opTake:
				return output{D: m.Take(t0.Add(in.Now), in.N)}
			case opPeek:
				return output{D: m.Peek(t0.Add(in.Now), in.N)}
			case opRefund:
				m.Refund(t0.Add(in.At), in.N)
			case opReconfigure:
				c := counterConfigs[in.Arg]
				m.Reconfigure(c.Limit, c.Name)
			case opRestore:
				m.Restore(snaps[in.Arg].m)
			}
			return output{}
		}
		return &history{
			do:    wordOps(l, snaps, func(in input) error { return l.Reconfigure(counterConfigs[in.Arg]) }),
			model: porcupineModel(func() state { return a.state(newM()) }),
			next:  wordNext(len(counterConfigs), nSnapshots),
		}
	})
}

// concurrency: the semaphore's decisions are checked exactly; the hold-time
// estimate is sampled lossily by design (an admission that cannot take the
// estimator's lock skips its sample), so RetryAfter and ResetAfter are
// checked only for their class (0, a positive estimate, Never) and the
// estimator is left out of the state.
//
// The configurations have distinct Names, so a Decision that mixed the Limit
// of one with the Name of another (as a Take racing a Reconfigure once did:
// concurrency's TestReconfigureTornPolicy) linearizes no sequence of calls.
var concConfigs = []concurrency.Config{
	{Limit: 5, Name: "a"},
	{Limit: 3, Name: "b"},
	{Limit: 8, Name: "c"},
}

func coarse(d ratekit.Decision) ratekit.Decision {
	class := func(v time.Duration) time.Duration {
		switch {
		case v == ratekit.Never:
			return ratekit.Never
		case v > 0:
			return 1
		}
		return v
	}
	d.RetryAfter, d.ResetAfter = class(d.RetryAfter), class(d.ResetAfter)
	return d
}

func TestConcurrency(t *testing.T) {
	mustCheck(t, 50*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		c0 := concConfigs[0]
		c0.Clock = fixedClock{t: t0}
		l, err := concurrency.New(c0)
		if err != nil {
			t.Fatal(err)
		}
		var snaps [][]byte
		for range nSnapshots {
			s, err := concurrency.New(c0)
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			for range 1 + r.IntN(20) {
				now = now.Add(time.Duration(r.Int64N(int64(time.Millisecond))))
				if s.Take(now, 1).Allowed {
					s.Release(1)
				}
			}
			b, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, b)
		}
		a := &modelOf[*model.Concurrency]{
			clone: (*model.Concurrency).Clone,
			desc: func(m *model.Concurrency) string {
				return fmt.Sprintf("%q limit=%d held=%d", m.Name, m.Limit, m.Held)
			},
		}
		a.apply = func(m *model.Concurrency, in input) output {
			switch in.Kind {
			case opTake:
				return output{D: coarse(m.Take(t0.Add(in.Now), in.N))}
			case opPeek:
				return output{D: coarse(m.Peek(t0.Add(in.Now), in.N))}
			case opRelease:
				m.Release(t0.Add(in.Now), in.N)
			case opReconfigure:
				c := concConfigs[in.Arg]
				m.Reconfigure(t0.Add(in.Now), c.Limit, c.Name)
			case opRestore:
				// Only the estimate changes, which is not checked.
			}
			return output{}
		}
		return &history{
			do: func(in input) output {
				switch in.Kind {
				case opTake:
					return output{D: coarse(l.Take(t0.Add(in.Now), in.N))}
				case opPeek:
					return output{D: coarse(l.Peek(t0.Add(in.Now), in.N))}
				case opRelease:
					l.Release(in.N)
				case opReconfigure:
					c := concConfigs[in.Arg]
					c.Clock = fixedClock{t: t0.Add(in.Now)}
					return output{Err: errText(l.Reconfigure(c))}
				case opRestore:
					return output{Err: errText(l.UnmarshalBinary(snaps[in.Arg]))}
				}
				return output{}
			},
			model: porcupineModel(func() state { return a.state(model.NewConcurrency(c0.Limit, c0.Name, t0)) }),
			next: func(g *goroutine) input {
				in := input{Now: g.now(), N: g.units()}
				switch k := g.r.IntN(20); {
				case k < 8:
					in.Kind = opTake
				case k < 11:
					in.Kind = opPeek
				case k < 17:
					// Release what this goroutine holds, or part of it.
					in.Kind, in.N = opRelease, 0
					if g.held > 0 {
						in.N = 1 + g.r.IntN(g.held)
					}
				case k < 19:
					in.Kind, in.Arg = opReconfigure, g.r.IntN(len(concConfigs))
				default:
					in.Kind, in.Arg = opRestore, g.r.IntN(len(snaps))
				}
				return in
			},
		}
	})
}
