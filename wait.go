package ratekit

import (
	"context"
	"time"

	"github.com/benbjohnson/clock"
)

// MinRetry is the shortest pause Wait makes between attempts. A limiter that
// denies with a RetryAfter below it (a concurrency limit with no history, or
// a member taken by a racing caller an instant ago) is asked again after
// MinRetry rather than at once, so Wait never busy-loops.
const MinRetry = time.Millisecond

// Wait blocks until l admits n units, and takes them. It reads the time
// from clk and sleeps on clk's timers, so a clock.Mock drives it in tests; a
// nil clk is the real clock.
//
// Wait takes, and on a denial sleeps for the Decision's RetryAfter (at least
// MinRetry) and takes again; it returns the allowed Decision and nil. It
// returns at once, having taken nothing:
//   - ErrExceedsLimit if the request can never be admitted (RetryAfter Never:
//     n < 0 or n larger than the limiter's capacity);
//   - ErrWaitExceedsDeadline, for which errors.Is(err, context.DeadlineExceeded)
//     holds, if the needed wait ends after ctx's deadline, judged on clk;
//   - ctx.Err() if ctx is done before or while it waits.
//
// With each of them it returns the last denial, so the caller can still report
// RetryAfter. Waiters are not queued: whoever asks first after capacity
// returns gets it. Use the reserving Wait methods of the algorithm packages
// (tokenbucket) or concurrency.Acquire where first-come first-served matters.
func Wait(ctx context.Context, clk clock.Clock, l Limiter, n int) (Decision, error) {
	if clk == nil {
		clk = clock.New()
	}
	for {
		if err := ctx.Err(); err != nil {
			return Decision{}, err
		}
		now := clk.Now()
		d := l.Take(now, n)
		if d.Allowed {
			return d, nil
		}
		if d.RetryAfter == Never {
			return d, ErrExceedsLimit
		}
		wait := max(d.RetryAfter, MinRetry)
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < wait {
			return d, ErrWaitExceedsDeadline
		}
		t := clk.Timer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return d, ctx.Err()
		case <-t.C:
		}
	}
}
