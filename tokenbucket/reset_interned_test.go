package tokenbucket_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/tokenbucket"
)

// TestResetInternedUnderNew: ResetInterned, which tests that assert
// sharing call first, may run while a goroutine calls New or Reconfigure
// (one a test left running, say): it empties the table under the table's
// lock, and New keeps working. It replaced the table, its RWMutex
// included, and a reader holding the lock crashed the binary
// ("sync: RUnlock of unlocked RWMutex").
func TestResetInternedUnderNew(t *testing.T) {
	var wg sync.WaitGroup
	stop, started := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mustNew(t, tokenbucket.Config{Limit: 1 + i%7, Window: time.Second, Burst: 1, Name: "reset"})
			if i == 0 {
				close(started)
			}
		}
	})
	<-started
	for range 200 {
		tokenbucket.ResetInterned()
	}
	close(stop)
	wg.Wait()
}
