package slidingwindow_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestEpochFromConfigClock: a limiter's instants are measured from
// Config.Clock's time at its making, not from the wall clock's. With a mock
// clock far from the wall clock (a simulation of the year 2110, or of
// 1900), instants measured from the wall clock's now were clamped to 73
// years either side of it, all to one instant: the windows never moved, a
// drained limiter stayed drained for good.
func TestEpochFromConfigClock(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2110, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		for _, kind := range []string{"Log", "Counter"} {
			t.Run(fmt.Sprintf("%s/%d", kind, start.Year()), func(t *testing.T) {
				mock := clock.NewMock()
				mock.Set(start)
				cfg := slidingwindow.Config{Limit: 3, Window: time.Minute, Clock: mock}
				var l ratekit.Limiter
				if kind == "Log" {
					l = mustLog(t, cfg)
				} else {
					l = mustCounter(t, cfg)
				}
				now := mock.Now()
				for i := range 3 {
					if d := l.Take(now, 1); !d.Allowed {
						t.Fatalf("Take %d at %v = %v; want allowed", i, now, d)
					}
				}
				d := l.Take(now, 1)
				if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 2*time.Minute {
					t.Fatalf("fourth Take at %v = %v; want denied with a wait of at most two windows", now, d)
				}
				// Two windows on, nothing counts for either kind.
				later := now.Add(2 * time.Minute)
				if d := l.Take(later, 3); !d.Allowed || d.Remaining != 0 {
					t.Fatalf("Take(3) two windows later, at %v = %v; want allowed with Remaining 0", later, d)
				}
				// And the clock conveniences read the same clock.
				mock.Set(later.Add(2 * time.Minute))
				if !l.(interface{ Allow() bool }).Allow() {
					t.Fatalf("Allow at %v, two windows after the last Take: denied", mock.Now())
				}
			})
		}
	}
}

// TestEpochClockOutOfRange: a clock set beyond 146 years from 1970 (the
// year 9999, the zero time) puts the epoch at that bound: nothing
// overflows, and a limiter made there admits its Limit and then denies.
func TestEpochClockOutOfRange(t *testing.T) {
	for _, start := range []time.Time{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), {}} {
		mock := clock.NewMock()
		mock.Set(start)
		cfg := slidingwindow.Config{Limit: 3, Window: time.Minute, Clock: mock}
		for _, l := range []ratekit.Limiter{mustLog(t, cfg), mustCounter(t, cfg)} {
			if d := l.Take(start, 3); !d.Allowed {
				t.Fatalf("%T at %v: Take(3) = %v; want allowed", l, start, d)
			}
			if d := l.Take(start, 1); d.Allowed || d.RetryAfter <= 0 {
				t.Fatalf("%T at %v: Take(1) after 3 = %v; want denied with a wait", l, start, d)
			}
		}
	}
}
