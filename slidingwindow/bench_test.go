package slidingwindow_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// benchLimits are the quotas benchmarked: Sanity's 25 per second, a mail
// API's 600 per minute, and a large 10,000 per minute.
var benchLimits = []struct {
	limit  int
	window time.Duration
}{
	{25, time.Second},
	{600, time.Minute},
	{10_000, time.Minute},
}

// benchLimiter is what the benchmarks drive: a Log or a Counter.
type benchLimiter interface {
	ratekit.Limiter
	Allow() bool
}

// benchAlgs: NewLog's and NewCounter's limiters, and those of templates
// (compact, as a Keyed holds one per key).
var benchAlgs = []struct {
	name string
	new  func(tb testing.TB, cfg slidingwindow.Config) benchLimiter
}{
	{"Log", func(tb testing.TB, cfg slidingwindow.Config) benchLimiter { return mustLog(tb, cfg) }},
	{"Counter", func(tb testing.TB, cfg slidingwindow.Config) benchLimiter { return mustCounter(tb, cfg) }},
	{"LogTemplate", func(tb testing.TB, cfg slidingwindow.Config) benchLimiter { return mustLogTemplate(tb, cfg).New() }},
	{"CounterTemplate", func(tb testing.TB, cfg slidingwindow.Config) benchLimiter {
		return mustCounterTemplate(tb, cfg).New()
	}},
}

// BenchmarkTake measures one decision, each algorithm at each limit:
//   - Allow: explicit times that advance by Window/Limit per call, so that
//     (nearly) every Take is admitted and writes;
//   - Deny: a drained limiter at one instant, the read-only path;
//   - RealClock: Allow(), reading the real clock, as a handler would;
//   - ParallelAllow: every goroutine takes at a shared clock that advances
//     by Window/Limit per call (an atomic add, the same cost for every
//     algorithm), so calls are admitted and contend on the write;
//   - ParallelDeny: every goroutine is denied at one instant.
//
// Vary parallelism with -cpu.
func BenchmarkTake(b *testing.B) {
	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	for _, alg := range benchAlgs {
		for _, bl := range benchLimits {
			cfg := slidingwindow.Config{Limit: bl.limit, Window: bl.window}
			step := bl.window / time.Duration(bl.limit)
			prefix := fmt.Sprintf("%s/limit=%d", alg.name, bl.limit)
			b.Run(prefix+"/Allow", func(b *testing.B) {
				l := alg.new(b, cfg)
				now := start
				b.ReportAllocs()
				for b.Loop() {
					now = now.Add(step)
					l.Take(now, 1)
				}
			})
			b.Run(prefix+"/Deny", func(b *testing.B) {
				l := alg.new(b, cfg)
				l.Take(start, bl.limit)
				b.ReportAllocs()
				for b.Loop() {
					l.Take(start, 1)
				}
			})
			b.Run(prefix+"/RealClock", func(b *testing.B) {
				l := alg.new(b, cfg)
				b.ReportAllocs()
				for b.Loop() {
					l.Allow()
				}
			})
			b.Run(prefix+"/ParallelAllow", func(b *testing.B) {
				l := alg.new(b, cfg)
				var tick atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						l.Take(start.Add(time.Duration(tick.Add(int64(step)))), 1)
					}
				})
			})
			b.Run(prefix+"/ParallelDeny", func(b *testing.B) {
				l := alg.new(b, cfg)
				l.Take(start, bl.limit)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						l.Take(start, 1)
					}
				})
			})
		}
	}
}

// BenchmarkNew measures making a limiter, as a Keyed does on a key's first
// use: B/op is what each limiter costs.
func BenchmarkNew(b *testing.B) {
	for _, bl := range benchLimits[:2] {
		cfg := slidingwindow.Config{Limit: bl.limit, Window: bl.window}
		ct, lt := mustCounterTemplate(b, cfg), mustLogTemplate(b, cfg)
		for _, c := range []struct {
			name string
			new  func() any
		}{
			{"NewCounter", func() any { return mustCounter(b, cfg) }},
			{"CounterTemplate", func() any { return ct.New() }},
			{"NewLog", func() any { return mustLog(b, cfg) }},
			{"LogTemplate", func() any { return lt.New() }},
		} {
			b.Run(fmt.Sprintf("%s/limit=%d", c.name, bl.limit), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sink = c.new()
				}
			})
		}
	}
}

var sink any
