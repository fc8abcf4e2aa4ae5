package bench

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/rolling"
)

// rollingImpl is ratekit's rolling window in the one-key cases
// (BenchmarkOneKey, BenchmarkOneKeyParallel), as "ratekit-rolling".
//
// Of the peers, only ulule/limiter's memory store anchors windows the same
// way: a key's counter is created with an expiration of now+Period on the
// first request after the previous one expired, which is Rollbar's model.
// It is keyed (a sync.Map of string keys and a mutex per counter), reads
// the real clock itself, and counts denied requests too. sethvargo's
// memorystore anchors a tick grid at a key's first request and refills per
// tick: the nearest thing to a fixed window among the peers. The token
// buckets (x/time/rate, juju, throttled) are what most Go users would
// otherwise pick for "N per window", so the row's ratio is against the
// fastest of all of them, not only against ulule.
var rollingImpl = oneKey{
	name: "ratekit-rolling",
	at: func(tb testing.TB, deny bool, t0 time.Time) explicit {
		l := newRolling(tb, deny)
		if deny {
			l.Take(t0, 1)
		}
		return explicit{take: func(t time.Time) bool { return l.Take(t, 1).Allowed }}
	},
	now: func(tb testing.TB, deny bool) func() bool {
		l := newRolling(tb, deny)
		if deny {
			l.Allow()
		}
		return l.Allow
	},
}

// newRolling returns a rolling window of MaxLimit (2^48) per hour, or of
// one per hour.
func newRolling(tb testing.TB, deny bool) *rolling.Limiter {
	limit := wide(rolling.MaxLimit)
	if deny {
		limit = 1
	}
	return must(rolling.New(rolling.Config{Limit: limit, Window: time.Hour}))
}
