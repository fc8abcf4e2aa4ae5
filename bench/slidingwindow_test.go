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
// time the Log runs at half its limit (the time advances by 2·Window/Limit
// per call) and the Counter at a quarter (4·Window/Limit: a time that a
// preempted goroutine brings back late is evaluated at the start of the
// Counter's window, where the previous window counts in full, so half would
// sometimes deny), and their parallel goroutines share one advancing time
// (see explicit.ordered), so that together they still run at that load.
// On the real clock the Log gets 2^20 per 10 ms, more than any loop asks;
// the Counter's highest rate, 31 per µs, is below what a loop asks on one
// core, so it sits out the real-clock allowing cases.

var (
	slidingLogAllow     = slidingwindow.Config{Limit: 600, Window: time.Minute}
	slidingLogStep      = 2 * slidingLogAllow.Window / time.Duration(slidingLogAllow.Limit)
	slidingCounterAllow = slidingwindow.Config{Limit: slidingwindow.MaxCounterLimit(time.Second), Window: time.Second}
	slidingCounterStep  = 4 * slidingCounterAllow.Window / time.Duration(slidingCounterAllow.Limit)
)

// slidingLogImpl: the mail API's 600 per minute when allowing at an
// explicit time.
var slidingLogImpl = oneKey{
	name: "ratekit-slidinglog",
	at: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		cfg := slidingLogAllow
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

// slidingCounterImpl: the Counter's largest limit for a one-second window
// when allowing at an explicit time.
var slidingCounterImpl = oneKey{
	name: "ratekit-slidingcounter",
	at: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		cfg := slidingCounterAllow
		if deny {
			cfg = slidingwindow.Config{Limit: 1, Window: time.Hour}
		}
		c := must(slidingwindow.NewCounter(cfg))
		if deny {
			c.Take(t0, 1)
		}
		return explicit{
			take:    func(t time.Time) bool { return c.Take(t, 1).Allowed },
			step:    slidingCounterStep,
			ordered: true,
		}
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
