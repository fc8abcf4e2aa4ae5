package concurrency_test

import (
	"context"
	"testing"
	"time"

	"github.com/ratekit/ratekit/concurrency"
)

// BenchmarkLimiter measures the hot paths on one goroutine ("serial") and
// on GOMAXPROCS goroutines sharing one Limiter ("parallel"; vary with -cpu).
//
//   - TakeRelease: an allowed Take(1) and its Release, at a fixed instant,
//     so the estimator never samples after the first Take.
//   - TakeReleaseSampling: the same with the time moving 1ms per call, so
//     every Take samples the hold time: the estimator's worst case.
//   - Peek: a Peek(1) on a limiter with units held.
//   - Denied: a Take(1) on a full limiter.
//   - Acquire: Acquire(ctx, 1) with units free, and its release func.
func BenchmarkLimiter(b *testing.B) {
	cases := []struct {
		name string
		op   func(l *concurrency.Limiter, now *time.Time)
		full bool
	}{
		{"TakeRelease", func(l *concurrency.Limiter, now *time.Time) {
			if l.Take(*now, 1).Allowed {
				l.Release(1)
			}
		}, false},
		{"TakeReleaseSampling", func(l *concurrency.Limiter, now *time.Time) {
			*now = now.Add(time.Millisecond)
			if l.Take(*now, 1).Allowed {
				l.Release(1)
			}
		}, false},
		{"Peek", func(l *concurrency.Limiter, now *time.Time) { l.Peek(*now, 1) }, false},
		{"Denied", func(l *concurrency.Limiter, now *time.Time) { l.Take(*now, 1) }, true},
		{"Acquire", func(l *concurrency.Limiter, _ *time.Time) {
			release, _ := l.Acquire(context.Background(), 1)
			release()
		}, false},
	}
	setup := func(b *testing.B, full bool) *concurrency.Limiter {
		l, err := concurrency.New(concurrency.Config{Limit: 100, Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		n := 50
		if full {
			n = 100
		}
		l.Take(t0, n)
		return l
	}
	for _, c := range cases {
		b.Run("serial/"+c.name, func(b *testing.B) {
			l := setup(b, c.full)
			now := t0
			b.ReportAllocs()
			for b.Loop() {
				c.op(l, &now)
			}
		})
		b.Run("parallel/"+c.name, func(b *testing.B) {
			l := setup(b, c.full)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				now := t0
				for pb.Next() {
					c.op(l, &now)
				}
			})
		})
	}
}

// BenchmarkZeroReconfigured is TakeRelease, and TryAcquire(1) with its
// Release, on a Limiter from New ("new") and on a zero Limiter given the
// same Config by Reconfigure ("zero"): the two must cost the same.
func BenchmarkZeroReconfigured(b *testing.B) {
	cfg := concurrency.Config{Limit: 100, Name: "bench"}
	for _, from := range []string{"new", "zero"} {
		setup := func(b *testing.B) *concurrency.Limiter {
			l := new(concurrency.Limiter)
			if from == "new" {
				var err error
				if l, err = concurrency.New(cfg); err != nil {
					b.Fatal(err)
				}
			} else if err := l.Reconfigure(cfg); err != nil {
				b.Fatal(err)
			}
			l.Take(t0, 50)
			return l
		}
		b.Run(from+"/TakeRelease", func(b *testing.B) {
			l := setup(b)
			b.ReportAllocs()
			for b.Loop() {
				if l.Take(t0, 1).Allowed {
					l.Release(1)
				}
			}
		})
		b.Run(from+"/TryAcquireRelease", func(b *testing.B) {
			l := setup(b)
			b.ReportAllocs()
			for b.Loop() {
				if l.TryAcquire(1) {
					l.Release(1)
				}
			}
		})
	}
}
