package persist_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	bolt "go.etcd.io/bbolt"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// Every key's state survives a restart, and keys that left the set before
// the last checkpoint do not come back.
func TestKeyedRoundTrip(t *testing.T) {
	path := tempPath(t)
	const n = 3000
	s := mustOpen(t, path, persist.Options{BatchSize: 500})
	orgs := rollingSet(t, 100, time.Hour)
	if err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		orgs.Take(t0.Add(time.Duration(i)*time.Second), key(i), 1+i%100)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		orgs.Delete(key(i))
	}
	orgs.Take(t0, "", 7) // the empty key is a key too
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	orgs = rollingSet(t, 100, time.Hour)
	if err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	if got := orgs.Len(); got != n-100+1 {
		t.Errorf("restored %d keys, want %d", got, n-100+1)
	}
	at := t0.Add(n * time.Second)
	for i := 100; i < n; i++ {
		start := t0.Add(time.Duration(i) * time.Second)
		want := 1 + i%100
		if !start.Add(time.Hour).After(at) {
			want = 0 // its window has closed
		}
		if got := used(orgs.Get(key(i)), at); got != want {
			t.Fatalf("key %s: used %d, want %d", key(i), got, want)
		}
	}
	if got := used(orgs.Get(""), t0); got != 7 {
		t.Errorf("empty key: used %d, want 7", got)
	}
}

// Integer and address keys round-trip through their codecs.
func TestKeyedCodecsRoundTrip(t *testing.T) {
	path := tempPath(t)
	newL := func() *rolling.Limiter { return mustRolling(t, 10, time.Hour) }
	ids := newSet(func(int32) *rolling.Limiter { return newL() })
	ips := newSet(func(netipAddr) *rolling.Limiter { return newL() })
	s := mustOpen(t, path, persist.Options{})
	persist.AttachKeyed(s, "ids", ids, persist.IntKey[int32]{})
	persist.AttachKeyed(s, "ips", ips, persist.AddrKey{})
	for _, id := range []int32{-1 << 31, -1, 0, 1, 1<<31 - 1} {
		ids.Take(t0, id, 3)
	}
	for _, a := range []string{"192.0.2.1", "2001:db8::1", "fe80::1%eth0"} {
		ips.Take(t0, mustAddr(t, a), 4)
	}
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	ids = newSet(func(int32) *rolling.Limiter { return newL() })
	ips = newSet(func(netipAddr) *rolling.Limiter { return newL() })
	if err := persist.AttachKeyed(s, "ids", ids, persist.IntKey[int32]{}); err != nil {
		t.Fatal(err)
	}
	if err := persist.AttachKeyed(s, "ips", ips, persist.AddrKey{}); err != nil {
		t.Fatal(err)
	}
	for k, l := range ids.All() {
		if used(l, t0) != 3 {
			t.Errorf("id %d: used %d", k, used(l, t0))
		}
	}
	for k, l := range ips.All() {
		if used(l, t0) != 4 {
			t.Errorf("ip %v: used %d", k, used(l, t0))
		}
	}
	if ids.Len() != 5 || ips.Len() != 3 {
		t.Errorf("restored %d ids and %d ips, want 5 and 3", ids.Len(), ips.Len())
	}
}

// Saved states that cannot be restored are skipped, one by one, with an
// error that names them; every other key is restored; the next checkpoint
// replaces or deletes the skipped states.
func TestKeyedSkips(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	orgs := rollingSet(t, 10, time.Hour)
	persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{})
	for _, k := range []string{"good", "old-format", "foreign", "garbage", "gone:acme", "bitrot"} {
		orgs.Take(t0, k, 2)
	}
	mustClose(t, s)

	// Doctor the file as an older build, another algorithm and a disk
	// error would have.
	conc, _ := concurrency.New(concurrency.Config{Limit: 3})
	foreign, _ := conc.MarshalBinary()
	editBolt(t, path, func(b *bolt.Bucket) {
		old := b.Get([]byte("kold-format"))
		v0 := append([]byte(nil), old[:len(old)-4]...)
		v0[3] = 0 // format version 0
		putRecord(t, b, "kold-format", v0)
		putRecord(t, b, "kforeign", foreign)
		putRecord(t, b, "kgarbage", []byte("rk\x03\x01\xff\xff"))
		putRecord(t, b, "xnot-a-key", []byte("whatever"))
		// A bit flipped on disk, which rolling's UnmarshalBinary would
		// accept as a different count: the checksum catches it.
		rot := append([]byte(nil), b.Get([]byte("kbitrot"))...)
		rot[4] ^= 1
		must(t, b.Put([]byte("kbitrot"), rot))
	})

	s = mustOpen(t, path, persist.Options{})
	// The program no longer limits orgs that are gone.
	orgs = newSet(func(k string) *rolling.Limiter {
		if strings.HasPrefix(k, "gone:") {
			return nil
		}
		return mustRolling(t, 10, time.Hour)
	})
	err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{})
	var skip *persist.SkipError
	if !errors.As(err, &skip) || !errors.Is(err, persist.ErrSkipped) || !errors.Is(err, ratekit.ErrInvalidState) ||
		!errors.Is(err, persist.ErrCorrupt) {
		t.Fatalf("AttachKeyed: %v, want a *SkipError wrapping ErrSkipped, ErrInvalidState and ErrCorrupt", err)
	}
	t.Log(err)
	if skip.Skipped != 6 || len(skip.Errs) != 6 {
		t.Errorf("skipped %d (%d errors), want 6", skip.Skipped, len(skip.Errs))
	}
	for _, want := range []string{"old-format", "foreign", "garbage", "not-a-key", "gone:acme", "bitrot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q", want)
		}
	}
	if got := used(orgs.Get("good"), t0); got != 2 {
		t.Errorf("good key: used %d, want 2", got)
	}
	for _, k := range []string{"old-format", "foreign", "garbage", "bitrot"} {
		if got := used(orgs.Get(k), t0); got != 0 {
			t.Errorf("skipped key %s: used %d, want 0 (fresh)", k, got)
		}
	}
	// The next checkpoint rewrites the skipped keys' states and deletes the
	// record that is not a key and the key with no limiter.
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s = mustOpen(t, path, persist.Options{})
	orgs = rollingSet(t, 10, time.Hour)
	if err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{}); err != nil {
		t.Errorf("AttachKeyed after the checkpoint: %v", err)
	}
	if orgs.Len() != 5 {
		t.Errorf("%d keys after the checkpoint, want 5", orgs.Len())
	}
}

// More skipped keys than a SkipError lists are counted.
func TestKeyedSkipsMany(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	ids := newSet(func(int64) *rolling.Limiter { return mustRolling(t, 10, time.Hour) })
	persist.AttachKeyed(s, "ids", ids, persist.IntKey[int64]{})
	for i := range int64(50) {
		ids.Take(t0, i<<40, 1)
	}
	mustClose(t, s)

	// Read back as int8 keys: all but key 0 are out of range.
	s = mustOpen(t, path, persist.Options{})
	small := newSet(func(int8) *rolling.Limiter { return mustRolling(t, 10, time.Hour) })
	err := persist.AttachKeyed(s, "ids", small, persist.IntKey[int8]{})
	var skip *persist.SkipError
	if !errors.As(err, &skip) || skip.Skipped != 49 || len(skip.Errs) != 10 {
		t.Fatalf("AttachKeyed: %v", err)
	}
	if !strings.HasSuffix(err.Error(), "...") {
		t.Errorf("the error does not say it lists only some: %v", err)
	}
	if small.Len() != 1 || used(small.Get(0), t0) != 1 {
		t.Errorf("restored %d keys", small.Len())
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Deleted != 49 {
		t.Errorf("the checkpoint deleted %d undecodable keys, want 49", st.Deleted)
	}
}

// A file with damaged pages never panics: Open fails, or AttachKeyed fails
// with ErrCorrupt having restored nothing, or it restores what it can read
// and skips what it cannot decode.
func TestKeyedCorruptPages(t *testing.T) {
	dir := t.TempDir()
	clean := dir + "/clean.db"
	s := mustOpen(t, clean, persist.Options{})
	orgs := rollingSet(t, 100, time.Hour)
	persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{})
	for i := range 2000 {
		orgs.Take(t0, key(i), 1+i%100)
	}
	mustClose(t, s)
	data, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := len(data) / page
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 0))
	outcomes := map[string]int{}
	for i := range 40 {
		bad := append([]byte(nil), data...)
		p := 2 + r.IntN(pages-2) // keep the meta pages: those are bbolt's to check
		switch i % 4 {
		case 0: // a page of garbage
			for j := range page {
				bad[p*page+j] = byte(r.Uint32())
			}
		case 1: // a page header of garbage
			for j := range 16 {
				bad[p*page+j] = byte(r.Uint32())
			}
		case 2: // a zeroed page
			clear(bad[p*page : (p+1)*page])
		case 3: // a few flipped bits
			for range 8 {
				bad[p*page+r.IntN(page)] ^= 1 << r.IntN(8)
			}
		}
		path := fmt.Sprintf("%s/bad%d.db", dir, i)
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		outcomes[corruptOutcome(t, path)]++
	}
	t.Logf("outcomes: %v", outcomes)
}

func corruptOutcome(t *testing.T, path string) string {
	s, err := persist.Open(path, persist.Options{CheckpointInterval: -1, NoSync: true})
	if err != nil {
		return "Open failed"
	}
	orgs := rollingSet(t, 100, time.Hour)
	err = persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{})
	var outcome string
	switch {
	case err == nil:
		outcome = "restored"
	case errors.Is(err, persist.ErrSkipped):
		outcome = "some skipped"
	case errors.Is(err, persist.ErrCorrupt), errors.Is(err, persist.ErrFormat):
		if orgs.Len() != 0 {
			t.Errorf("%s: AttachKeyed failed (%v) but restored %d keys", path, err, orgs.Len())
		}
		outcome = "corrupt"
	default:
		t.Errorf("%s: AttachKeyed: %v", path, err)
	}
	// Writing to the damaged file fails cleanly, or works.
	for i := range 100 {
		orgs.Take(t0, key(i), 1)
	}
	if err := s.Checkpoint(); err != nil {
		if !errors.Is(err, persist.ErrCorrupt) {
			t.Errorf("%s: Checkpoint: %v", path, err)
		}
		outcome += ", write failed"
		if err2 := s.Checkpoint(); !errors.Is(err2, persist.ErrCorrupt) {
			t.Errorf("%s: Checkpoint after a failed one: %v", path, err2)
		}
	}
	if err := s.Close(); err != nil && !errors.Is(err, persist.ErrCorrupt) {
		t.Errorf("%s: Close: %v", path, err)
	}
	return outcome
}

// editBolt edits the orgs set's bucket of the store file at path directly.
func editBolt(t *testing.T, path string, f func(b *bolt.Bucket)) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		f(tx.Bucket([]byte("ratekit")).Bucket([]byte("keyed")).Bucket([]byte("orgs")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// putRecord writes a record as the store does: the state, then a CRC-32C of
// the key and the state.
func putRecord(t *testing.T, b *bolt.Bucket, key string, state []byte) {
	t.Helper()
	c := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), []byte(key))
	c = crc32.Update(c, crc32.MakeTable(crc32.Castagnoli), state)
	must(t, b.Put([]byte(key), binary.BigEndian.AppendUint32(append([]byte(nil), state...), c)))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Keys that a sweep drops (idle: their state equals a fresh one's) leave
// the file at the next checkpoint, which loses nothing.
func TestKeyedSweptKeysLeaveTheFile(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	orgs := ratekit.NewKeyed(func(string) *rolling.Limiter { return mustRolling(t, 10, time.Minute) }, ratekit.KeyedConfig{})
	persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{})
	for i := range 100 {
		orgs.Take(t0.Add(time.Duration(i)*time.Second), key(i), 1)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// At t0+89.5s the windows of the first 30 keys (opened in t0..t0+29s)
	// have closed.
	if n := orgs.Sweep(t0.Add(89500 * time.Millisecond)); n != 30 {
		t.Fatalf("swept %d, want 30", n)
	}
	before := s.Stats()
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Deleted-before.Deleted != 30 || st.Written != before.Written {
		t.Errorf("the checkpoint after the sweep deleted %d and wrote %d, want 30 and 0",
			st.Deleted-before.Deleted, st.Written-before.Written)
	}
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	orgs = ratekit.NewKeyed(func(string) *rolling.Limiter { return mustRolling(t, 10, time.Minute) }, ratekit.KeyedConfig{})
	if err := persist.AttachKeyed(s, "orgs", orgs, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	if orgs.Len() != 70 {
		t.Errorf("restored %d keys, want 70", orgs.Len())
	}
	for i := 30; i < 100; i++ {
		if got := used(orgs.Get(key(i)), t0.Add(89500*time.Millisecond)); got != 1 {
			t.Errorf("key %d: used %d, want 1", i, got)
		}
	}
}

// A file with more keys than the set's MaxKeys restores into the set
// without error; the set keeps at most MaxKeys.
func TestKeyedRestoreOverMaxKeys(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, persist.Options{})
	big := rollingSet(t, 10, time.Hour)
	persist.AttachKeyed(s, "orgs", big, persist.StringKey{})
	for i := range 300 {
		big.Take(t0, key(i), 1)
	}
	mustClose(t, s)

	s = mustOpen(t, path, persist.Options{})
	small := ratekit.NewKeyed(func(string) *rolling.Limiter { return mustRolling(t, 10, time.Hour) },
		ratekit.KeyedConfig{MaxKeys: 100, Clock: clock.NewMock()})
	if err := persist.AttachKeyed(s, "orgs", small, persist.StringKey{}); err != nil {
		t.Fatal(err)
	}
	if small.Len() != 100 {
		t.Errorf("the set holds %d keys, want 100", small.Len())
	}
	for k, l := range small.All() {
		if used(l, t0) != 1 {
			t.Errorf("key %s: used %d, want 1", k, used(l, t0))
		}
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Deleted != 200 {
		t.Errorf("the checkpoint deleted %d evicted keys, want 200", st.Deleted)
	}
}
