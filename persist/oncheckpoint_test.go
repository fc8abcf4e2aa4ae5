package persist_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ratekit/ratekit/persist"
)

// slow is a limiter whose marshalling takes a given (synctest) time.
type slow struct {
	*failing
	took time.Duration
}

func (s *slow) MarshalBinary() ([]byte, error) {
	time.Sleep(s.took) // the bubble's clock: advances exactly this much
	return s.failing.MarshalBinary()
}

type checkpointCall struct {
	took time.Duration
	err  error
}

// OnCheckpoint sees every checkpoint, periodic, explicit and Close's, with
// how long it took and its error.
func TestOnCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var calls []checkpointCall
		s, err := persist.Open(tempPath(t), persist.Options{
			CheckpointInterval: time.Minute,
			NoSync:             true,
			OnCheckpoint: func(took time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, checkpointCall{took, err})
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		l := &slow{failing: &failing{Limiter: mustRolling(t, 10, time.Hour)}, took: 3 * time.Second}
		if err := s.Attach("l", l); err != nil {
			t.Fatal(err)
		}
		l.Take(t0, 1)
		// The periodic checkpoint starts at 1m and marshals until 1m3s; the
		// test must not reach the store's lock while it runs (a goroutine
		// waiting on a mutex would stop the bubble's clock).
		time.Sleep(time.Minute + 4*time.Second)
		synctest.Wait()
		l.setFail(true)
		if err := s.Checkpoint(); !errors.Is(err, errMarshal) {
			t.Fatalf("Checkpoint: %v, want the marshal error", err)
		}
		l.setFail(false)
		l.took = 5 * time.Second
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 3 {
			t.Fatalf("OnCheckpoint called %d times (%v), want 3", len(calls), calls)
		}
		if c := calls[0]; c.took != 3*time.Second || c.err != nil {
			t.Errorf("periodic checkpoint: %v, want 3s and no error", c)
		}
		if c := calls[1]; c.took != 3*time.Second || !errors.Is(c.err, errMarshal) {
			t.Errorf("failed checkpoint: %v, want 3s and the marshal error", c)
		}
		if c := calls[2]; c.took != 5*time.Second || c.err != nil {
			t.Errorf("Close's checkpoint: %v, want 5s and no error", c)
		}
	})
}
