package tokenbucket_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Inside a synctest bubble time is fake, so a nil Clock (the real clock)
// sleeps without sleeping, and every instant below is exact.

// waitResult is what a Wait started by startWait returned, and when.
type waitResult struct {
	err error
	at  time.Duration
	d   ratekit.Decision
}

// startWait starts a Wait for n units in a goroutine, waits until it has
// reserved and is asleep (or has returned), and returns a channel that
// yields its result.
func startWait(ctx context.Context, l *tokenbucket.Limiter, n int, start time.Time) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		d, err := l.Wait(ctx, n)
		ch <- waitResult{err, time.Since(start), d}
	}()
	synctest.Wait()
	return ch
}

func TestWaitFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1})
		start := time.Now()
		require.True(t, l.Allow())
		var waiters []<-chan waitResult
		for i := 0; i < 5; i++ {
			waiters = append(waiters, startWait(t.Context(), l, 1, start))
		}
		// The five reservations are taken: a Take now waits behind them.
		d := l.Take(time.Now(), 1)
		require.False(t, d.Allowed)
		require.Equal(t, 6*time.Second, d.RetryAfter)
		for i, w := range waiters {
			r := <-w
			require.NoError(t, r.err)
			require.True(t, r.d.Allowed)
			require.Equal(t, time.Duration(i+1)*time.Second, r.at, "waiter %d, in order, each at its own second", i)
		}
	})
}

func TestWaitManyConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 1})
		start := time.Now()
		var mu sync.Mutex
		var at []time.Duration
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Wait(t.Context(), 1)
				require.NoError(t, err)
				mu.Lock()
				at = append(at, time.Since(start))
				mu.Unlock()
			}()
		}
		wg.Wait()
		sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
		for i, a := range at {
			require.Equal(t, time.Duration(i)*100*time.Millisecond, a, "one unit per 100 ms, none early")
		}
	})
}

func TestWaitCancelGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1})
		start := time.Now()
		require.True(t, l.Allow())
		ctx, cancel := context.WithCancel(t.Context())
		a := startWait(ctx, l, 1, start)
		require.Equal(t, 2*time.Second, l.Peek(time.Now(), 1).RetryAfter, "a's reservation is taken")
		time.Sleep(500 * time.Millisecond)
		cancel()
		r := <-a
		require.ErrorIs(t, r.err, context.Canceled)
		require.Equal(t, 500*time.Millisecond, r.at)
		require.Equal(t, time.Second, r.d.RetryAfter, "the denial Wait met when it reserved")
		// The reservation came back: the next unit is due at 1 s again.
		d := l.Take(time.Now(), 1)
		require.False(t, d.Allowed)
		require.Equal(t, 500*time.Millisecond, d.RetryAfter)
	})
}

func TestWaitCancelBehindLaterReservations(t *testing.T) {
	t.Run("Burst1", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1})
			start := time.Now()
			require.True(t, l.Allow())
			ctx, cancel := context.WithCancel(t.Context())
			a := startWait(ctx, l, 1, start)         // due at 1 s
			b := startWait(t.Context(), l, 1, start) // due at 2 s, stacked on a
			time.Sleep(500 * time.Millisecond)
			cancel()
			require.ErrorIs(t, (<-a).err, context.Canceled)
			// b sleeps until 2 s, computed with a's unit taken. Giving a's
			// unit back would let a newcomer in at 2 s too: two units at one
			// instant from a bucket of one. So nothing comes back.
			require.Equal(t, 2500*time.Millisecond, l.Peek(time.Now(), 1).RetryAfter)
			rb := <-b
			require.NoError(t, rb.err)
			require.Equal(t, 2*time.Second, rb.at)
		})
	})
	t.Run("Burst2Partial", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 2})
			start := time.Now()
			require.True(t, l.AllowN(2))
			ctx, cancel := context.WithCancel(t.Context())
			a := startWait(ctx, l, 2, start)         // due at 2 s
			b := startWait(t.Context(), l, 1, start) // due at 3 s
			require.Equal(t, 4*time.Second, l.Peek(time.Now(), 1).RetryAfter)
			time.Sleep(500 * time.Millisecond)
			cancel()
			require.ErrorIs(t, (<-a).err, context.Canceled)
			// b claimed 1 s past a's end: of a's 2 s, 1 s comes back.
			require.Equal(t, 2500*time.Millisecond, l.Peek(time.Now(), 1).RetryAfter)
			rb := <-b
			require.NoError(t, rb.err)
			require.Equal(t, 3*time.Second, rb.at)
		})
	})
}

func TestWaitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1})
		start := time.Now()
		require.True(t, l.Allow())
		before := l.Peek(time.Now(), 1)
		ctx, cancel := context.WithTimeout(t.Context(), 999*time.Millisecond)
		defer cancel()
		d, err := l.Wait(ctx, 1)
		require.ErrorIs(t, err, ratekit.ErrWaitExceedsDeadline)
		require.True(t, errors.Is(err, context.DeadlineExceeded))
		require.Zero(t, time.Since(start), "returns at once")
		require.Equal(t, time.Second, d.RetryAfter)
		require.Equal(t, before, l.Peek(time.Now(), 1), "reserved nothing")

		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = l.Wait(ctx, 1)
		require.NoError(t, err, "a wait that ends exactly at the deadline is made")
		require.Equal(t, time.Second, time.Since(start))
	})
}

func TestWaitExceedsLimitAndZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 2, Name: "p"})
		for _, n := range []int{3, -1} {
			d, err := l.Wait(t.Context(), n)
			require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
			require.Equal(t, ratekit.Never, d.RetryAfter)
			require.Equal(t, "p", d.Policy)
		}
		require.True(t, l.AllowN(2))
		d, err := l.Wait(t.Context(), 0)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = l.Wait(ctx, 1)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, time.Second, l.Peek(time.Now(), 1).RetryAfter, "a done context reserves nothing")
	})
}

// TestWaitOnMockClock checks that Wait reads and sleeps on the Config's
// Clock, and judges the deadline on it. It runs in a synctest bubble only so
// that synctest.Wait can tell when the waiter is asleep on the mock's timer:
// the limiter reads nothing but the mock.
func TestWaitOnMockClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mock := clock.NewMock()
		mock.Set(t0)
		l := mustNew(t, tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 1, Clock: mock})
		require.True(t, l.Allow())
		require.False(t, l.Allow())

		ctx, cancel := mock.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := l.Wait(ctx, 1)
		require.ErrorIs(t, err, ratekit.ErrWaitExceedsDeadline, "deadline read on the mock clock")

		done := make(chan error, 1)
		go func() {
			_, err := l.Wait(context.Background(), 1)
			done <- err
		}()
		synctest.Wait() // the waiter sleeps on the mock's timer
		mock.Add(999 * time.Millisecond)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("woke before its unit was due on the mock clock")
		default:
		}
		mock.Add(time.Millisecond)
		synctest.Wait()
		select {
		case err := <-done:
			require.NoError(t, err)
		default:
			t.Fatal("did not wake when its unit was due on the mock clock")
		}
	})
}

// TestWaitRacesTakes runs Waits and Takes together on the real clock of a
// synctest bubble, for the race detector: every admission, by either, is
// spaced by the emission interval once the burst is spent.
func TestWaitRacesTakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, tokenbucket.Config{Limit: 100, Window: time.Second, Burst: 5})
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					var ok bool
					if g%2 == 0 {
						_, err := l.Wait(t.Context(), 1)
						ok = err == nil
					} else {
						ok = l.Allow()
						time.Sleep(7 * time.Millisecond)
					}
					if ok {
						mu.Lock()
						total++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		require.LessOrEqual(t, total, 5+int(elapsed/(10*time.Millisecond)), "admitted %d in %v", total, elapsed)
	})
}

// TestWaitQueueBeyondState queues reservations further ahead than the state
// holds at the finest time scale (2^62 units of 2^-32 ns: 1.07 s): the last
// waiter waits for room, then reserves its exact instant.
func TestWaitQueueBeyondState(t *testing.T) {
	need64(t)
	synctest.Test(t, func(t *testing.T) {
		// 2^32 units per ns, Burst 2^60 units: 2^28 ns (0.268 s) to refill.
		l := mustNew(t, tokenbucket.Config{Limit: wide(1 << 32), Window: 1, Burst: wide(1 << 60)})
		start := time.Now()
		require.True(t, l.AllowN(wide(1<<60)))
		var waiters []<-chan waitResult
		for i := 0; i < 4; i++ {
			waiters = append(waiters, startWait(t.Context(), l, wide(1<<60), start))
		}
		for i, w := range waiters {
			r := <-w
			require.NoError(t, r.err)
			require.Equal(t, time.Duration(i+1)<<28, r.at, "waiter %d", i)
		}
	})
}
