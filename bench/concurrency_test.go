package bench

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/ratekit/ratekit/concurrency"
)

// semaphoreCase is one semaphore under test, built fresh with limit units.
type semaphoreCase struct {
	name string
	// try takes one unit without blocking and gives it back, reporting
	// whether it was taken.
	newTry func(b *testing.B, limit int) func() bool
	// acquire blocks for one unit and gives it back.
	newAcquire func(b *testing.B, limit int) func(context.Context) error
}

func newConcurrency(b *testing.B, limit int) *concurrency.Limiter {
	l, err := concurrency.New(concurrency.Config{Limit: limit, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

var semaphoreCases = []semaphoreCase{
	{
		name: "ratekit",
		newTry: func(b *testing.B, limit int) func() bool {
			l := newConcurrency(b, limit)
			now := time.Now() // a caller that passes the time it already has
			return func() bool {
				if !l.Take(now, 1).Allowed {
					return false
				}
				l.Release(1)
				return true
			}
		},
		newAcquire: func(b *testing.B, limit int) func(context.Context) error {
			l := newConcurrency(b, limit)
			return func(ctx context.Context) error {
				release, err := l.Acquire(ctx, 1)
				release()
				return err
			}
		},
	},
	{
		name: "ratekit-AllowN", // reads the real clock on every call
		newTry: func(b *testing.B, limit int) func() bool {
			l := newConcurrency(b, limit)
			return func() bool {
				if !l.AllowN(1) {
					return false
				}
				l.Release(1)
				return true
			}
		},
	},
	{
		name: "x-sync-semaphore",
		newTry: func(b *testing.B, limit int) func() bool {
			s := semaphore.NewWeighted(int64(limit))
			return func() bool {
				if !s.TryAcquire(1) {
					return false
				}
				s.Release(1)
				return true
			}
		},
		newAcquire: func(b *testing.B, limit int) func(context.Context) error {
			s := semaphore.NewWeighted(int64(limit))
			return func(ctx context.Context) error {
				if err := s.Acquire(ctx, 1); err != nil {
					return err
				}
				s.Release(1)
				return nil
			}
		},
	},
}

// BenchmarkSemaphoreTryRelease is a non-blocking take of one unit and its
// release: ratekit's Take+Release against x/sync's TryAcquire+Release.
// "uncontended" runs on one goroutine; "parallel" on GOMAXPROCS goroutines
// sharing one semaphore of 100 units (Sanity's concurrent mutations), so
// all contend for one word or mutex but none is ever refused.
func BenchmarkSemaphoreTryRelease(b *testing.B) {
	for _, c := range semaphoreCases {
		b.Run("uncontended/"+c.name, func(b *testing.B) {
			try := c.newTry(b, 100)
			b.ReportAllocs()
			for b.Loop() {
				if !try() {
					b.Fatal("refused")
				}
			}
		})
	}
	for _, c := range semaphoreCases {
		b.Run("parallel/"+c.name, func(b *testing.B) {
			try := c.newTry(b, 100)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					try()
				}
			})
		})
	}
}

// BenchmarkSemaphoreAcquireRelease is the blocking API: Acquire and release
// one unit. With 100 units nobody waits ("free"); with 1 unit and parallel
// callers, every Acquire but one waits and is handed the unit ("handoff").
// ratekit's Acquire allocates its release func; x/sync's returns none.
func BenchmarkSemaphoreAcquireRelease(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		limit int
	}{{"free", 100}, {"handoff", 1}} {
		for _, c := range semaphoreCases {
			if c.newAcquire == nil {
				continue
			}
			b.Run(tc.name+"/"+c.name, func(b *testing.B) {
				acquire := c.newAcquire(b, tc.limit)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := acquire(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
