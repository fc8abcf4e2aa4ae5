package bench

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/fixedwindow"
)

// fixedwindowImpl is ratekit's fixed window in the one-key cases
// (BenchmarkOneKey, BenchmarkOneKeyParallel), as "ratekit-fixedwindow":
// windows aligned to Unix time (a per-hour window resets on the hour), one
// atomic word, no lock, n units per call.
//
// What the nearest peers implement (read from their source at the pinned
// versions):
//
//   - ulule/limiter/v3, memory store: a counter per key that starts at the
//     first request after the previous one expired and expires Period
//     later. The window is anchored to the first event (as ratekit's
//     rolling package is), not aligned to the clock. Every Get increments
//     the counter, denied requests included, under a per-key RWMutex in a
//     sync.Map; it reads time.Now itself and builds the prefixed key string
//     on every call.
//   - sethvargo/go-limiter, memorystore: a bucket per key whose windows
//     ("ticks") are counted from the bucket's creation, so aligned to
//     nothing the caller chooses; the refill is computed in floating point
//     (and see sethvargoImpl for what it refills); one token per Take,
//     under a per-key mutex behind an RWMutex'd map; it reads the clock
//     itself.
//
// So the row is like for like in cost per admitted or denied request on
// one hot key, not in semantics: neither peer aligns windows to the clock,
// ulule counts denials, and both are keyed stores (asked for one constant
// key) where a ratekit Limiter is one key; BenchmarkKeyed compares keyed
// stores. The token buckets are in the row too: they are what most Go
// users would pick for "N per hour".
//
// Allowing, it admits 2^40 an hour, which no benchmark reaches; denying,
// one an hour. Both in windows that start a minute before the benchmark's
// start (Offset), so that no run reaches a window's end. Denying, a window's
// end would admit the next call (TestNowDenyAcrossTheHour). Allowing, it
// would fail the parallel cases: a goroutine descheduled before it and
// resumed after the others had moved the limiter into the next window
// brings a time in the window before, and a time before the limiter's
// window is denied (its count is gone: fixedwindow's stale rule, the
// contract), so a run that straddled the hour (any lag, even one call) had
// a denial (TestOwnTimeLagHeadroom).
var fixedwindowImpl = oneKey{
	name: "ratekit-fixedwindow",
	at: func(_ testing.TB, deny bool, t0 time.Time) explicit {
		l := newFixedWindow(deny, t0)
		if deny {
			l.Take(t0, 1)
		}
		return explicit{take: func(t time.Time) bool { return l.Take(t, 1).Allowed }}
	},
	now: func(_ testing.TB, deny bool) func() bool {
		l := newFixedWindow(deny, time.Now())
		if deny {
			l.Allow()
		}
		return l.Allow
	},
}

// newFixedWindow returns a fixed window of 2^40 per hour, or of one an hour
// if deny, whose windows start a minute before start (an hour of margin,
// less that minute, for a run's times; the minute for a time read before
// start).
func newFixedWindow(deny bool, start time.Time) *fixedwindow.Limiter {
	limit := wide(1 << 40)
	if deny {
		limit = 1
	}
	// Windows start where Unix time plus Offset is a multiple of Window.
	ws := start.Add(-time.Minute).UnixNano() % int64(time.Hour)
	return must(fixedwindow.New(fixedwindow.Config{Limit: limit, Window: time.Hour, Offset: -time.Duration(ws)}))
}
