package bench

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/slidingwindow"
)

// slidingwindow.Log and slidingwindow.Counter in the one-key cases
// (BenchmarkOneKey, BenchmarkOneKeyParallel), as "ratekit-slidinglog" and
// "ratekit-slidingcounter".
//
// No peer offers a sliding window. From their documentation and code:
// golang.org/x/time/rate and juju/ratelimit are token buckets,
// go.uber.org/ratelimit a blocking leaky bucket, throttled/v2 is GCRA,
// sethvargo/go-limiter's memorystore a bucket refilled at interval ticks, and
// ulule/limiter's memory store a counter that expires one Period after its
// first hit (a rolling fixed window). None keeps a log, and none estimates a
// sliding count. So these rows compare against the peers doing the nearest
// work per decision, O(1) under a mutex. The Log does more per decision than
// any of them (a search of its log, O(log Limit) loads at worst, and a store
// per unit admitted); the Counter about as much (a CAS, 128-bit products, a
// division when it must weigh the previous window).
//
// Neither can be configured like the others to admit every call (a huge
// limit): the Log keeps 8 bytes per unit of Limit, and the Counter packs its
// counts into one word (MaxCounterLimit). So when allowing at an explicit
// time each runs at a pace below its limit, and their parallel goroutines
// share one advancing time (see explicit.ordered), so that together they
// still run at that pace. On one goroutine (BenchmarkOneKey) the Log admits
// the mail API's 600 a minute and runs at half that, and the Counter admits
// its largest limit for a one-second window, 32,767, and runs at a quarter.
//
// In parallel that is not enough, and each is configured apart (oneKey's
// shared). A goroutine takes its time, and if it is descheduled before its
// Take runs, it brings that time back stale by every call the others made
// meanwhile. On the shared 2-core machine (load 7) a goroutine came back up
// to 960,000 calls late (120 ms off its core), and lags over 2^17 calls came
// in most 1-second runs. A stale time is judged by itself, counting the
// units admitted after it too (slidingwindow's doc, "Time and state"), so
// each of those calls counts against it: the Log admits a time c calls
// stale only while its live units plus c stay under its Limit, and the
// Counter only while c calls span less of a window than its load leaves
// free (at half load, c < Limit/4: a stale time in the previous fixed
// window counts both windows in full and the one before as full,
// weighted). That is the contract, not a defect: a stale time never admits
// more than a later one. With the one-goroutine configurations a lag of
// 300 calls (Log) or about 6,000 (Counter) was a denial, and a run of
// RESULTS.md's commands failed. So in parallel the limits are the largest
// each allows, to absorb a lag of 2^23 calls (about 1 s at 120 ns a call)
// at any phase (TestOrderedLagHeadroom); a longer one fails the case's
// check, as it should, rather than pass unseen:
//
//   - the Log admits MaxLogLimit, 2^24, a minute at the same pace, a call
//     every 200 ms: 300 units live, as at 600 a minute, so its search
//     costs what it did; the other 2^24-300 slots are headroom for lag.
//     Its ring is 128 MiB, written in order, a slot a call: the parallel
//     case pays for streaming it through memory, which a Log of 600 a
//     minute in cache does not.
//   - the Counter admits MaxCounterLimit(30 days), 67,108,863 in 30 days,
//     at half load, a call every 77 ms, and starts with the previous
//     window at that load, so that every call weighs it (as in the steady
//     state) from the first: a lag of up to Limit/4, 16.7M calls, is
//     admitted. Its work per call does not depend on its Limit or Window.
//
// On the real clock the Log gets 2^20 per 10 ms, more than any loop asks;
// the Counter's highest rate, 31 per µs, is below what a loop asks on one
// core, so it sits out the real-clock allowing cases.

// The allowing explicit configurations, and their paces (see above):
// slidingLog* and slidingCounter* on one goroutine, *Shared in parallel.
var (
	slidingLogAllow  = slidingwindow.Config{Limit: 600, Window: time.Minute}
	slidingLogShared = slidingwindow.Config{Limit: slidingwindow.MaxLogLimit, Window: time.Minute}
	slidingLogStep   = 200 * time.Millisecond // 300 units a minute

	slidingCounterAllow      = slidingwindow.Config{Limit: slidingwindow.MaxCounterLimit(time.Second), Window: time.Second}
	slidingCounterStep       = 4 * slidingCounterAllow.Window / time.Duration(slidingCounterAllow.Limit)
	slidingCounterShared     = slidingwindow.Config{Limit: slidingwindow.MaxCounterLimit(30 * 24 * time.Hour), Window: 30 * 24 * time.Hour}
	slidingCounterSharedStep = 2 * slidingCounterShared.Window / time.Duration(slidingCounterShared.Limit)
)

// slidingLogImpl: slidingLogAllow, or slidingLogShared in parallel, when
// allowing at an explicit time.
var slidingLogImpl = oneKey{
	name: "ratekit-slidinglog",
	at: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		return slidingLogAt(deny, t0, slidingLogAllow)
	},
	shared: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		return slidingLogAt(deny, t0, slidingLogShared)
	},
	now: func(tb testing.TB, deny bool) func() bool {
		cfg := slidingwindow.Config{Limit: 1 << 20, Window: 10 * time.Millisecond}
		if deny {
			cfg = slidingwindow.Config{Limit: 1, Window: time.Hour}
		}
		l := must(slidingwindow.NewLog(cfg))
		if deny {
			l.Allow()
		}
		return l.Allow
	},
}

// slidingLogAt is a Log of cfg at slidingLogStep when allowing, or drained
// at one an hour.
func slidingLogAt(deny bool, t0 time.Time, cfg slidingwindow.Config) explicit {
	if deny {
		cfg = slidingwindow.Config{Limit: 1, Window: time.Hour}
	}
	l := must(slidingwindow.NewLog(cfg))
	if deny {
		l.Take(t0, 1)
	}
	return explicit{
		take:    func(t time.Time) bool { return l.Take(t, 1).Allowed },
		step:    slidingLogStep,
		ordered: true,
	}
}

// slidingCounterImpl: slidingCounterAllow, or slidingCounterShared in
// parallel, when allowing at an explicit time.
var slidingCounterImpl = oneKey{
	name: "ratekit-slidingcounter",
	at: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		return slidingCounterAt(tb, deny, t0, slidingCounterAllow, slidingCounterStep, false)
	},
	shared: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		return slidingCounterAt(tb, deny, t0, slidingCounterShared, slidingCounterSharedStep, true)
	},
	now: func(tb testing.TB, deny bool) func() bool {
		if !deny {
			return nil // no configuration admits every call on the real clock
		}
		c := must(slidingwindow.NewCounter(slidingwindow.Config{Limit: 1, Window: time.Hour}))
		c.Allow()
		return c.Allow
	},
}

// slidingCounterAt is a Counter of cfg at step when allowing, with the
// fixed window before t0's filled to half the Limit if prefill, or drained
// at one an hour.
func slidingCounterAt(tb testing.TB, deny bool, t0 time.Time, cfg slidingwindow.Config, step time.Duration, prefill bool) explicit {
	if deny {
		cfg = slidingwindow.Config{Limit: 1, Window: time.Hour}
	}
	c := must(slidingwindow.NewCounter(cfg))
	switch {
	case deny:
		c.Take(t0, 1)
	case prefill && !c.Take(t0.Add(-cfg.Window), cfg.Limit/2).Allowed:
		tb.Fatal("ratekit-slidingcounter: the previous window's units denied")
	}
	return explicit{
		take:    func(t time.Time) bool { return c.Take(t, 1).Allowed },
		step:    step,
		ordered: true,
	}
}
