package persist_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// A 30-day quota survives a restart; downtime counts as elapsed time.
func TestSingleRoundTrip(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	monthly := mustRolling(t, 1000, 30*24*time.Hour)
	if err := s.Attach("monthly", monthly); err != nil {
		t.Fatal(err)
	}
	if d := monthly.Take(t0, 600); !d.Allowed {
		t.Fatalf("Take 600: %v", d)
	}
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	monthly = mustRolling(t, 1000, 30*24*time.Hour)
	if err := s.Attach("monthly", monthly); err != nil {
		t.Fatal(err)
	}
	if got := used(monthly, t0.Add(29*24*time.Hour)); got != 600 {
		t.Errorf("after restart, used %d, want 600", got)
	}
	if d := monthly.Take(t0.Add(29*24*time.Hour), 401); d.Allowed {
		t.Errorf("Take 401 of the 400 left was allowed: %v", d)
	}
	// The window ended while no process ran: it is over.
	if got := used(monthly, t0.Add(31*24*time.Hour)); got != 0 {
		t.Errorf("after the window ended, used %d, want 0", got)
	}
}

// A checkpoint writes only the states that changed, and deletes the saved
// states of keys that left the set.
func TestCheckpointWritesOnlyChanges(t *testing.T) {
	s := mustOpen(t, tempPath(t), persist.Options{BatchSize: 64})
	orgs := rollingSet(t, 10, time.Hour)
	if err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	single := mustRolling(t, 10, time.Hour)
	if err := s.Attach("global", single); err != nil {
		t.Fatal(err)
	}
	checkpoint := func(wantWritten, wantDeleted uint64) {
		t.Helper()
		before := s.Stats()
		if err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		after := s.Stats()
		if w, d := after.Written-before.Written, after.Deleted-before.Deleted; w != wantWritten || d != wantDeleted {
			t.Errorf("checkpoint wrote %d and deleted %d, want %d and %d", w, d, wantWritten, wantDeleted)
		}
	}

	for i := range 1000 {
		orgs.Take(t0, key(i), 1)
	}
	single.Take(t0, 1)
	checkpoint(1001, 0)
	checkpoint(0, 0)
	for i := range 10 {
		orgs.Take(t0, key(i), 1)
	}
	checkpoint(10, 0)
	orgs.Take(t0, key(5), 100) // denied: changes nothing
	single.Take(t0, 1)
	checkpoint(1, 0)
	for i := range 5 {
		orgs.Delete(key(100 + i))
	}
	orgs.Take(t0, key(3), 1)
	checkpoint(1, 5)
	checkpoint(0, 0)
	if st := s.Stats(); st.Checkpoints != 6 || st.Failures != 0 {
		t.Errorf("Stats %+v, want 6 checkpoints and no failures", st)
	}
}

func key(i int) string { return "org-" + string(rune('a'+i%26)) + "-" + itoa(i) }

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

// Open refuses files that are not ratekit stores with a clear error, and
// does not change them.
func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	boltFile := func(name string, f func(tx *bolt.Tx) error) string {
		p := filepath.Join(dir, name)
		db, err := bolt.Open(p, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(f); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	random := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}

	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"text", write("notes.txt", []byte("a shopping list\n")), persist.ErrNotAStore},
		{"random", write("random.bin", random), persist.ErrNotAStore},
		{"foreign bbolt", boltFile("other.db", func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("users"))
			if err != nil {
				return err
			}
			return b.Put([]byte("alice"), []byte("admin"))
		}), persist.ErrNotAStore},
		{"newer format", boltFile("newer.db", func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("ratekit"))
			if err != nil {
				return err
			}
			return b.Put([]byte("format"), []byte{2})
		}), persist.ErrFormat},
		{"no format", boltFile("noformat.db", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("ratekit"))
			return err
		}), persist.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := persist.Open(tc.path, persist.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open: %v, want an error wrapping %v", err, tc.want)
			}
			after, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("Open changed the file it rejected")
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		if _, err := persist.Open(dir, persist.Options{}); err == nil {
			t.Error("Open of a directory succeeded")
		}
	})
	t.Run("empty bbolt file", func(t *testing.T) {
		p := boltFile("emptybolt.db", func(*bolt.Tx) error { return nil })
		s, err := persist.Open(p, persist.Options{})
		if err != nil {
			t.Fatalf("Open of a bbolt file with no buckets: %v", err)
		}
		mustClose(t, s)
	})
}

// One writer per file: a second Open fails at once while the first is open.
func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	_, err := persist.Open(path, persist.Options{})
	if !errors.Is(err, persist.ErrLocked) {
		t.Fatalf("second Open: %v, want an error wrapping ErrLocked", err)
	}
	mustClose(t, s)
	s2 := mustOpen(t, path, persist.Options{})
	mustClose(t, s2)
}

func TestAttachErrors(t *testing.T) {
	s := mustOpen(t, tempPath(t), persist.Options{})
	l := mustRolling(t, 10, time.Minute)
	if err := s.Attach("", l); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("Attach with an empty name: %v", err)
	}
	if err := s.Attach(string(make([]byte, 1025)), l); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("Attach with a long name: %v", err)
	}
	if err := s.Attach("nil", nil); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("Attach of nil: %v", err)
	}
	var nilRolling *concurrency.Limiter
	if err := s.Attach("nil", nilRolling); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("Attach of a nil pointer: %v", err)
	}
	if err := s.Attach("a", l); err != nil {
		t.Fatal(err)
	}
	if err := s.Attach("a", mustRolling(t, 10, time.Minute)); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("second Attach of a name: %v", err)
	}
	if err := persist.AttachKeyed(s, "a", rollingSet(t, 1, time.Second), persist.StringKey{}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("AttachKeyed of a single limiter's name: %v", err)
	}
	if err := persist.AttachKeyed[string, *rolling.Limiter](s, "b", nil, persist.StringKey{}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("AttachKeyed of a nil set: %v", err)
	}
	if err := s.Drop("a"); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("Drop of an attached name: %v", err)
	}
	mustClose(t, s)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Attach("c", mustRolling(t, 10, time.Minute)); !errors.Is(err, persist.ErrClosed) {
		t.Errorf("Attach after Close: %v", err)
	}
	if err := s.Checkpoint(); !errors.Is(err, persist.ErrClosed) {
		t.Errorf("Checkpoint after Close: %v", err)
	}
	if err := s.Drop("x"); !errors.Is(err, persist.ErrClosed) {
		t.Errorf("Drop after Close: %v", err)
	}
	// The limiter keeps working, unsaved.
	if d := l.Take(t0, 1); !d.Allowed {
		t.Errorf("Take after Close: %v", d)
	}
}

// A saved state of another algorithm is skipped with a clear error; the
// limiter is attached fresh and the next checkpoint replaces the state.
func TestAttachSkipsForeignState(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	daily := mustRolling(t, 10, 24*time.Hour)
	if err := s.Attach("daily", daily); err != nil {
		t.Fatal(err)
	}
	daily.Take(t0, 3)
	mustClose(t, s)

	// The program now limits "daily" with a concurrency limit.
	s = mustOpen(t, path, persist.Options{})
	c, err := concurrency.New(concurrency.Config{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Attach("daily", c)
	var skip *persist.SkipError
	if !errors.Is(err, persist.ErrSkipped) || !errors.Is(err, ratekit.ErrInvalidState) || !errors.As(err, &skip) {
		t.Fatalf("Attach: %v, want a *SkipError wrapping ErrSkipped and ErrInvalidState", err)
	}
	if skip.Name != "daily" || skip.Skipped != 1 {
		t.Errorf("SkipError %+v", skip)
	}
	t.Log(err)
	if d := c.Take(t0, 5); !d.Allowed {
		t.Errorf("the skipped limiter is not fresh: %v", d)
	}
	c.Release(5)
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	c, _ = concurrency.New(concurrency.Config{Limit: 5})
	if err := s.Attach("daily", c); err != nil {
		t.Errorf("Attach after the state was replaced: %v", err)
	}
}

// Drop deletes what an unattached name left in the file.
func TestDrop(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	old := mustRolling(t, 10, time.Hour)
	s.Attach("old", old)
	old.Take(t0, 4)
	oldSet := rollingSet(t, 10, time.Hour)
	persist.AttachKeyed(s, "oldset", oldSet, persist.StringKey{})
	oldSet.Take(t0, "a", 4)
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	for _, name := range []string{"old", "oldset", "never-saved"} {
		if err := s.Drop(name); err != nil {
			t.Errorf("Drop(%q): %v", name, err)
		}
	}
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	old = mustRolling(t, 10, time.Hour)
	oldSet = rollingSet(t, 10, time.Hour)
	if err := s.Attach("old", old); err != nil {
		t.Fatal(err)
	}
	if err := persist.AttachKeyed(s, "oldset", oldSet, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	if used(old, t0) != 0 || oldSet.Len() != 0 {
		t.Errorf("after Drop: single used %d, set has %d keys", used(old, t0), oldSet.Len())
	}
}

// The durability options change how commits reach the disk, never what a
// reopened store holds.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts persist.Options
	}{
		{"NoFreelistSync", persist.Options{NoFreelistSync: true}},
		{"NoSync", persist.Options{NoSync: true, NoFreelistSync: true}},
		{"BatchSize1", persist.Options{NoSync: true, BatchSize: 1}},
		{"FileMode", persist.Options{FileMode: 0o640}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			path := tempPath(t)
			opts.CheckpointInterval = -1
			s, err := persist.Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			set := rollingSet(t, 10, time.Hour)
			persist.AttachKeyed(s, "set", set, persist.StringKey{})
			for i := range 20 {
				set.Take(t0, key(i), 2)
			}
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			persist.Abandon(s) // a crash

			if opts.FileMode != 0 {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm()&^opts.FileMode != 0 {
					t.Errorf("file mode %v, want at most %v", fi.Mode().Perm(), opts.FileMode)
				}
			}
			s = mustOpen(t, path, persist.Options{})
			set = rollingSet(t, 10, time.Hour)
			if err := persist.AttachKeyed(s, "set", set, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			if set.Len() != 20 || used(set.Get(key(7)), t0) != 2 {
				t.Errorf("restored %d keys, key 7 used %d", set.Len(), used(set.Get(key(7)), t0))
			}
		})
	}
}
