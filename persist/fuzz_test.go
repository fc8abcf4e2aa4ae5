package persist_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// FuzzCheckpoints drives a store of one keyed set with takes, deletions,
// checkpoints, crashes (the file closed with no last checkpoint) and clean
// restarts, and requires every restore to give back exactly what the model
// says the file holds: each key's state at the last completed checkpoint.
// Small batches make checkpoints span several transactions.
func FuzzCheckpoints(f *testing.F) {
	f.Add([]byte{0, 1, 3, 0, 2, 4, 3, 0, 0, 4, 0, 0})
	f.Add([]byte{0, 1, 3, 0, 2, 4, 0, 3, 1, 3, 0, 0, 2, 1, 0, 3, 0, 0, 4, 0, 0, 0, 5, 2, 5, 0, 0, 4, 0, 0})
	f.Add([]byte{1, 7, 4, 1, 8, 4, 1, 9, 4, 1, 10, 4, 3, 0, 0, 2, 7, 0, 2, 8, 0, 3, 0, 0, 1, 7, 1, 4, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.db")
		opts := persist.Options{CheckpointInterval: -1, NoSync: true, BatchSize: 3}
		newLimiter := func(string) *rolling.Limiter { return mustRolling(t, 10, time.Minute) }
		m := model.NewStore()
		var s *persist.Store
		var keys set[string, *rolling.Limiter]
		open := func() {
			var err error
			if s, err = persist.Open(path, opts); err != nil {
				t.Fatal(err)
			}
			keys = newSet(newLimiter)
			if err := persist.AttachKeyed(s, "keys", keys, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			if diff := m.Diff(states(t, keys)); diff != "" {
				t.Fatalf("restored states differ from the last checkpoint's: %s", diff)
			}
		}
		open()
		defer func() { s.Close() }()

		now := t0
		for len(ops) >= 3 {
			op, k, n := ops[0], fmt.Sprintf("k%d", ops[1]%16), int(ops[2])
			ops = ops[3:]
			switch op % 6 {
			case 0, 1:
				now = now.Add(time.Duration(n%8) * 10 * time.Second)
				keys.Take(now, k, n%5)
			case 2:
				keys.Delete(k)
			case 3:
				if err := s.Checkpoint(); err != nil {
					t.Fatal(err)
				}
				m.Checkpoint(states(t, keys))
			case 4: // a crash
				if err := persist.Abandon(s); err != nil {
					t.Fatal(err)
				}
				open()
			case 5: // a clean restart
				live := states(t, keys)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				m.Checkpoint(live)
				open()
			}
		}
	})
}

// states returns the state of every key of set.
func states(t *testing.T, set set[string, *rolling.Limiter]) map[string][]byte {
	got := map[string][]byte{}
	for k, l := range set.All() {
		b, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got[k] = b
	}
	return got
}

// FuzzOpen opens arbitrary files, most of them mutations of a real store:
// Open, the restores, a checkpoint and Close may fail, with the documented
// errors, and never panic; a restore that fails restores nothing.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.db")
	s, err := persist.Open(seed, persist.Options{CheckpointInterval: -1, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	single := mustRolling(f, 10, time.Hour)
	s.Attach("single", single)
	single.Take(t0, 3)
	set := rollingSet(f, 10, time.Hour)
	persist.AttachKeyed(s, "keys", set, persist.StringKey{})
	for i := range 40 {
		set.Take(t0, key(i), 1+i%10)
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("not a store"))

	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := persist.Open(path, persist.Options{CheckpointInterval: -1, NoSync: true})
		if err != nil {
			if !errors.Is(err, persist.ErrNotAStore) && !errors.Is(err, persist.ErrFormat) && !errors.Is(err, persist.ErrCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer s.Close()
		single := mustRolling(t, 10, time.Hour)
		if err := s.Attach("single", single); err != nil && !errors.Is(err, persist.ErrSkipped) && !errors.Is(err, persist.ErrCorrupt) {
			t.Errorf("Attach: %v", err)
		}
		set := rollingSet(t, 10, time.Hour)
		err = persist.AttachKeyed(s, "keys", set, persist.StringKey{})
		switch {
		case err == nil, errors.Is(err, persist.ErrSkipped):
		case errors.Is(err, persist.ErrCorrupt), errors.Is(err, persist.ErrFormat):
			if set.Len() != 0 {
				t.Errorf("AttachKeyed failed (%v) but restored %d keys", err, set.Len())
			}
		default:
			t.Errorf("AttachKeyed: %v", err)
		}
		set.Take(t0, "new", 1)
		if err := s.Checkpoint(); err != nil && !errors.Is(err, persist.ErrCorrupt) {
			t.Errorf("Checkpoint: %v", err)
		}
	})
}
