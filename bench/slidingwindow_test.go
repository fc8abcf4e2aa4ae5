package bench

// Side-by-side benchmarks of slidingwindow.Log and slidingwindow.Counter.
//
// No peer offers a sliding window. From their documentation and code:
// golang.org/x/time/rate and github.com/juju/ratelimit are token buckets,
// go.uber.org/ratelimit a blocking leaky bucket, throttled/v2 is GCRA,
// sethvargo/go-limiter's memorystore a bucket refilled at interval ticks, and
// ulule/limiter's memory store a counter that expires one Period after its
// first hit (a rolling fixed window). None keeps a log, and none estimates a
// sliding count. So the nearest peers doing the same amount of work per
// decision are compared: x/time/rate and juju, one in-memory limiter each,
// O(1) per decision under a mutex, configured to the same long-run rate
// (Limit per Window) and burst (Limit). The Log does more per decision
// than any of them (a search of its log, O(log Limit) loads at worst, and a
// store per unit admitted); the Counter about as much (a CAS, 128-bit
// products, a division when it must weigh the previous window). ulule is added where it reads the real clock, as
// the one peer with a window; it also looks its key up in a map.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/juju/ratelimit"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"

	"github.com/ratekit/ratekit/slidingwindow"
)

// swLimits are the quotas benchmarked: Sanity's 25 per second, a mail
// API's 600 per minute, and a large 10,000 per minute.
var swLimits = []struct {
	limit  int
	window time.Duration
}{
	{25, time.Second},
	{600, time.Minute},
	{10_000, time.Minute},
}

var swStart = time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)

// swClock is a juju ratelimit.Clock whose time the benchmark sets.
type swClock struct{ ns atomic.Int64 }

func (c *swClock) Now() time.Time        { return swStart.Add(time.Duration(c.ns.Load())) }
func (c *swClock) Sleep(d time.Duration) { c.ns.Add(int64(d)) }

// swSubject is one limiter under one benchmark: take asks for one unit at
// swStart+offset, and drain empties it at swStart.
type swSubject struct {
	name  string
	take  func(offset time.Duration) bool
	drain func()
}

// swSubjects returns a fresh instance of each limiter for limit per window.
// The juju bucket reads its clock, which take sets first.
func swSubjects(tb testing.TB, limit int, window time.Duration) []swSubject {
	cfg := slidingwindow.Config{Limit: limit, Window: window}
	lg, err := slidingwindow.NewLog(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ct, err := slidingwindow.NewCounter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	xr := rate.NewLimiter(rate.Every(window/time.Duration(limit)), limit)
	clk := &swClock{}
	jj := ratelimit.NewBucketWithQuantumAndClock(window/time.Duration(limit), int64(limit), 1, clk)
	return []swSubject{
		{"ratekit-Log",
			func(o time.Duration) bool { return lg.Take(swStart.Add(o), 1).Allowed },
			func() { lg.Take(swStart, limit) }},
		{"ratekit-Counter",
			func(o time.Duration) bool { return ct.Take(swStart.Add(o), 1).Allowed },
			func() { ct.Take(swStart, limit) }},
		{"x-time-rate",
			func(o time.Duration) bool { return xr.AllowN(swStart.Add(o), 1) },
			func() { xr.AllowN(swStart, limit) }},
		{"juju",
			func(o time.Duration) bool { clk.ns.Store(int64(o)); return jj.TakeAvailable(1) == 1 },
			func() { clk.ns.Store(0); jj.TakeAvailable(int64(limit)) }},
	}
}

// BenchmarkSlidingWindowExplicit measures one decision at an explicit time,
// on one goroutine: Allow advances the time by Window/Limit per call, so
// (nearly) every call is admitted; Deny asks a drained limiter at one
// instant.
func BenchmarkSlidingWindowExplicit(b *testing.B) {
	for _, sl := range swLimits {
		step := sl.window / time.Duration(sl.limit)
		for i, s := range swSubjects(b, sl.limit, sl.window) {
			b.Run(fmt.Sprintf("Allow/limit=%d/%s", sl.limit, s.name), func(b *testing.B) {
				s := swSubjects(b, sl.limit, sl.window)[i] // fresh for each -count
				o := time.Duration(0)
				b.ReportAllocs()
				for b.Loop() {
					o += step
					s.take(o)
				}
			})
		}
		for i, s := range swSubjects(b, sl.limit, sl.window) {
			b.Run(fmt.Sprintf("Deny/limit=%d/%s", sl.limit, s.name), func(b *testing.B) {
				s := swSubjects(b, sl.limit, sl.window)[i]
				s.drain()
				b.ReportAllocs()
				for b.Loop() {
					s.take(0)
				}
			})
		}
	}
}

// BenchmarkSlidingWindowParallel measures decisions from every goroutine
// (vary with -cpu): ParallelAllow takes at a shared time that advances by
// Window/Limit per call (one atomic add, the same for every limiter), so
// calls are admitted and contend on writes; ParallelDeny asks a drained
// limiter at one instant. juju's clock is then shared by all goroutines,
// as the real clock is.
func BenchmarkSlidingWindowParallel(b *testing.B) {
	for _, sl := range swLimits {
		step := int64(sl.window / time.Duration(sl.limit))
		for i, s := range swSubjects(b, sl.limit, sl.window) {
			b.Run(fmt.Sprintf("ParallelAllow/limit=%d/%s", sl.limit, s.name), func(b *testing.B) {
				s := swSubjects(b, sl.limit, sl.window)[i]
				var tick atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						s.take(time.Duration(tick.Add(step)))
					}
				})
			})
		}
		for i, s := range swSubjects(b, sl.limit, sl.window) {
			b.Run(fmt.Sprintf("ParallelDeny/limit=%d/%s", sl.limit, s.name), func(b *testing.B) {
				s := swSubjects(b, sl.limit, sl.window)[i]
				s.drain()
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						s.take(0)
					}
				})
			})
		}
	}
}

// BenchmarkSlidingWindowRealClock measures Allow() as a handler calls it,
// reading the real clock, on one goroutine and on all (-cpu). With a
// limit per second or minute, nearly every call after the first Limit is
// denied. ulule's memory store also looks up its key.
func BenchmarkSlidingWindowRealClock(b *testing.B) {
	ctx := context.Background()
	// Each returns a fresh limiter's Allow, for limit per window.
	allows := []struct {
		name string
		new  func(limit int, window time.Duration) func() bool
	}{
		{"ratekit-Log", func(limit int, window time.Duration) func() bool {
			l, _ := slidingwindow.NewLog(slidingwindow.Config{Limit: limit, Window: window})
			return l.Allow
		}},
		{"ratekit-Counter", func(limit int, window time.Duration) func() bool {
			c, _ := slidingwindow.NewCounter(slidingwindow.Config{Limit: limit, Window: window})
			return c.Allow
		}},
		{"x-time-rate", func(limit int, window time.Duration) func() bool {
			return rate.NewLimiter(rate.Every(window/time.Duration(limit)), limit).Allow
		}},
		{"juju", func(limit int, window time.Duration) func() bool {
			jj := ratelimit.NewBucketWithQuantum(window/time.Duration(limit), int64(limit), 1)
			return func() bool { return jj.TakeAvailable(1) == 1 }
		}},
		{"ulule", func(limit int, window time.Duration) func() bool {
			ul := limiter.New(memory.NewStore(), limiter.Rate{Period: window, Limit: int64(limit)})
			return func() bool { c, _ := ul.Get(ctx, "k"); return !c.Reached }
		}},
	}
	for _, sl := range swLimits {
		for _, a := range allows {
			b.Run(fmt.Sprintf("Allow/limit=%d/%s", sl.limit, a.name), func(b *testing.B) {
				allow := a.new(sl.limit, sl.window)
				b.ReportAllocs()
				for b.Loop() {
					allow()
				}
			})
			b.Run(fmt.Sprintf("ParallelAllow/limit=%d/%s", sl.limit, a.name), func(b *testing.B) {
				allow := a.new(sl.limit, sl.window)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						allow()
					}
				})
			})
		}
	}
}
