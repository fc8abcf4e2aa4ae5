package concurrency_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/concurrency"
)

// TestSampleDuringCarry: the count of admitted units the hold-time sampler
// divides by is the state word's count, mod 64, plus Limiter.admitted, to
// which the admission that carries the word's count past a multiple of 64
// adds it after its CAS. A sample taken by another admission in between
// saw 64 units too few: here an interval in which 65 units were admitted
// counted 1, and the first sample set the estimate 65 times too long (1s
// for a true 1s/65). A sampler must not read the count while a carry is
// under way; the carrying admission's own sample counts all 65.
func TestSampleDuringCarry(t *testing.T) {
	l, clk := mustNew(t, 100, "c")
	// The first admission opens the sampler's interval at t0: 1 unit
	// held, 1 admitted.
	require.True(t, l.Take(t0, 1).Allowed)
	// 62 more (count 63) take no sample: no multiple of 64 is crossed.
	for range 62 {
		require.True(t, l.TryAcquire(1))
	}
	// TryAcquire(2) carries the count to 65; between its CAS and its
	// carry, a Take one second on samples.
	at := t0.Add(time.Second)
	clk.Set(at)
	ran := false
	restore := concurrency.SetCarryHook(func() {
		if ran {
			return
		}
		ran = true
		require.True(t, l.Take(at, 1).Allowed)
	})
	require.True(t, l.TryAcquire(2))
	restore()
	require.True(t, ran, "the hook did not run")
	require.Equal(t, 66, l.Held())
	// Over (t0, t0+1s] at least 1 unit was held throughout and 65 were
	// admitted: a sample of 1 unit·1s / 65 units, the first, which sets
	// the estimate; ResetAfter, with all that is held to come back, is
	// the estimate itself.
	d := l.Peek(at, 0)
	require.Equal(t, time.Second/65, d.ResetAfter, "the estimate counts every admitted unit")
}
