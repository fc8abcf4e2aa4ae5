package bench

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/tokenbucket"
)

// tokenbucketImpl is ratekit's token bucket (GCRA, one atomic word) in the
// one-key cases, as plain "ratekit": it does the same job as the peers'
// token buckets (x/time/rate, juju, throttled's GCRA), configured the same:
// 1e9 per second with a burst of 2^40 when allowing, one an hour when
// denying.
var tokenbucketImpl = oneKey{
	name: "ratekit",
	at: func(_ testing.TB, deny bool, t0 time.Time) explicit {
		l := newTokenBucket(deny)
		if deny {
			l.Take(t0, 1)
		}
		return explicit{take: func(t time.Time) bool { return l.Take(t, 1).Allowed }}
	},
	now: func(_ testing.TB, deny bool) func() bool {
		l := newTokenBucket(deny)
		if deny {
			l.Allow()
		}
		return l.Allow
	},
}

// newTokenBucket returns a bucket of 1e9 per second holding 2^40, or of one
// an hour. The burst is 18 minutes of that rate: GCRA sees a stale time as
// that much less capacity (it never admits more for it), and on this shared
// machine a goroutine preempted between time.Now() and Take once brought a
// time over a second old, which a burst of 2^30 (1.07 s) denied.
func newTokenBucket(deny bool) *tokenbucket.Limiter {
	if deny {
		return must(tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1}))
	}
	return must(tokenbucket.New(tokenBucketConfig))
}

// tokenBucketConfig is the allowing bucket of newTokenBucket: it never
// runs dry in a benchmark.
var tokenBucketConfig = tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: wide(1 << 40)}
