package ratekit_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
)

func TestWaitSleepsRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.New() // inside the bubble, time is fake
		k := &ticker{period: 250 * time.Millisecond}
		start := time.Now()
		for i := 0; i < 5; i++ {
			d, err := ratekit.Wait(t.Context(), clk, k, 1)
			require.NoError(t, err)
			require.True(t, d.Allowed)
		}
		require.Equal(t, 5, k.Takes())
		require.Equal(t, 4*250*time.Millisecond, time.Since(start), "four waits of exactly RetryAfter")
	})
}

func TestWaitExceedsLimit(t *testing.T) {
	k := &ticker{period: time.Second}
	d, err := ratekit.Wait(context.Background(), clock.NewMock(), k, 2)
	require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
	require.Equal(t, ratekit.Never, d.RetryAfter)
	_, err = ratekit.Wait(context.Background(), clock.NewMock(), k, -1)
	require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
	require.Zero(t, k.Takes())
}

func TestWaitDeadlineOnTheClockPassedIn(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	k := &ticker{period: time.Minute}
	require.True(t, k.Take(mock.Now(), 1).Allowed)

	// The deadline is 30s away on the mock clock; the wait would be a minute.
	ctx, cancel := mock.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := ratekit.Wait(ctx, mock, k, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, ratekit.ErrWaitExceedsDeadline)
	require.Equal(t, time.Minute, d.RetryAfter, "the last denial comes back with the error")
	require.Equal(t, 1, k.Takes(), "nothing taken")
}

func TestWaitOnMockClock(t *testing.T) {
	// In a bubble, synctest.Wait returns once the waiter is blocked (on its
	// timer, or done): each mock second below is added only then, so the
	// test counts mock time alone, however slowly the waiter is scheduled.
	// (Outside one, a waiter descheduled for the 60 ms of real time that
	// sixty Adds take would see the mock clock pass two minutes.)
	synctest.Test(t, func(t *testing.T) {
		mock := clock.NewMock()
		mock.Set(t0)
		k := &ticker{period: time.Minute}
		require.True(t, k.Take(mock.Now(), 1).Allowed)

		done := make(chan error, 1)
		go func() {
			_, err := ratekit.Wait(context.Background(), mock, k, 1)
			done <- err
		}()
		// Advance the mock clock a second at a time until the waiter wakes; it
		// must not wake before the minute is up.
		for elapsed := time.Duration(0); ; {
			synctest.Wait()
			select {
			case err := <-done:
				require.NoError(t, err)
				require.Equal(t, time.Minute, elapsed, "woke at another time than RetryAfter on the mock clock")
				require.Equal(t, 2, k.Takes())
				return
			default:
			}
			require.Less(t, elapsed, 2*time.Minute, "waiter did not wake within two mock minutes")
			mock.Add(time.Second)
			elapsed += time.Second
		}
	})
}

func TestWaitCancelledTakesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := &ticker{period: time.Hour}
		require.True(t, k.Take(time.Now(), 1).Allowed)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := ratekit.Wait(ctx, nil, k, 1)
			done <- err
		}()
		synctest.Wait() // the waiter is asleep on its timer
		cancel()
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 1, k.Takes())

		_, err = ratekit.Wait(ctx, nil, k, 1)
		require.ErrorIs(t, err, context.Canceled, "an already cancelled context returns at once")
	})
}

// stuck denies forever with RetryAfter 0: Wait must still pause MinRetry
// between attempts rather than spin.
type stuck struct{ asks int }

func (s *stuck) Take(time.Time, int) ratekit.Decision { s.asks++; return ratekit.Decision{} }
func (s *stuck) Peek(time.Time, int) ratekit.Decision { return ratekit.Decision{} }
func (s *stuck) Refund(time.Time, int)                {}

func TestWaitNeverBusyLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &stuck{}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := ratekit.Wait(ctx, nil, s, 1)
		require.True(t, errors.Is(err, context.DeadlineExceeded))
		require.LessOrEqual(t, s.asks, int(100*time.Millisecond/ratekit.MinRetry)+1)
	})
}
