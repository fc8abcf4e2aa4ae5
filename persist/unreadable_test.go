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

	"github.com/ratekit/ratekit/persist"
)

// savedStore writes a store holding a keyed set of n used keys to a fresh
// file and returns its path.
func savedStore(t *testing.T, n int) string {
	t.Helper()
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	set := rollingSet(t, 10, time.Hour)
	if err := persist.AttachKeyed(s, "keys", set, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		set.Take(t0, key(i), 1+i%10)
	}
	mustClose(t, s)
	return path
}

// unreadableFiles returns files Open cannot read as a store, each with the
// error Open must wrap. Each is written to its own directory.
func unreadableFiles(t *testing.T) []struct {
	name string
	path string
	want error
} {
	t.Helper()
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saved := savedStore(t, 2000)
	store, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	// used is the size of the pages the store uses, which bbolt's file may
	// exceed (it grows the file ahead).
	used := highWater(t, saved)
	if used < 64<<10 || used > len(store) {
		t.Fatalf("the saved store uses %d bytes of a %d-byte file, want more than 16 pages", used, len(store))
	}
	garbage := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	// A store whose two meta pages were overwritten: bbolt cannot tell it
	// from any other file.
	wiped := bytes.Clone(store)
	copy(wiped[:8192], garbage)

	return []struct {
		name string
		path string
		want error
	}{
		// A crash or a full disk while copying, a truncate, a touch: the
		// quotas it held are gone, and Open must not hide it.
		{"empty", write("empty.db", nil), persist.ErrCorrupt},
		{"truncated to 4096 bytes", write("t4096.db", store[:4096]), persist.ErrCorrupt},
		{"truncated to 8192 bytes", write("t8192.db", store[:8192]), persist.ErrCorrupt},
		{"truncated to half", write("half.db", store[:used/2&^4095]), persist.ErrCorrupt},
		{"truncated by a page", write("page.db", store[:used-4096]), persist.ErrCorrupt},
		{"truncated mid-page", write("odd.db", store[:used-1000]), persist.ErrCorrupt},
		{"garbage", write("garbage.db", garbage), persist.ErrNotAStore},
		{"meta pages overwritten", write("wiped.db", wiped), persist.ErrNotAStore},
		{"not bbolt", write("notes.txt", []byte("a shopping list\n")), persist.ErrNotAStore},
		{"one byte", write("one.db", []byte{0}), persist.ErrNotAStore},
	}
}

// Every file Open cannot read as a store gives an error wrapping one of
// persist's, and Open leaves the file as it was: an empty or truncated file
// is not a new store (that would reset every quota it held).
func TestOpenUnreadable(t *testing.T) {
	for _, tc := range unreadableFiles(t) {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := persist.Open(tc.path, persist.Options{CheckpointInterval: -1})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open: %v\nwant an error wrapping %v", err, tc.want)
			}
			after, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Errorf("Open changed the file it rejected: %d bytes, then %d", len(before), len(after))
			}
			if names := dirNames(t, filepath.Dir(tc.path)); len(names) != 1 {
				t.Errorf("Open left files beside the one it rejected: %v", names)
			}
		})
	}
}

// Options.ReplaceCorrupt starts a fresh store in place of a file Open
// rejects with ErrCorrupt, keeps that file beside it, and says so through
// OnError; it still refuses files that are not stores.
func TestOpenReplaceCorrupt(t *testing.T) {
	for _, tc := range unreadableFiles(t) {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			var reported []error
			opts := persist.Options{
				CheckpointInterval: -1,
				ReplaceCorrupt:     true,
				OnError:            func(err error) { reported = append(reported, err) },
			}
			s, err := persist.Open(tc.path, opts)
			if tc.want != persist.ErrCorrupt {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("Open: %v\nwant an error wrapping %v", err, tc.want)
				}
				if after, _ := os.ReadFile(tc.path); !bytes.Equal(before, after) {
					t.Error("Open changed a file it refused")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open with ReplaceCorrupt: %v", err)
			}
			if len(reported) != 1 || !errors.Is(reported[0], persist.ErrCorrupt) {
				t.Errorf("OnError received %v, want one error wrapping ErrCorrupt", reported)
			}
			kept, err := os.ReadFile(tc.path + ".corrupt")
			if err != nil || !bytes.Equal(kept, before) {
				t.Errorf("the rejected file was not kept as %s.corrupt (%v)", filepath.Base(tc.path), err)
			}

			// The fresh store is empty, works, and opens again without the
			// option.
			set := rollingSet(t, 10, time.Hour)
			if err := persist.AttachKeyed(s, "keys", set, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			if set.Len() != 0 {
				t.Errorf("a fresh store restored %d keys", set.Len())
			}
			set.Take(t0, "k", 4)
			mustClose(t, s)
			s = mustOpen(t, tc.path, persist.Options{})
			set = rollingSet(t, 10, time.Hour)
			if err := persist.AttachKeyed(s, "keys", set, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			if got := used(set.Get("k"), t0); got != 4 {
				t.Errorf("after reopening, key k used %d, want 4", got)
			}
		})
	}
}

// ReplaceCorrupt changes nothing for a good store: its states are restored.
func TestOpenReplaceCorruptKeepsGoodStore(t *testing.T) {
	path := savedStore(t, 20)
	s := mustOpen(t, path, persist.Options{ReplaceCorrupt: true, OnError: func(err error) {
		t.Errorf("OnError(%v) for a good store", err)
	}})
	set := rollingSet(t, 10, time.Hour)
	if err := persist.AttachKeyed(s, "keys", set, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	if set.Len() != 20 {
		t.Errorf("restored %d keys, want 20", set.Len())
	}
	if _, err := os.Stat(path + ".corrupt"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a good store was set aside: %v", err)
	}
}

// Open creates a new store whole: the file appears at path only once it is
// a complete, empty store, so a crash while creating it never leaves an
// empty file there (which the next Open would refuse).
func TestOpenCreatesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	s := mustOpen(t, path, persist.Options{})
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "new.db" {
		t.Errorf("files after creating a store: %v, want only new.db", names)
	}
	mustClose(t, s)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		t.Fatal("a new store is an empty file")
	}
	s = mustOpen(t, path, persist.Options{})
	mustClose(t, s)

	if _, err := persist.Open(filepath.Join(dir, "no such dir", "x.db"), persist.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in a missing directory: %v, want an error wrapping os.ErrNotExist", err)
	}
}

// highWater returns the size of the pages the bbolt file at path uses.
func highWater(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	if err := db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return int(size)
}

// dirNames returns the names of the files in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
