package concurrency_test

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/internal/conformance"
)

// TestStressTryAcquireReconfigure is TestStress for the lock-free paths
// tryacq changed: TryAcquire's fast admission and denial on lim, the count
// of admitted units in the state word, and Release's first CAS, racing
// Acquire callers that are cancelled, Reconfigures between Limits 1, 3 and
// 8 and restores of the estimate, with bad counts (n <= 0, n > Limit,
// huge n) mixed in. It counts exactly:
//
//   - the units in use never exceed the largest Limit, 8 (a lowered Limit
//     may leave more than it held, never more than some Limit admitted);
//   - every misuse Release (n < 0, or n above anything ever held) is
//     refused and counted, and nothing else is;
//   - the admitted count the hold-time sampler divides by, read once all
//     is quiet, is at least the units whose admission a caller saw, and
//     exceeds them by at most the units granted to Acquire callers that
//     then returned ctx.Err() (granted, counted, and given back);
//   - at the end nothing is held, nobody is queued, and all 8 units fit.
func TestStressTryAcquireReconfigure(t *testing.T) {
	seed := conformance.Seed(t)
	const maxLimit, workers, rounds = 8, 8, 300
	limits := []int{1, 3, maxLimit}
	l, _ := mustNew(t, maxLimit, "s")
	snap, err := l.MarshalBinary()
	require.NoError(t, err)

	var inUse, admitted, cancelledMax, misuse atomic.Int64
	use := func(n int) {
		if got := inUse.Add(int64(n)); got > maxLimit {
			t.Errorf("%d units in use, above every Limit", got)
		}
		if h := l.Held(); h > maxLimit {
			t.Errorf("Held() = %d, above every Limit", h)
		}
	}
	var wg, cancellers sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range rounds {
				n := rng.IntN(maxLimit+3) - 1 // -1..maxLimit+1
				var release func()
				switch k := rng.IntN(16); {
				case k < 7:
					if !l.TryAcquire(n) {
						continue
					}
					release = func() { l.Release(n) }
				case k < 9:
					if !l.Take(t0, n).Allowed {
						continue
					}
					release = func() { l.Release(n) }
				case k < 11: // cancelled from another goroutine at some point
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
						if n > 0 {
							cancelledMax.Add(int64(n))
						}
						continue
					}
					release = r
				case k < 12:
					r, err := l.Acquire(context.Background(), n)
					if err != nil {
						continue // n out of range, or above a Limit set meanwhile
					}
					release = r
				case k < 13:
					c := concurrency.Config{Limit: limits[rng.IntN(len(limits))], Name: "s"}
					if err := l.Reconfigure(c); err != nil {
						t.Errorf("Reconfigure(%d): %v", c.Limit, err)
					}
					continue
				case k < 14:
					if err := l.UnmarshalBinary(snap); err != nil {
						t.Errorf("UnmarshalBinary: %v", err)
					}
					continue
				default: // misuse: never held by anyone
					bad := []int{-1, math.MinInt, maxLimit + 1, math.MaxInt}[rng.IntN(4)]
					l.Release(bad)
					misuse.Add(1)
					continue
				}
				if n > 0 {
					admitted.Add(int64(n))
				}
				use(n)
				runtime.Gosched()
				use(-n)
				release()
			}
		})
	}
	wg.Wait()
	cancellers.Wait()
	require.NoError(t, l.Reconfigure(concurrency.Config{Limit: maxLimit, Name: "s"}))
	require.Zero(t, l.Held())
	require.Zero(t, l.Waiting())
	require.Equal(t, uint64(misuse.Load()), l.RejectedReleases(), "refused Releases")
	got, ok := l.AdmittedCount()
	require.True(t, ok, "a carry is marked under way with nothing running")
	want := uint64(admitted.Load())
	require.GreaterOrEqual(t, got, want, "admitted units lost from the sampler's count")
	require.LessOrEqual(t, got, want+uint64(cancelledMax.Load()), "admitted units counted twice")
	require.True(t, l.TryAcquire(maxLimit), "all units came back")
	l.Release(maxLimit)
	require.Equal(t, uint64(misuse.Load()), l.RejectedReleases())
}
