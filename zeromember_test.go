package ratekit_test

import (
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestTakeAllZeroMember: a zero token bucket, rolling window or Counter (a
// limiter of Limit 0: see The zero value at ratekit.Limiter) among
// TakeAll's members denies n > 0 with RetryAfter Never, and leaves the
// other members as they were: not locked, so that every later call on them
// returns, and with nothing taken. The joint path once locked the members
// before the zero one in its order and then dereferenced the zero one's
// missing block, with the locks held: every later Take, Peek or Refund of
// the good members spun forever.
func TestTakeAllZeroMember(t *testing.T) {
	zeros := []func() ratekit.Limiter{
		func() ratekit.Limiter { return &tokenbucket.Limiter{} },
		func() ratekit.Limiter { return &rolling.Limiter{} },
		func() ratekit.Limiter { return &slidingwindow.Counter{} },
	}
	goods := func(t *testing.T) []ratekit.Limiter {
		tb, err := tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Name: "tb"})
		require.NoError(t, err)
		fw, err := fixedwindow.New(fixedwindow.Config{Limit: 10, Window: time.Minute, Name: "fw"})
		require.NoError(t, err)
		rl, err := rolling.New(rolling.Config{Limit: 10, Window: time.Minute, Name: "rl"})
		require.NoError(t, err)
		sc, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 10, Window: time.Minute, Name: "sc"})
		require.NoError(t, err)
		return []ratekit.Limiter{tb, fw, rl, sc}
	}
	for zi, zero := range zeros {
		for gi := range goods(t) {
			// Members are locked in address order, so the zero one must
			// come after the good one in it for the bug to show: make
			// pairs until one does, and one that does not.
			seen := map[bool]bool{}
			for try := 0; try < 100 && len(seen) < 2; try++ {
				g := goods(t)[gi]
				z := zero()
				after := reflect.ValueOf(z).Pointer() > reflect.ValueOf(g).Pointer()
				if seen[after] {
					continue
				}
				seen[after] = true
				td, ok := returns(func() ratekit.Decision { return ratekit.TakeAll(t0, 1, z, g) })
				require.True(t, ok, "zero member %d: TakeAll did not return", zi)
				require.False(t, td.Allowed, "zero member %d: TakeAll admitted over a limiter of Limit 0", zi)
				require.Equal(t, ratekit.Never, td.RetryAfter, "zero member %d: TakeAll's RetryAfter", zi)
				d, ok := returns(func() ratekit.Decision { return g.Peek(t0, 10) })
				require.True(t, ok, "zero member %d (after %T in lock order: %v): %[2]T left locked by the panicking TakeAll", zi, g, after)
				require.True(t, d.Allowed, "zero member %d (after %T in lock order: %v): %s kept units of a TakeAll that panicked", zi, g, after, d.Policy)
			}
			require.True(t, seen[true], "zero member %d: never allocated after good member %d; the case is not covered", zi, gi)
		}
	}
}

// returns calls f on another goroutine and reports its result, or false
// if f has not returned after a million yields of this one: f waits for a
// lock no one will release (a locked limiter's calls yield in a loop).
func returns(f func() ratekit.Decision) (ratekit.Decision, bool) {
	done := make(chan ratekit.Decision, 1)
	go func() { done <- f() }()
	for range 1_000_000 {
		select {
		case d := <-done:
			return d, true
		default:
			runtime.Gosched()
		}
	}
	return ratekit.Decision{}, false
}
