package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// neverOnlyUnfit holds RetryAfter Never to its one meaning: a request that
// can never be admitted. ratekit.Wait returns ErrExceedsLimit at once on
// it, so a Never reported for a request that time would admit tells a
// caller to give up on it. A limiter drained at one far instant (its
// Start, centuries either side, the zero time, year 9999) and asked for n
// <= Capacity at another, stale or far ahead, may report a wait of
// centuries, saturated below Never; it may report Never only if it would
// deny n at every later time, which the check probes at the end of
// time.Time's range (a limiter whose last window never ends, say). Wait,
// given a deadline, then ends with a deadline error, not ErrExceedsLimit.
func (s Subject) neverOnlyUnfit(t *testing.T) {
	instants := append(s.farInstants(),
		s.Start.AddDate(-300, 0, 0), s.Start.AddDate(300, 0, 0),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC))
	end := time.Unix(1<<62, 0) // far past year 9999; time.Time holds it
	for _, used := range instants {
		for _, at := range instants {
			for _, n := range []int{1, s.Capacity} {
				l := s.New(t)
				// Drained one unit at a time until Peek denies one more
				// (s.capacity(l, used) > 0 is Peek(used, 1) by its
				// bisection, at log2(Capacity) Peeks a unit).
				for l.Take(used, 1).Allowed && l.Peek(used, 1).Allowed {
				}
				never := false
				for _, d := range []ratekit.Decision{l.Peek(at, n), l.Take(at, n)} {
					if !d.Allowed && d.RetryAfter == ratekit.Never {
						never = true
						if e := l.Peek(end, n); e.Allowed {
							t.Fatalf("drained at %s, asked for %d of %d at %s: %v; but it admits them later "+
								"(at %s: %v): RetryAfter Never is for a request that can never be admitted",
								stamp(used), n, s.Capacity, stamp(at), d, stamp(end), e)
						}
					}
				}
				if never {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				clk := fixedClock{Mock: clock.NewMock(), at: at, cancel: cancel}
				_, err := ratekit.Wait(ctx, clk, l, n)
				cancel()
				if errors.Is(err, ratekit.ErrExceedsLimit) {
					t.Fatalf("drained at %s, Wait for %d of %d at %s: %v; want a deadline error or success",
						stamp(used), n, s.Capacity, stamp(at), err)
				}
			}
		}
	}
}
