package bench

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/juju/ratelimit"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ululemem "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"
)

// One limiter, one key: the cost of a single decision.
//
// Every implementation is built twice per benchmark, once so that it admits
// every call of the run (a rate and burst no loop can reach) and once so
// that it denies every call (drained, one unit an hour), and each benchmark
// checks after its loop that it got the decisions it is named for.
//
// The cases differ in how the time reaches the limiter:
//
//   - explicit: the caller passes the time (ratekit's Take(now, n), x/time/rate's
//     AllowN(t, n)), advancing by a fixed step per call when allowing and
//     fixed when denying. It starts from a time.Now() read as the
//     benchmark starts, so it carries a monotonic reading, as the time a
//     server reads once per request and passes to its limiters does (Sub
//     of two such times is a subtraction; of wall times, a longer path
//     with overflow checks). juju's bucket and throttled's store take no time
//     per call, but read an injectable clock (juju's NewBucketWithClock,
//     throttled's MemStore.SetTimeNow, both documented for tests); here that
//     clock returns the time the benchmark stored just before the call, so
//     they pay an atomic store and load where the others pass an argument.
//     sethvargo and ulule read the real clock inside and have no
//     explicit-time form: they are not in these cases.
//   - now: everyone reads the real clock: ratekit's and x/time/rate's
//     Allow(), juju's TakeAvailable, and the keyed stores of sethvargo
//     (which reads it through a linkname to the runtime's time.now), ulule
//     and throttled, asked for one constant key (their map lookup is part
//     of what they cost for one key, and they offer no unkeyed form).
//
// go.uber.org/ratelimit is not here: its only operation, Take, is a blocking
// pacer that sleeps until the next slot and never refuses, so it can neither
// allow nor deny (see BenchmarkPace for the case it can do).
//
// Where a ratekit algorithm has no configuration that admits every call of a
// case, it is left out of that case rather than measured on another path;
// each algorithm's file says which.

// oneKey is one implementation of the one-key cases.
type oneKey struct {
	name string
	// at builds a limiter that admits (deny false) or denies every call
	// and returns its decision at an explicit time; the calls' times start
	// at t0. nil: no explicit-time form.
	at func(tb testing.TB, deny bool, t0 time.Time) explicit
	// shared, if not nil, replaces at in BenchmarkOneKeyParallel: the
	// same algorithm configured for goroutines that share one time (see
	// explicit.ordered), with room for the lag a descheduled one brings
	// (see the sliding windows' file).
	shared func(tb testing.TB, deny bool, t0 time.Time) explicit
	// now builds the same limiter and returns its decision reading the
	// real clock. nil: the implementation cannot do the case (see its file).
	now func(tb testing.TB, deny bool) func() bool
}

// explicit is a decision at an explicit time, and how the time must advance
// between calls for every call to be admitted.
type explicit struct {
	take func(time.Time) bool
	// step is how far the time advances per call when allowing (0:
	// defaultStep). Denying cases keep the time fixed.
	step time.Duration
	// ordered asks that parallel goroutines share one advancing time (one
	// atomic add per call) rather than each advance its own: the sliding
	// log needs its times nearly in order to keep admitting. It costs that
	// implementation the atomic add; nobody else pays it.
	ordered bool
}

const defaultStep = 100 * time.Nanosecond

// oneKeyImpls are every implementation of the one-key cases: ratekit's
// algorithms (each in its own file) and the peers below.
var oneKeyImpls = []oneKey{
	tokenbucketImpl,
	fixedwindowImpl,
	rollingImpl,
	slidingLogImpl,
	slidingCounterImpl,
	xrateImpl,
	jujuImpl,
	sethvargoImpl,
	ululeImpl,
	throttledImpl,
}

// Deny-heavy limiters of every implementation admit one unit an hour and
// are drained before the benchmark starts.

// xrateImpl is golang.org/x/time/rate: a token bucket with float tokens
// under a mutex. AllowN(t, n) is its explicit-time form.
var xrateImpl = oneKey{
	name: "xrate",
	at: func(_ testing.TB, deny bool, t0 time.Time) explicit {
		l := newXrate(deny)
		if deny {
			l.AllowN(t0, 1)
		}
		return explicit{take: func(t time.Time) bool { return l.AllowN(t, 1) }}
	},
	now: func(_ testing.TB, deny bool) func() bool {
		l := newXrate(deny)
		if deny {
			l.Allow()
		}
		return l.Allow
	},
}

// newXrate returns an x/time/rate limiter of 1e9 per second and a burst of
// 2^30 (not rate.Inf, which skips the bucket), or of one an hour.
func newXrate(deny bool) *rate.Limiter {
	if deny {
		return rate.NewLimiter(rate.Every(time.Hour), 1)
	}
	return rate.NewLimiter(1e9, 1<<30)
}

// jujuImpl is github.com/juju/ratelimit: a token bucket under a mutex,
// refilled by whole quanta per fill interval. TakeAvailable is its
// non-blocking take.
var jujuImpl = oneKey{
	name: "juju",
	at: func(_ testing.TB, deny bool, t0 time.Time) explicit {
		clk := &fakeClock{base: t0}
		b := newJuju(deny, clk)
		if deny {
			clk.set(t0)
			b.TakeAvailable(1)
		}
		return explicit{take: func(t time.Time) bool {
			clk.set(t)
			return b.TakeAvailable(1) == 1
		}}
	},
	now: func(_ testing.TB, deny bool) func() bool {
		b := newJuju(deny, nil)
		if deny {
			b.TakeAvailable(1)
		}
		return func() bool { return b.TakeAvailable(1) == 1 }
	},
}

// newJuju returns a juju bucket of 1000 tokens per µs holding up to 2^40,
// starting full, or of one an hour; clk nil is the real clock.
func newJuju(deny bool, clk ratelimit.Clock) *ratelimit.Bucket {
	fill, capacity, quantum := time.Microsecond, int64(1)<<40, int64(1000)
	if deny {
		fill, capacity, quantum = time.Hour, 1, 1
	}
	if clk == nil {
		return ratelimit.NewBucketWithQuantum(fill, capacity, quantum)
	}
	return ratelimit.NewBucketWithQuantumAndClock(fill, capacity, quantum, clk)
}

// sethvargoImpl is github.com/sethvargo/go-limiter's memorystore: a map of
// buckets under a sync.RWMutex, a mutex per bucket, refilled once per
// Interval tick. It takes one token per call and reads the clock itself.
var sethvargoImpl = oneKey{
	name: "sethvargo",
	now: func(tb testing.TB, deny bool) func() bool {
		// Tokens per Interval, refilled at Interval ticks from a key's
		// first request: within the hour of a benchmark an allowing store
		// never refills and never needs to. It could not refill a huge
		// number per short interval: v0.7.1 sets the bucket at a tick to
		// min(ticks·Interval/Tokens, Tokens), with Interval in ns (its
		// fillRate, documented as tokens per ns, is ns per token), which
		// is a full bucket only while Tokens² <= Interval: 100,000 per
		// second refills 10,000 a second.
		tokens := uint64(1) << 62
		if deny {
			tokens = 1
		}
		s := must(memorystore.New(&memorystore.Config{Tokens: tokens, Interval: time.Hour}))
		tb.Cleanup(func() { _ = s.Close(context.Background()) })
		ctx := context.Background()
		take := func() bool {
			_, _, _, ok, err := s.Take(ctx, "key")
			if err != nil {
				panic(err)
			}
			return ok
		}
		if deny {
			take()
		}
		return take
	},
}

// ululeImpl is github.com/ulule/limiter/v3's memory store: a sync.Map of
// counters, each under a sync.RWMutex, that expire one Period after the
// first hit of a key (the same first-event-anchored window as ratekit's
// rolling). It counts denied requests too, so a denial writes, and it
// builds its map key ("limiter:" + key) on every call.
var ululeImpl = oneKey{
	name: "ulule",
	now: func(tb testing.TB, deny bool) func() bool {
		limit := int64(math.MaxInt64)
		if deny {
			limit = 1
		}
		l := ulule.New(ululemem.NewStore(), ulule.Rate{Period: time.Hour, Limit: limit})
		ctx := context.Background()
		take := func() bool {
			c, err := l.Get(ctx, "key")
			if err != nil {
				panic(err)
			}
			return !c.Reached
		}
		if deny {
			take()
		}
		return take
	},
}

// throttledImpl is github.com/throttled/throttled/v2's GCRA rate limiter
// over its memstore (New(0): a map under a sync.RWMutex, no LRU), the
// theoretical arrival time CASed in an *int64 per key. Its retry limit on a
// lost CAS (10 by default, then an error) is raised with
// SetMaxCASAttemptsLimit so parallel cases measure contention, not errors.
var throttledImpl = oneKey{
	name: "throttled",
	at: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		clk := &fakeClock{base: t0}
		take := newThrottled(tb, deny, clk)
		if deny {
			clk.set(t0)
			take()
		}
		return explicit{take: func(t time.Time) bool {
			clk.set(t)
			return take()
		}}
	},
	now: func(tb testing.TB, deny bool) func() bool {
		take := newThrottled(tb, deny, nil)
		if deny {
			take()
		}
		return take
	},
}

// newThrottled returns a throttled GCRA limiter's decision for one key, at
// 1e9 per second with a burst of 2^40 or at one an hour (MaxBurst 0 admits
// one at once); clk nil is the real clock. The burst is as large as
// ratekit's (see newTokenBucket) though throttled reads its time just
// before its CAS.
func newThrottled(tb testing.TB, deny bool, clk *fakeClock) func() bool {
	st := must(memstore.New(0))
	if clk != nil {
		st.SetTimeNow(clk.Now)
	}
	quota := throttled.RateQuota{MaxRate: throttled.PerSec(1e9), MaxBurst: wide(1 << 40)}
	if deny {
		quota = throttled.RateQuota{MaxRate: throttled.PerHour(1), MaxBurst: 0}
	}
	l := must(throttled.NewGCRARateLimiterCtx(throttled.WrapStoreWithContext(st), quota))
	l.SetMaxCASAttemptsLimit(1 << 30)
	ctx := context.Background()
	return func() bool {
		limited, _, err := l.RateLimitCtx(ctx, "key", 1)
		if err != nil {
			panic(err)
		}
		return !limited
	}
}

// paths are the two paths every one-key case is measured on.
var paths = []struct {
	name string
	deny bool
}{{"allow", false}, {"deny", true}}

// BenchmarkOneKey is one decision on one goroutine.
func BenchmarkOneKey(b *testing.B) {
	for _, p := range paths {
		for _, impl := range oneKeyImpls {
			if impl.at == nil {
				continue
			}
			b.Run("explicit-"+p.name+"/"+impl.name, func(b *testing.B) {
				t0 := time.Now()
				e := impl.at(b, p.deny, t0)
				step := stepOf(e, p.deny)
				now := t0
				loop(b, impl.name, p.deny, func() bool {
					now = now.Add(step)
					return e.take(now)
				})
			})
		}
	}
	for _, p := range paths {
		for _, impl := range oneKeyImpls {
			if impl.now == nil {
				continue
			}
			b.Run("now-"+p.name+"/"+impl.name, func(b *testing.B) {
				take := impl.now(b, p.deny)
				if take == nil {
					b.Skip("cannot do this case")
				}
				loop(b, impl.name, p.deny, take)
			})
		}
	}
}

// BenchmarkOneKeyParallel is one limiter shared by b.RunParallel's
// goroutines (vary them with -cpu): allowing, every call writes the one
// shared state; denying, every call only reads it (for ratekit; x/time/rate,
// juju, sethvargo and ulule take a mutex either way, and ulule writes).
// In the explicit case each goroutine advances its own time from the same
// start, so times from different goroutines interleave out of order, as
// they do in a server.
func BenchmarkOneKeyParallel(b *testing.B) {
	for _, p := range paths {
		for _, impl := range oneKeyImpls {
			if impl.at == nil {
				continue
			}
			at := impl.at
			if impl.shared != nil {
				at = impl.shared
			}
			b.Run("explicit-"+p.name+"/"+impl.name, func(b *testing.B) {
				t0 := time.Now()
				e := at(b, p.deny, t0)
				step := stepOf(e, p.deny)
				if e.ordered && step != 0 {
					var tick atomic.Int64
					parallel(b, impl.name, p.deny, func() func() bool {
						return func() bool { return e.take(t0.Add(time.Duration(tick.Add(int64(step))))) }
					})
					return
				}
				parallel(b, impl.name, p.deny, func() func() bool {
					now := own(t0)
					return func() bool {
						*now = now.Add(step)
						return e.take(*now)
					}
				})
			})
		}
	}
	for _, p := range paths {
		for _, impl := range oneKeyImpls {
			if impl.now == nil {
				continue
			}
			b.Run("now-"+p.name+"/"+impl.name, func(b *testing.B) {
				take := impl.now(b, p.deny)
				if take == nil {
					b.Skip("cannot do this case")
				}
				parallel(b, impl.name, p.deny, func() func() bool { return take })
			})
		}
	}
}

// stepOf is how far e's time advances per call on the path.
func stepOf(e explicit, deny bool) time.Duration {
	switch {
	case deny:
		return 0
	case e.step == 0:
		return defaultStep
	}
	return e.step
}

var sinkTime time.Time

// BenchmarkClockRead is the floor under every real-clock case: time.Now()
// alone, which every implementation there calls at least once per
// decision. It has no ratekit row; its one "peer", stdlib, is the
// reference the "now" rows are read against.
func BenchmarkClockRead(b *testing.B) {
	b.Run("time.Now/stdlib", func(b *testing.B) {
		loop(b, "stdlib", false, func() bool {
			sinkTime = time.Now()
			return true
		})
	})
}

// BenchmarkAllowFloor is the floor under the token bucket's now-allow
// rows: what one admission reading the real clock costs with a limiter's
// arithmetic left out, on this machine. Run it in the process that runs
// BenchmarkOneKey(Parallel)'s now-allow rows, and read those against it:
//
//   - since: time.Since(epoch) alone, the monotonic read tokenbucket's
//     Allow makes (the cheapest public clock read; time.Now reads the wall
//     clock too);
//   - since+cas: that and one load and compare-and-swap of a word, a
//     one-word GCRA with nothing else;
//   - since+raise+cas: that and, first, the raise of a second word on the
//     same cache line (a load, and a compare-and-swap when the stamp is
//     new), as tokenbucket raises the stamp bound its exact refunds need.
//
// serial/ rows run on one goroutine, parallel/ rows on b.RunParallel's
// (vary with -cpu), all sharing one pair of words.
func BenchmarkAllowFloor(b *testing.B) {
	type words struct{ w, z atomic.Int64 }
	epoch := time.Now()
	ops := []struct {
		name string
		op   func(c *words) bool
	}{
		{"since", func(c *words) bool {
			return time.Since(epoch) != -1
		}},
		{"since+cas", func(c *words) bool {
			s := int64(time.Since(epoch))
			for {
				t := c.w.Load()
				if c.w.CompareAndSwap(t, max(t, s)+1) {
					return true
				}
			}
		}},
		{"since+raise+cas", func(c *words) bool {
			s := int64(time.Since(epoch))
			for {
				t := c.w.Load()
				for z := c.z.Load(); s > z && !c.z.CompareAndSwap(z, s); z = c.z.Load() {
				}
				if c.w.CompareAndSwap(t, max(t, s)+1) {
					return true
				}
			}
		}},
	}
	for _, o := range ops {
		b.Run("serial/"+o.name, func(b *testing.B) {
			c := own(words{})
			loop(b, o.name, false, func() bool { return o.op(c) })
		})
		b.Run("parallel/"+o.name, func(b *testing.B) {
			c := own(words{})
			parallel(b, o.name, false, func() func() bool { return func() bool { return o.op(c) } })
		})
	}
}
