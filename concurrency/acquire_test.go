package concurrency_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/internal/conformance"
)

// acquirer runs Acquire(ctx, n) in a goroutine and records its outcome.
type acquirer struct {
	n       int
	cancel  context.CancelFunc
	done    chan struct{}
	release func()
	err     error
}

// goAcquire starts an Acquire of n units on l and, inside a synctest
// bubble, waits until it has returned or is durably blocked in the queue.
func goAcquire(l *concurrency.Limiter, ctx context.Context, n int) *acquirer {
	ctx, cancel := context.WithCancel(ctx)
	a := &acquirer{n: n, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.release, a.err = l.Acquire(ctx, n)
	}()
	synctest.Wait()
	return a
}

// returned reports whether a's Acquire has returned. Call it after
// synctest.Wait.
func (a *acquirer) returned() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func TestAcquireFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustNew(t, 10, "q")
		require.True(t, l.Take(t0, 10).Allowed)
		big := goAcquire(l, t.Context(), 8)
		small1 := goAcquire(l, t.Context(), 1)
		small2 := goAcquire(l, t.Context(), 1)
		require.Equal(t, 3, l.Waiting())
		require.False(t, l.Idle(t0))

		l.Release(2)
		synctest.Wait()
		require.False(t, big.returned(), "8 do not fit in 2")
		require.False(t, small1.returned(), "FIFO: a small request does not pass the big head")
		// Nor does a non-blocking Take, though 2 units are free.
		d := l.Take(t0, 1)
		require.False(t, d.Allowed, "Take does not barge past queued callers")
		require.Equal(t, d, l.Peek(t0, 1))
		require.Zero(t, d.Remaining)
		require.Positive(t, d.RetryAfter)
		require.Less(t, d.RetryAfter, ratekit.Never)
		require.True(t, l.Take(t0, 0).Allowed)
		l.Release(9) // 8 held: refused, the queue keeps waiting
		require.Equal(t, uint64(1), l.RejectedReleases())
		synctest.Wait()
		require.Equal(t, 3, l.Waiting(), "a refused Release changes nothing")
		require.False(t, big.returned())

		l.Release(8)
		synctest.Wait()
		for _, a := range []*acquirer{big, small1, small2} {
			require.True(t, a.returned())
			require.NoError(t, a.err)
		}
		require.Equal(t, 10, l.Held())
		require.Zero(t, l.Waiting())
		for _, a := range []*acquirer{big, small1, small2} {
			a.release()
			a.release() // idempotent
		}
		require.True(t, l.Idle(t0))
	})
}

// TestAcquireLargeNotStarved: a stream of small non-blocking Takes and
// releases never keeps a queued large request waiting once the units it
// needs have been released.
func TestAcquireLargeNotStarved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustNew(t, 10, "")
		require.True(t, l.Take(t0, 3).Allowed)
		all := goAcquire(l, t.Context(), 10)
		for i := 0; i < 100; i++ {
			if l.Take(t0, 1).Allowed {
				t.Fatalf("Take %d admitted while a caller is queued", i)
			}
		}
		l.Release(3)
		synctest.Wait()
		require.True(t, all.returned())
		require.NoError(t, all.err)
		require.Equal(t, 10, l.Held())
		all.release()
	})
}

func TestAcquireCancelledWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustNew(t, 4, "")
		require.True(t, l.Take(t0, 3).Allowed)
		head := goAcquire(l, t.Context(), 4) // needs all 4
		next := goAcquire(l, t.Context(), 1) // fits, but queued behind head
		require.Equal(t, 2, l.Waiting())

		head.cancel()
		synctest.Wait()
		require.True(t, head.returned())
		require.ErrorIs(t, head.err, context.Canceled)
		require.NotNil(t, head.release)
		head.release() // a no-op after an error
		require.True(t, next.returned(), "the head's leaving lets the next one in")
		require.NoError(t, next.err)
		require.Equal(t, 4, l.Held())
		require.Zero(t, l.Waiting())
		next.release()
		l.Release(3)
		require.True(t, l.Idle(t0))
	})
}

func TestAcquireDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustNew(t, 2, "")
		// A deadline already past returns at once, though units are free.
		past, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Nanosecond))
		defer cancel()
		rel, err := l.Acquire(past, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		rel()
		require.Zero(t, l.Held())

		// A deadline that passes while waiting (in the bubble's fake time).
		require.True(t, l.Take(t0, 2).Allowed)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err = l.Acquire(ctx, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))
		require.Equal(t, 2, l.Held())
		require.Zero(t, l.Waiting())
		l.Release(2)
	})
}

func TestAcquireEdgeCases(t *testing.T) {
	l, _ := mustNew(t, 3, "")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	rel, err := l.Acquire(cancelled, 0)
	require.NoError(t, err, "n == 0 always succeeds")
	rel()
	for _, n := range []int{-1, 4, concurrency.MaxLimit} {
		rel, err := l.Acquire(context.Background(), n)
		require.ErrorIs(t, err, ratekit.ErrExceedsLimit, "n=%d", n)
		rel()
	}
	require.True(t, l.Idle(t0))
}

func TestAcquireReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, clk := mustNew(t, 10, "")
		require.True(t, l.Take(t0, 9).Allowed)
		eight := goAcquire(l, t.Context(), 8)
		two := goAcquire(l, t.Context(), 2)

		// Lowering the limit under a queued request fails that request.
		require.NoError(t, l.Reconfigure(concurrency.Config{Limit: 6, Clock: clk}))
		synctest.Wait()
		require.True(t, eight.returned())
		require.ErrorIs(t, eight.err, ratekit.ErrExceedsLimit)
		require.False(t, two.returned(), "9 held over a limit of 6")

		l.Release(5) // 4 held: 2 more fit under 6
		synctest.Wait()
		require.True(t, two.returned())
		require.NoError(t, two.err)
		require.Equal(t, 6, l.Held())

		// Raising the limit admits queued requests that now fit.
		three := goAcquire(l, t.Context(), 3)
		require.False(t, three.returned())
		require.NoError(t, l.Reconfigure(concurrency.Config{Limit: 9, Clock: clk}))
		synctest.Wait()
		require.True(t, three.returned())
		require.NoError(t, three.err)
		require.Equal(t, 9, l.Held())
		three.release()
		two.release()
		l.Release(4)
		require.True(t, l.Idle(t0))
	})
}

func TestAcquireAllocs(t *testing.T) {
	l, _ := mustNew(t, 10, "")
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		release, err := l.Acquire(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		release()
	})
	require.LessOrEqual(t, allocs, 2.0, "the release func (documented)")
}

// TestStress mixes blocking Acquires (some cancelled, some with deadlines),
// non-blocking Takes and double releases across goroutines under -race. The
// units in use never exceed the limit; at the end nothing is held, nobody
// is queued, and no goroutine is left behind.
func TestStress(t *testing.T) {
	baseline := runtime.NumGoroutine()
	seed := conformance.Seed(t)

	const limit, workers, rounds = 8, 12, 400
	l, _ := mustNew(t, limit, "")
	var inUse atomic.Int64
	check := func(n int) {
		if got := inUse.Add(int64(n)); got > limit {
			t.Errorf("%d units in use with a limit of %d", got, limit)
		}
		if h := l.Held(); h > limit {
			t.Errorf("Held() = %d with a limit of %d", h, limit)
		}
	}

	var wg, cancellers sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; i < rounds; i++ {
				n := 1 + rng.IntN(limit/2)
				if w%4 == 3 { // a large request now and then
					n = limit - rng.IntN(2)
				}
				var release func()
				acquired := true
				switch rng.IntN(4) {
				case 0: // non-blocking
					if !l.Take(time.Now(), n).Allowed {
						continue
					}
					release, acquired = func() { l.Release(n) }, false
				case 1: // cancelled from another goroutine at some point
					ctx, cancel := context.WithCancel(context.Background())
					spins := rng.IntN(3)
					cancellers.Go(func() {
						for range spins {
							runtime.Gosched()
						}
						cancel()
					})
					r, err := l.Acquire(ctx, n)
					if err != nil {
						continue
					}
					release = r
				default:
					r, err := l.Acquire(context.Background(), n)
					if err != nil {
						t.Errorf("Acquire(%d): %v", n, err)
						return
					}
					release = r
				}
				check(n)
				runtime.Gosched()
				check(-n)
				release()
				if acquired && rng.IntN(8) == 0 {
					release() // Acquire's release func is idempotent
				}
			}
		}()
	}
	wg.Wait()
	cancellers.Wait()
	require.Zero(t, l.Held())
	require.Zero(t, l.Waiting())
	require.True(t, l.Idle(t0))
	require.True(t, l.Take(t0, limit).Allowed, "all units came back")
	l.Release(limit)

	// Every goroutine started here has been joined, so any still running
	// are the limiter's (context.AfterFunc callbacks, say), which must end
	// on their own: give them a bounded number of chances to finish exiting
	// (a leak never does).
	for i := 0; i < 100_000 && runtime.NumGoroutine() > baseline; i++ {
		runtime.Gosched()
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), baseline, "goroutines leaked")
}
