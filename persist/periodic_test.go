package persist_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// failing is a limiter whose state cannot be marshalled while fail is set.
type failing struct {
	*rolling.Limiter
	mu   sync.Mutex
	fail bool
}

var errMarshal = errors.New("marshal failed")

func (f *failing) MarshalBinary() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errMarshal
	}
	return f.Limiter.MarshalBinary()
}

func (f *failing) setFail(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = v
}

// Checkpoints run every CheckpointInterval on the clock, write what changed,
// report their errors to OnError, and stop at Close, which checkpoints once
// more.
func TestPeriodicCheckpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tempPath(t)
		var mu sync.Mutex
		var reported []error
		s, err := persist.Open(path, persist.Options{
			CheckpointInterval: time.Minute,
			NoSync:             true,
			OnError: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				reported = append(reported, err)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		l := &failing{Limiter: mustRolling(t, 10, time.Hour)}
		if err := s.Attach("l", l); err != nil {
			t.Fatal(err)
		}
		want := func(checkpoints, failures, written uint64) {
			t.Helper()
			st := s.Stats()
			if st.Checkpoints != checkpoints || st.Failures != failures || st.Written != written {
				t.Errorf("Stats %+v, want %d checkpoints, %d failures, %d written", st, checkpoints, failures, written)
			}
		}

		l.Take(t0, 1)
		time.Sleep(59 * time.Second)
		synctest.Wait()
		want(0, 0, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		want(1, 0, 1)
		time.Sleep(time.Minute) // nothing changed: nothing written
		synctest.Wait()
		want(2, 0, 1)

		l.Take(t0, 1)
		l.setFail(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		want(2, 1, 1)
		mu.Lock()
		if len(reported) != 1 || !errors.Is(reported[0], errMarshal) {
			t.Errorf("OnError got %v, want the marshal error", reported)
		}
		mu.Unlock()
		if err := s.Checkpoint(); !errors.Is(err, errMarshal) {
			t.Errorf("Checkpoint: %v, want the marshal error", err)
		}
		l.setFail(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		want(3, 2, 2)

		l.Take(t0, 1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		want(4, 2, 3)
		time.Sleep(time.Hour) // the checkpointer has stopped
		synctest.Wait()
		want(4, 2, 3)
	})
}

// Takes on many goroutines race with checkpoints (run with -race); a clean
// Close then saves exactly the state in memory.
func TestCheckpointsDuringTakes(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{BatchSize: 50})
	set := rollingSet(t, 1_000_000, time.Hour)
	single := mustRolling(t, 1_000_000, time.Hour)
	persist.AttachKeyed(s, "set", set, persist.StringKey{})
	s.Attach("single", single)

	const goroutines, takes = 4, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range takes {
				set.Take(t0, key((g*takes+i)%300), 1)
				single.Take(t0, 1)
				if i%500 == 0 {
					set.Delete(key(i % 300))
				}
			}
		})
	}
	stop := make(chan struct{})
	checkpoints := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-stop:
				checkpoints <- err
				return
			default:
			}
			err = errors.Join(err, s.Checkpoint())
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-checkpoints; err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for k, l := range set.All() {
		want[k] = used(l, t0)
	}
	wantSingle := used(single, t0)
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	set = rollingSet(t, 1_000_000, time.Hour)
	single = mustRolling(t, 1_000_000, time.Hour)
	if err := persist.AttachKeyed(s, "set", set, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Attach("single", single); err != nil {
		t.Fatal(err)
	}
	if used(single, t0) != wantSingle || wantSingle != goroutines*takes {
		t.Errorf("single: %d restored, %d in memory, %d taken", used(single, t0), wantSingle, goroutines*takes)
	}
	if set.Len() != len(want) {
		t.Errorf("restored %d keys, want %d", set.Len(), len(want))
	}
	for k, l := range set.All() {
		if used(l, t0) != want[k] {
			t.Errorf("key %s: restored %d, want %d", k, used(l, t0), want[k])
		}
	}
}

// Takes never wait for a checkpoint: with a checkpoint stopped between two
// of its transactions, Takes on every limiter it saves go on.
func TestTakesDoNotWaitForCheckpoints(t *testing.T) {
	s := mustOpen(t, tempPath(t), persist.Options{BatchSize: 10})
	set := rollingSet(t, 1_000_000, time.Hour)
	single := mustRolling(t, 1_000_000, time.Hour)
	persist.AttachKeyed(s, "set", set, persist.StringKey{})
	s.Attach("single", single)
	for i := range 100 {
		set.Take(t0, key(i), 1)
	}
	single.Take(t0, 1)

	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	persist.SetOnCommit(s, func() {
		once.Do(func() {
			close(inside)
			<-release
		})
	})
	done := make(chan error)
	go func() { done <- s.Checkpoint() }()
	<-inside
	for i := range 1000 {
		if d := set.Take(t0, key(i%200), 1); !d.Allowed {
			t.Fatalf("Take during a checkpoint: %v", d)
		}
		single.Take(t0, 1)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
