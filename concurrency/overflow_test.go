package concurrency_test

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
)

// hugeN are counts whose sum with a small held count wraps an int, or
// lands in the bits of the state word above held (those beyond int's
// range on a 32-bit platform left out).
var hugeN = func() []int {
	ns := []int{math.MaxInt, math.MaxInt - 1, math.MaxInt - 9, math.MaxInt/2 + 1,
		concurrency.MaxLimit, math.MinInt, math.MinInt + 1, -1}
	for _, n := range []uint64{1 << 32, 1<<32 - 1, 1 << 31} {
		if n <= math.MaxInt {
			ns = append(ns, int(n))
		}
	}
	return ns
}()

// TestTakeHugeNWithUnitsHeld is issue #16's first report: with units held,
// held+n wrapped for n near MaxInt, the Take was admitted with a negative
// Remaining, and the limiter was wrecked (later Takes denied for good,
// Release panicking).
func TestTakeHugeNWithUnitsHeld(t *testing.T) {
	for _, held := range []int{0, 1, 9} {
		for _, n := range hugeN {
			l, _ := mustNew(t, 10, "")
			if held > 0 {
				require.True(t, l.Take(t0, held).Allowed)
			}
			p := l.Peek(t0, n)
			d := l.Take(t0, n)
			require.Equal(t, p, d, "held %d: Peek and Take of %d disagree", held, n)
			require.False(t, d.Allowed, "held %d: Take(%d) = %v", held, n, d)
			require.Equal(t, ratekit.Never, d.RetryAfter, "held %d: Take(%d)", held, n)
			require.Equal(t, 10-held, d.Remaining, "held %d: Take(%d)", held, n)
			require.Equal(t, held, l.Held(), "held %d: Take(%d) changed Held", held, n)
			// The limiter still works: the free units are admitted, the
			// held ones come back.
			require.True(t, l.Take(t0, 10-held).Allowed, "held %d after Take(%d)", held, n)
			require.NotPanics(t, func() { l.Release(10) })
			require.True(t, l.Idle(t0))
		}
	}
}

// TestAcquireHugeNWithUnitsHeld is the same through Acquire: it must fail
// at once with ErrExceedsLimit and hold nothing.
func TestAcquireHugeNWithUnitsHeld(t *testing.T) {
	for _, held := range []int{1, 9} {
		for _, n := range hugeN {
			l, _ := mustNew(t, 10, "")
			require.True(t, l.Take(t0, held).Allowed)
			rel, err := l.Acquire(context.Background(), n)
			require.ErrorIs(t, err, ratekit.ErrExceedsLimit, "held %d: Acquire(%d)", held, n)
			rel()
			require.Equal(t, held, l.Held(), "held %d: Acquire(%d) changed Held", held, n)
			require.True(t, l.Take(t0, 10-held).Allowed)
			require.NotPanics(t, func() { l.Release(10) })
		}
	}
}

// TestReleaseHugeNChangesNothing: a Release or Refund of a count no Take
// could have taken is misuse, whatever its size: it changes nothing, does
// not panic, and is counted by RejectedReleases.
func TestReleaseHugeNChangesNothing(t *testing.T) {
	for _, n := range hugeN {
		l, _ := mustNew(t, 10, "")
		require.True(t, l.Take(t0, 3).Allowed)
		require.NotPanics(t, func() { l.Release(n) }, "Release(%d)", n)
		require.NotPanics(t, func() { l.Refund(t0, n) }, "Refund(%d)", n)
		require.NotPanics(t, func() { ratekit.ReleaseAll(n, l) }, "ReleaseAll(%d)", n)
		require.Equal(t, uint64(3), l.RejectedReleases(), "n %d", n)
		require.Equal(t, 3, l.Held())
		require.True(t, l.Take(t0, 7).Allowed)
		require.False(t, l.Take(t0, 1).Allowed)
	}
}
