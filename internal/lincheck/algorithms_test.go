package lincheck

import (
	"fmt"
	"hash/fnv"
	"math"
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
	return newBucketAt(t, cfg, t0)
}

// newBucketAt is newBucket with its epoch read at epoch.
func newBucketAt(t *testing.T, cfg tokenbucket.Config, epoch time.Time) *tokenbucket.Limiter {
	t.Helper()
	cfg.Clock = fixedClock{t: epoch}
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
		return tokenBucketHistory(t, r, t0, func(l *tokenbucket.Limiter) stateful { return l })
	})
}

// TestTokenBucketFarEpoch: limiters whose epoch is a second more than 292
// years after t0, so that every time of a history is before the fast
// range and time.Time.Sub reads it as that bound, and whose Reconfigures
// read their clock there too: the first Takes after each, racing Refunds,
// Peeks, other Reconfigures and restores, decide exactly off the fast path
// and store there (past) or move the epoch back (tokenbucket/far.go), and
// decide as the model does.
func TestTokenBucketFarEpoch(t *testing.T) {
	mustCheck(t, 150*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		return tokenBucketHistory(t, r, t0.Add(math.MaxInt64).Add(time.Second), func(l *tokenbucket.Limiter) stateful { return l })
	})
}

// tokenBucketHistory is a history of a token bucket whose epoch is read at
// epoch, and a Reconfigure's clock that far from t0 as its time, with wrap
// choosing what the goroutines call (the limiter itself, or a broken
// variant).
func tokenBucketHistory(t *testing.T, r *rand.Rand, epoch time.Time, wrap func(*tokenbucket.Limiter) stateful) *history {
	snaps := snapshots(t, r, nSnapshots, 150*time.Millisecond,
		func() (*tokenbucket.Limiter, *model.TokenBucket) {
			return newBucketAt(t, bucketConfigs[0], epoch), newBucketModel(bucketConfigs[0])
		},
		func(m *model.TokenBucket, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) })
	l := newBucketAt(t, bucketConfigs[0], epoch)
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
			m.Reconfigure(epoch.Add(in.Now), c.Limit, c.Window, c.Burst, c.Name)
		case opRestore:
			m.Restore(snaps[in.Arg].m)
		}
		return output{}
	}
	return &history{
		do: wordOps(w, snaps, func(in input) error {
			c := bucketConfigs[in.Arg]
			c.Clock = fixedClock{t: epoch.Add(in.Now)}
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

// wordAlg is a word-state algorithm as the histories drive it: its
// limiter, its model (at times relative to t0), and what Reconfigure to
// configuration arg does to each.
type wordAlg[L stateful, M any] struct {
	configs          int
	newLimiter       func() (L, error)
	newModel         func() M
	take, peek       func(m M, now time.Duration, n int) ratekit.Decision
	refund           func(m M, at time.Duration, n int)
	restore          func(m, saved M)
	clone            func(M) M
	desc             func(M) string
	reconfigure      func(l L, arg int, now time.Duration) error
	reconfigureModel func(m M, arg int, now time.Duration)
}

// check runs the linearizability check of w's histories.
func (w wordAlg[L, M]) check(t *testing.T) {
	mustCheck(t, 300*time.Millisecond, func(t *testing.T, r *rand.Rand) *history {
		newL := func() L {
			l, err := w.newLimiter()
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		snaps := snapshots(t, r, nSnapshots, 300*time.Millisecond,
			func() (L, M) { return newL(), w.newModel() }, w.take)
		l := newL()
		a := &modelOf[M]{clone: w.clone, desc: w.desc}
		a.apply = func(m M, in input) output {
			switch in.Kind {
			case opTake:
				return output{D: w.take(m, in.Now, in.N)}
			case opPeek:
				return output{D: w.peek(m, in.Now, in.N)}
			case opRefund:
				w.refund(m, in.At, in.N)
			case opReconfigure:
				w.reconfigureModel(m, in.Arg, in.Now)
			case opRestore:
				w.restore(m, snaps[in.Arg].m)
			}
			return output{}
		}
		return &history{
			do:    wordOps(l, snaps, func(in input) error { return w.reconfigure(l, in.Arg, in.Now) }),
			model: porcupineModel(func() state { return a.state(w.newModel()) }),
			next:  wordNext(w.configs, nSnapshots),
		}
	})
}

func TestFixedWindow(t *testing.T) {
	wordAlg[*fixedwindow.Limiter, *model.FixedWindow]{
		configs: len(windowConfigs),
		newLimiter: func() (*fixedwindow.Limiter, error) {
			c := windowConfigs[0]
			c.Clock = fixedClock{t: t0}
			return fixedwindow.New(c)
		},
		newModel: func() *model.FixedWindow { return newWindowModel(windowConfigs[0]) },
		take:     func(m *model.FixedWindow, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) },
		peek:     func(m *model.FixedWindow, now time.Duration, n int) ratekit.Decision { return m.Peek(t0.Add(now), n) },
		refund:   func(m *model.FixedWindow, at time.Duration, n int) { m.Refund(t0.Add(at), n) },
		restore:  (*model.FixedWindow).Restore,
		clone:    (*model.FixedWindow).Clone,
		desc:     (*model.FixedWindow).State,
		reconfigure: func(l *fixedwindow.Limiter, arg int, now time.Duration) error {
			c := windowConfigs[arg]
			c.Clock = fixedClock{t: t0.Add(now)}
			return l.Reconfigure(c)
		},
		reconfigureModel: func(m *model.FixedWindow, arg int, now time.Duration) {
			c := windowConfigs[arg]
			m.Reconfigure(t0.Add(now), c.Limit, c.Window, c.Offset, c.Name, c.OnLimitReached != nil)
		},
	}.check(t)
}

// rollingConfigs: small Limits, whose block reaches years past its base, so
// that only Reconfigure and UnmarshalBinary replace it; and MaxLimit and
// 2^40, whose blocks reach 4 µs and 2 ms, so that nearly every window a
// Take opens (the steps are 300 ms) needs a new block: Takes and Refunds
// seal and help publish successors (internal/cell's helping mode) under
// each other, and a Reconfigure down from them carries a count above the
// new Limit into widened parameters.
var rollingConfigs = []rolling.Config{
	{Limit: 5, Window: time.Second, Name: "a"},
	{Limit: 3, Window: time.Second, Name: "b", OnLimitReached: yieldHook},
	{Limit: 8, Window: 500 * time.Millisecond, Name: "a"},
	{Limit: 4, Window: 2 * time.Second, Name: "c", OnLimitReached: yieldHook},
	{Limit: wide(rolling.MaxLimit), Window: time.Second, Name: "d"},
	{Limit: wide(1 << 40), Window: 700 * time.Millisecond, Name: "a", OnLimitReached: yieldHook},
}

func newRollingModel(c rolling.Config) *model.Rolling {
	return model.NewRolling(c.Limit, c.Window, c.Name, c.OnLimitReached != nil)
}

func TestRolling(t *testing.T) { rollingAlg(t0).check(t) }

// TestRollingFarEpoch: limiters whose epoch is a second more than 292
// years after t0, so that time.Time.Sub reads every time in the first
// second after t0 as the bound: a window opened there moves the epoch to
// its start (see holds in rolling/state.go), under Takes, Refunds,
// Reconfigures and restores racing it, and decides as the model does.
func TestRollingFarEpoch(t *testing.T) {
	rollingAlg(t0.Add(math.MaxInt64).Add(time.Second)).check(t)
}

// rollingAlg is the rolling limiter and its model, the limiter's first
// epoch at epoch (a Reconfigure reads its clock at the instant of the
// operation).
func rollingAlg(epoch time.Time) wordAlg[*rolling.Limiter, *model.Rolling] {
	return wordAlg[*rolling.Limiter, *model.Rolling]{
		configs: len(rollingConfigs),
		newLimiter: func() (*rolling.Limiter, error) {
			c := rollingConfigs[0]
			c.Clock = fixedClock{t: epoch}
			return rolling.New(c)
		},
		newModel: func() *model.Rolling { return newRollingModel(rollingConfigs[0]) },
		take:     func(m *model.Rolling, now time.Duration, n int) ratekit.Decision { return m.Take(t0.Add(now), n) },
		peek:     func(m *model.Rolling, now time.Duration, n int) ratekit.Decision { return m.Peek(t0.Add(now), n) },
		refund:   func(m *model.Rolling, at time.Duration, n int) { m.Refund(t0.Add(at), n) },
		restore:  (*model.Rolling).Restore,
		clone:    (*model.Rolling).Clone,
		desc:     (*model.Rolling).State,
		reconfigure: func(l *rolling.Limiter, arg int, now time.Duration) error {
			c := rollingConfigs[arg]
			c.Clock = fixedClock{t: t0.Add(now)}
			return l.Reconfigure(c)
		},
		reconfigureModel: func(m *model.Rolling, arg int, now time.Duration) {
			c := rollingConfigs[arg]
			m.Reconfigure(t0.Add(now), c.Limit, c.Window, c.Name, c.OnLimitReached != nil)
		},
	}
}

var logConfigs = []slidingwindow.Config{
	{Limit: 5, Window: time.Second, Name: "a"},
	{Limit: 3, Window: time.Second, Name: "b"},
	{Limit: 8, Window: time.Second, Name: "a"},
	{Limit: 4, Window: 500 * time.Millisecond, Name: "c"},
}

func TestSlidingLog(t *testing.T) {
	wordAlg[*slidingwindow.Log, *model.SlidingLog]{
		configs:    len(logConfigs),
		newLimiter: func() (*slidingwindow.Log, error) { return slidingwindow.NewLog(logConfigs[0]) },
		newModel: func() *model.SlidingLog {
			c := logConfigs[0]
			return &model.SlidingLog{Limit: c.Limit, Window: c.Window, Name: c.Name}
		},
		take:    (*model.SlidingLog).Take,
		peek:    (*model.SlidingLog).Peek,
		refund:  (*model.SlidingLog).Refund,
		restore: (*model.SlidingLog).Restore,
		clone:   (*model.SlidingLog).Clone,
		desc:    (*model.SlidingLog).State,
		reconfigure: func(l *slidingwindow.Log, arg int, _ time.Duration) error {
			return l.Reconfigure(logConfigs[arg])
		},
		reconfigureModel: func(m *model.SlidingLog, arg int, _ time.Duration) {
			c := logConfigs[arg]
			m.Reconfigure(c.Limit, c.Window)
			m.Name = c.Name
		},
	}.check(t)
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
	wordAlg[*slidingwindow.Counter, *model.SlidingCounter]{
		configs:    len(counterConfigs),
		newLimiter: func() (*slidingwindow.Counter, error) { return slidingwindow.NewCounter(counterConfigs[0]) },
		newModel: func() *model.SlidingCounter {
			c := counterConfigs[0]
			return &model.SlidingCounter{Limit: c.Limit, Window: c.Window, Name: c.Name}
		},
		take: func(m *model.SlidingCounter, now time.Duration, n int) ratekit.Decision {
			return m.Take(t0.Add(now), n)
		},
		peek: func(m *model.SlidingCounter, now time.Duration, n int) ratekit.Decision {
			return m.Peek(t0.Add(now), n)
		},
		refund:  func(m *model.SlidingCounter, at time.Duration, n int) { m.Refund(t0.Add(at), n) },
		restore: (*model.SlidingCounter).Restore,
		clone:   (*model.SlidingCounter).Clone,
		desc:    (*model.SlidingCounter).State,
		reconfigure: func(l *slidingwindow.Counter, arg int, _ time.Duration) error {
			return l.Reconfigure(counterConfigs[arg])
		},
		reconfigureModel: func(m *model.SlidingCounter, arg int, _ time.Duration) {
			c := counterConfigs[arg]
			m.Reconfigure(c.Limit, c.Name)
		},
	}.check(t)
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
			case opTryAcquire:
				return output{D: ratekit.Decision{Allowed: m.TryAcquire(t0, in.N)}}
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
				case opTryAcquire:
					return output{D: ratekit.Decision{Allowed: l.TryAcquire(in.N)}}
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
				switch k := g.r.IntN(24); {
				case k < 8:
					in.Kind = opTake
				case k < 12:
					in.Kind = opTryAcquire // x/sync's call: Take's Allowed
				case k < 15:
					in.Kind = opPeek
				case k < 21:
					// Release what this goroutine holds, or part of it.
					in.Kind, in.N = opRelease, 0
					if g.held > 0 {
						in.N = 1 + g.r.IntN(g.held)
					}
				case k < 23:
					in.Kind, in.Arg = opReconfigure, g.r.IntN(len(concConfigs))
				default:
					in.Kind, in.Arg = opRestore, g.r.IntN(len(snaps))
				}
				return in
			},
		}
	})
}
