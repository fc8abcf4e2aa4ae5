package bench

import (
	"context"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/rolling"
)

// Three limits on one request, all or none: a per-second rate, a per-day
// quota and a concurrency limit (shaped after Sanity's 25 per second and
// 100 concurrent and Rollbar's daily quota), where a request that one of
// them refuses must count against none of the others. The per-second rate
// is a token bucket, the one rate limiter every peer has; Sanity's own 25
// per second slides (slidingwindow), which this benchmark does not model.
//
// ratekit: ratekit.AllOf(tokenbucket per second, rolling per day,
// concurrency), Take then Release.
//
// Peers have no composite; each is composed by hand in its documented way
// of giving back what a refused request took, with an x/sync semaphore as
// the concurrency limit:
//
//   - xrate: two x/time/rate limiters (the daily quota as a bucket of the
//     day's quota refilled over a day: x/time/rate has no window), each
//     asked with ReserveN(t, 1), which is its documented way to take
//     tokens that may have to be given back: a reservation that must wait,
//     or that a later member refuses, is cancelled with CancelAt(t).
//     ReserveN returns a *Reservation, which allocates.
//   - sethvargo: two memorystores, Take for one key, the give-back being
//     Burst(key, 1), which adds a token back under the store's write lock.
//     It reads the real clock itself, so it is only in the "now" cases. Its
//     "per second" store refills per hour: memorystore cannot refill a
//     second's worth no loop reaches (see sethvargoImpl).
//
// juju (no give-back), throttled (no give-back), ulule (no give-back in
// its documented API) and uber (blocking, no refusal) cannot do all or
// none.
//
// "allow": every member admits (rates no loop reaches, 100 concurrent),
// and the concurrency unit is released after each request. "rollback":
// the concurrency limit is full and is asked last, so the two rate members
// admit and must be given back on every request: the worst order for
// every implementation (ratekit's documentation says to put the member
// most likely to deny first). In "explicit" the time is passed; in "now"
// it is read once per request with time.Now() (and by sethvargo inside).

// allOfImpl is one composite under test. new returns a request of one unit
// at t, all or none, followed by its release when admitted; full says the
// concurrency limit is full before the loop. Refusals by a rate member
// are counted in *byRate, so that the benchmark can check that every
// refusal was the concurrency limit's, after both rate members admitted.
type allOfImpl struct {
	name     string
	explicit bool // can take the time as an argument
	new      func(full bool, byRate *int) func(t time.Time) bool
}

var allOfImpls = []allOfImpl{
	{"ratekit", true, func(full bool, byRate *int) func(time.Time) bool {
		sec := newTokenBucket(false)
		day := must(rolling.New(rolling.Config{Limit: wide(rolling.MaxLimit), Window: 24 * time.Hour}))
		conc := must(concurrency.New(concurrency.Config{Limit: 100, Name: "concurrent"}))
		if full {
			conc.Take(time.Now(), 100)
		}
		all := ratekit.AllOf(sec, day, conc)
		return func(t time.Time) bool {
			if d := all.Take(t, 1); !d.Allowed {
				if d.Policy != "concurrent" {
					*byRate++
				}
				return false
			}
			all.Release(1)
			return true
		}
	}},
	{"xrate", true, func(full bool, byRate *int) func(time.Time) bool {
		sec := rate.NewLimiter(1e9, 1<<30)
		day := rate.NewLimiter(rate.Every(24*time.Hour/(1<<40)), 1<<30)
		conc := semaphore.NewWeighted(100)
		if full {
			conc.TryAcquire(100)
		}
		return func(t time.Time) bool {
			r1 := sec.ReserveN(t, 1)
			if !r1.OK() || r1.DelayFrom(t) > 0 {
				r1.CancelAt(t)
				*byRate++
				return false
			}
			r2 := day.ReserveN(t, 1)
			if !r2.OK() || r2.DelayFrom(t) > 0 {
				r2.CancelAt(t)
				r1.CancelAt(t)
				*byRate++
				return false
			}
			if !conc.TryAcquire(1) {
				r2.CancelAt(t)
				r1.CancelAt(t)
				return false
			}
			conc.Release(1)
			return true
		}
	}},
	{"sethvargo", false, func(full bool, byRate *int) func(time.Time) bool {
		// Both refill per hour or day: see sethvargoImpl.
		sec := must(memorystore.New(&memorystore.Config{Tokens: 1 << 62, Interval: time.Hour}))
		day := must(memorystore.New(&memorystore.Config{Tokens: 1 << 62, Interval: 24 * time.Hour}))
		conc := semaphore.NewWeighted(100)
		if full {
			conc.TryAcquire(100)
		}
		ctx := context.Background()
		return func(time.Time) bool {
			if _, _, _, ok, err := sec.Take(ctx, "key"); err != nil || !ok {
				*byRate++
				return false
			}
			if _, _, _, ok, err := day.Take(ctx, "key"); err != nil || !ok {
				_ = sec.Burst(ctx, "key", 1)
				*byRate++
				return false
			}
			if !conc.TryAcquire(1) {
				_ = day.Burst(ctx, "key", 1)
				_ = sec.Burst(ctx, "key", 1)
				return false
			}
			conc.Release(1)
			return true
		}
	}},
}

// BenchmarkAllOf is one request through three limits on one goroutine.
func BenchmarkAllOf(b *testing.B) {
	for _, clk := range []string{"explicit", "now"} {
		for _, p := range []struct {
			name string
			full bool
		}{{"allow", false}, {"rollback", true}} {
			for _, impl := range allOfImpls {
				if clk == "explicit" && !impl.explicit {
					continue
				}
				b.Run(clk+"-"+p.name+"/"+impl.name, func(b *testing.B) {
					var byRate int
					req := impl.new(p.full, &byRate)
					take := func() bool { return req(time.Now()) }
					if clk == "explicit" {
						now := time.Now()
						take = func() bool {
							now = now.Add(defaultStep)
							return req(now)
						}
					}
					loop(b, impl.name, p.full, take)
					if byRate != 0 {
						b.Fatalf("%s: %d requests refused by a rate member: not the path this case measures", impl.name, byRate)
					}
				})
			}
		}
	}
}
