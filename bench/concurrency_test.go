package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
)

// Concurrency limits side by side: ratekit's concurrency.Limiter against
// golang.org/x/sync/semaphore, the only peer that holds units until they
// are released (the others are rate limiters). Neither reads a clock:
// ratekit's Take is passed one time read before the loop, as a server
// passes the time it already read for the request (the time only feeds
// the hold-time estimate behind a denial's RetryAfter).

// semaphoreImpl is one semaphore under test.
type semaphoreImpl struct {
	name string
	// try returns a non-blocking take of one unit of a semaphore of limit
	// units that releases it again when taken, and fill, which takes every
	// unit so that try is refused.
	try func(tb testing.TB, limit int) (try func() bool, fill func())
	// acquire returns a blocking take of one unit and its release; nil for
	// a row of the non-blocking call only.
	acquire func(tb testing.TB, limit int) func(context.Context) error
}

var semaphoreImpls = []semaphoreImpl{
	{
		name: "ratekit",
		try: func(tb testing.TB, limit int) (func() bool, func()) {
			l := must(concurrency.New(concurrency.Config{Limit: limit}))
			now := time.Now()
			return func() bool {
					if !l.Take(now, 1).Allowed {
						return false
					}
					l.Release(1)
					return true
				}, func() {
					l.Take(now, limit)
				}
		},
		acquire: func(tb testing.TB, limit int) func(context.Context) error {
			l := must(concurrency.New(concurrency.Config{Limit: limit}))
			return func(ctx context.Context) error {
				release, err := l.Acquire(ctx, 1)
				if err != nil {
					return err
				}
				release()
				return nil
			}
		},
	},
	{
		// TryAcquire+Release: the call of x/sync's shape, a bool and no
		// Decision (the blocking form is the ratekit row's Acquire).
		name: "ratekit-try",
		try: func(tb testing.TB, limit int) (func() bool, func()) {
			l := must(concurrency.New(concurrency.Config{Limit: limit}))
			return func() bool {
					if !l.TryAcquire(1) {
						return false
					}
					l.Release(1)
					return true
				}, func() {
					l.TryAcquire(limit)
				}
		},
	},
	{
		name: "xsync",
		try: func(_ testing.TB, limit int) (func() bool, func()) {
			s := semaphore.NewWeighted(int64(limit))
			return func() bool {
					if !s.TryAcquire(1) {
						return false
					}
					s.Release(1)
					return true
				}, func() {
					s.TryAcquire(int64(limit))
				}
		},
		acquire: func(_ testing.TB, limit int) func(context.Context) error {
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

// BenchmarkConcurrency is a non-blocking take of one unit and its release,
// on a semaphore of 100 units (Sanity's concurrent mutations per dataset):
// ratekit's Take+Release and TryAcquire+Release against x/sync's
// TryAcquire+Release. Allowing,
// nobody holds more than one unit, so none is refused; denying, the
// semaphore is full before the loop and every take is refused.
func BenchmarkConcurrency(b *testing.B) {
	for _, p := range paths {
		for _, impl := range semaphoreImpls {
			b.Run(p.name+"/"+impl.name, func(b *testing.B) {
				try, fill := impl.try(b, 100)
				if p.deny {
					fill()
				}
				loop(b, impl.name, p.deny, try)
			})
		}
	}
}

// BenchmarkConcurrencyParallel is BenchmarkConcurrency from every
// goroutine of b.RunParallel on one semaphore: all contend for one word
// (ratekit) or one mutex (x/sync).
func BenchmarkConcurrencyParallel(b *testing.B) {
	for _, p := range paths {
		for _, impl := range semaphoreImpls {
			b.Run(p.name+"/"+impl.name, func(b *testing.B) {
				try, fill := impl.try(b, 100)
				if p.deny {
					fill()
				}
				parallel(b, impl.name, p.deny, func() func() bool { return try })
			})
		}
	}
}

// BenchmarkConcurrencyAcquire is the blocking API from every goroutine of
// b.RunParallel: acquire one unit and release it. With 100 units nobody
// waits ("free"); with 1 unit, every Acquire but one waits and is handed
// the unit ("handoff"). ratekit's Acquire returns a release func, which
// allocates; x/sync's Release is a method.
func BenchmarkConcurrencyAcquire(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		limit int
	}{{"free", 100}, {"handoff", 1}} {
		for _, impl := range semaphoreImpls {
			if impl.acquire == nil {
				continue
			}
			b.Run(tc.name+"/"+impl.name, func(b *testing.B) {
				acquire := impl.acquire(b, tc.limit)
				parallel(b, impl.name, false, func() func() bool {
					return func() bool {
						if err := acquire(ctx); err != nil {
							panic(err)
						}
						return true
					}
				})
			})
		}
	}
}

// BenchmarkConcurrencyFloor is the floor under BenchmarkConcurrency's
// allow rows: a take of one unit and its release on a bare word of held
// units (limit 100), nothing else. Run it in the process that runs those
// rows and read them against it:
//
//   - cas+cas: a load and compare-and-swap to take if the unit fits, and
//     one to give it back: what an exact lock-free semaphore's admission
//     and release cost at least (concurrency's TryAcquire adds the count
//     of admitted units the hold-time estimate divides by);
//   - cas+add+cas: cas+cas with an atomic add to a count between the two,
//     on a line of its own (concurrency's TryAcquire counts admitted units
//     in a word beside its state): the price of that locked write;
//   - cas+decision+cas: cas+cas with the take in a function that is not
//     inlined and returns a ratekit.Decision, as Take does: the caller
//     stores the Decision's registers and copies them before it reads
//     Allowed, the call shape's own cost;
//   - add+add: one atomic add to take (undone when over the limit) and one
//     to release, the form #17 proposed and that was rejected: between the
//     add and its undo a concurrent take that fits is refused, which no
//     sequential order explains. It is here only to show what it would buy.
//
// serial/ rows run on one goroutine, parallel/ rows on b.RunParallel's
// (vary with -cpu), all sharing one word.
func BenchmarkConcurrencyFloor(b *testing.B) {
	const limit = 100
	ops := []struct {
		name string
		op   func(w *atomic.Int64) bool
	}{
		{"cas+cas", func(w *atomic.Int64) bool {
			for {
				h := w.Load()
				if h >= limit {
					return false
				}
				if w.CompareAndSwap(h, h+1) {
					break
				}
			}
			for {
				h := w.Load()
				if w.CompareAndSwap(h, h-1) {
					return true
				}
			}
		}},
		{"cas+add+cas", func(w *atomic.Int64) bool {
			for {
				h := w.Load()
				if h >= limit {
					return false
				}
				if w.CompareAndSwap(h, h+1) {
					break
				}
			}
			floorCount.Add(1)
			for {
				h := w.Load()
				if w.CompareAndSwap(h, h-1) {
					return true
				}
			}
		}},
		{"cas+decision+cas", func(w *atomic.Int64) bool {
			if !floorTake(w, limit).Allowed {
				return false
			}
			for {
				h := w.Load()
				if w.CompareAndSwap(h, h-1) {
					return true
				}
			}
		}},
		{"add+add", func(w *atomic.Int64) bool {
			if w.Add(1) > limit {
				w.Add(-1)
				return false
			}
			w.Add(-1)
			return true
		}},
	}
	for _, o := range ops {
		b.Run("serial/"+o.name, func(b *testing.B) {
			w := own(atomic.Int64{})
			loop(b, o.name, false, func() bool { return o.op(w) })
		})
		b.Run("parallel/"+o.name, func(b *testing.B) {
			w := own(atomic.Int64{})
			parallel(b, o.name, false, func() func() bool { return func() bool { return o.op(w) } })
		})
	}
}

// floorCount is cas+add+cas's count, on cache lines of its own.
var floorCount = own(atomic.Uint64{})

// floorTake is cas+cas's take returning a Decision, filled from registers
// as concurrency's Take fills its own.
//
//go:noinline
func floorTake(w *atomic.Int64, limit int) ratekit.Decision {
	for {
		h := w.Load()
		if h >= int64(limit) {
			return ratekit.Decision{Limit: limit, RetryAfter: time.Millisecond, Policy: "floor"}
		}
		if w.CompareAndSwap(h, h+1) {
			return ratekit.Decision{Allowed: true, Limit: limit, Remaining: limit - int(h) - 1, ResetAfter: time.Millisecond, Policy: "floor"}
		}
	}
}
