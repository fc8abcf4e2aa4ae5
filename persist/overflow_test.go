package persist_test

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ratekit/ratekit/persist"
)

// A page whose header claims more overflow pages than the file has (a few
// flipped bits in its overflow count) is corruption, reported as such, not
// followed: bbolt frees a page with its overflow one page id at a time
// (an append and a map entry each), so a checkpoint that rewrites such a
// page allocated tens of bytes per claimed page, up to 2^32 of them. This
// is how a TestKeyedCorruptPages run (random seed, bit flips) once drove
// persist.test to 24 GB under -race. The count here, 2^20, is small enough
// for the old code to finish (about 60 MB), and the test bounds what the
// whole open, restore and checkpoint allocate.
func TestOverflowPastTheFile(t *testing.T) {
	t.Run("tree", func(t *testing.T) { overflowPastTheFile(t, false) })
	t.Run("freelist", func(t *testing.T) { overflowPastTheFile(t, true) })
}

func overflowPastTheFile(t *testing.T, freelist bool) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	orgs := rollingSet(t, 100, time.Hour)
	persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{})
	for i := range 500 {
		orgs.Take(t0, key(i), 1)
	}
	mustClose(t, s)

	// The root page of the set's bucket: every checkpoint that changes a
	// key rewrites it, so bbolt frees it with its overflow.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket([]byte("ratekit")).Bucket([]byte("keyed")).Bucket([]byte("orgs")).Root())
		return nil
	})
	pageSize := db.Info().PageSize
	db.Close()
	if root < 2 {
		t.Fatalf("the set's bucket is inline (root %d): add keys", root)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if freelist {
		// The freelist page, which every commit frees: named by the meta
		// page of the last transaction (page header 16 bytes; in the meta,
		// the txid at 64 and the freelist's page id at 48).
		m := 0
		if binary.LittleEndian.Uint64(data[pageSize+64:]) > binary.LittleEndian.Uint64(data[64:]) {
			m = 1
		}
		root = binary.LittleEndian.Uint64(data[m*pageSize+48:])
	}
	const claimed = 1 << 20
	binary.LittleEndian.PutUint32(data[int(root)*pageSize+12:], claimed) // the header's overflow count
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	outcome := func() error {
		s, err := persist.Open(path, persist.Options{CheckpointInterval: -1, NoSync: true})
		if err != nil {
			return err
		}
		defer s.Close()
		orgs := rollingSet(t, 100, time.Hour)
		if err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{}); err != nil {
			return err
		}
		for i := range 500 {
			orgs.Take(t0, key(i), 1)
		}
		return s.Checkpoint()
	}()
	runtime.ReadMemStats(&after)
	if !errors.Is(outcome, persist.ErrCorrupt) {
		t.Errorf("a page claiming %d overflow pages in a %d-page file: %v, want ErrCorrupt", claimed, len(data)/pageSize, outcome)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Errorf("open, restore and checkpoint allocated %d MB, want at most 16", n>>20)
	}
}
