package concurrency_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/concurrency"
)

// countingClock is a testClock that counts its Now calls.
type countingClock struct {
	testClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time { c.reads.Add(1); return c.testClock.Now() }

// TestAllowReadsClockOncePerCall: Allow and AllowN read the Config's clock
// once per call, however many times their CAS is retried under contention
// (issue #17 item 5: a retry loop that re-reads the clock doubles the cost
// under contention). Goroutines hammer one small Limiter so that CASes
// fail and retry.
func TestAllowReadsClockOncePerCall(t *testing.T) {
	clk := &countingClock{}
	l, err := concurrency.New(concurrency.Config{Limit: 3, Clock: clk})
	require.NoError(t, err)
	clk.reads.Store(0) // New read it once, for the estimator's epoch
	const goroutines, calls = 4, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				if (g+i)%2 == 0 {
					if l.Allow() {
						l.Release(1)
					}
				} else if l.AllowN(2) {
					l.Release(2)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(goroutines*calls), clk.reads.Load())
	require.Equal(t, 0, l.Held())
	require.Zero(t, l.RejectedReleases())
}
