package persist

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Errors returned by Open, Attach, AttachKeyed and Checkpoint. Match them
// with errors.Is: the errors returned wrap them with detail.
var (
	// ErrNotAStore is wrapped by Open's error when the file is not a bbolt
	// file, or is a bbolt file that holds data but no ratekit store (another
	// program's database, which Open does not write to).
	ErrNotAStore = errors.New("ratekit: persist: not a ratekit store")

	// ErrFormat is wrapped by Open's error when the file is a ratekit store
	// of a format version this build does not read (written by a newer
	// ratekit), or lacks parts every version has.
	ErrFormat = errors.New("ratekit: persist: unsupported store format")

	// ErrCorrupt is wrapped when the file is damaged: by Open's error for an
	// empty (0-byte) file, a file shorter than the pages its store uses (a
	// truncated copy, a full disk) or one whose first pages bbolt cannot
	// read (see Options.ReplaceCorrupt to start afresh instead), by
	// Attach's and AttachKeyed's when bbolt cannot read the pages of what
	// they restore (nothing is restored then), by a SkipError's reason when
	// a record fails its checksum, and by every checkpoint's error once
	// bbolt has failed writing to it (the store stops writing the file
	// then; see Checkpoint).
	ErrCorrupt = errors.New("ratekit: persist: corrupt store file")

	// ErrLocked is wrapped by Open's error when another process (or another
	// Store in this one) has the file open and did not close it within
	// Options.LockTimeout.
	ErrLocked = errors.New("ratekit: persist: store file is locked by another process")

	// ErrClosed is returned by the methods of a closed Store.
	ErrClosed = errors.New("ratekit: persist: store is closed")

	// ErrSkipped is wrapped by the *SkipError that Attach and AttachKeyed
	// return when they attached the limiters but could not restore some
	// saved states (see SkipError).
	ErrSkipped = errors.New("ratekit: persist: saved states skipped")
)

// Limiter is what a Store saves: a ratekit.Limiter whose state marshals in
// wall-clock terms. Every ratekit algorithm limiter is one.
//
// UnmarshalBinary must reject bytes it cannot use with an error, leaving the
// limiter unchanged, and must not keep b (it points into the store file's
// memory map). A Limiter that also implements encoding.BinaryAppender is
// marshalled through it, into a reused buffer, which saves an allocation per
// key and checkpoint. (ratekit's own algorithm limiters do not implement it:
// a checkpoint of a keyed set of them allocates one state a key.)
type Limiter interface {
	ratekit.Limiter
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// Defaults for Options fields left zero.
const (
	// DefaultCheckpointInterval is the CheckpointInterval of Options that
	// set none: a crash loses at most about this much of each key's
	// admissions (see Store).
	DefaultCheckpointInterval = 10 * time.Second
	// DefaultBatchSize is the number of saved states a checkpoint writes
	// per bbolt transaction when Options.BatchSize is 0.
	DefaultBatchSize = 50_000
	// DefaultFileMode is the permission of a store file Open creates.
	DefaultFileMode os.FileMode = 0o600
)

// maxBatchBytes caps the states a checkpoint buffers for one transaction, so
// that batches of large states (an exact sliding log keeps a timestamp per
// admitted unit) do not hold hundreds of megabytes.
const maxBatchBytes = 16 << 20

// maxNameLen bounds the names of attached limiters.
const maxNameLen = 1024

// Options configures Open. The zero value is usable: checkpoints every
// DefaultCheckpointInterval, every commit synced to disk, no waiting for a
// locked file.
type Options struct {
	// CheckpointInterval is the time between periodic checkpoints. 0 means
	// DefaultCheckpointInterval; a negative value turns periodic
	// checkpoints off (call Checkpoint yourself; Close still checkpoints).
	CheckpointInterval time.Duration

	// Clock drives the periodic checkpoints (its Ticker). nil: the real
	// clock. The store reads no other time (but OnCheckpoint's durations):
	// saved states carry the times the limiters were given.
	Clock clock.Clock

	// OnError, if set, receives the error of each periodic checkpoint that
	// fails, on the checkpointing goroutine; it must not call Close, which
	// waits for that goroutine. Checkpoint and Close return their errors
	// instead. Stats counts failures either way.
	OnError func(error)

	// OnCheckpoint, if set, is called after every checkpoint, periodic or
	// by Checkpoint or Close, with how long it took (on the process's
	// monotonic clock, read only when OnCheckpoint is set) and its error,
	// nil if it completed: for metrics. It is called with the store's lock
	// held, so it must be quick and must not call Attach, Checkpoint, Drop
	// or Close (Stats is fine).
	OnCheckpoint func(took time.Duration, err error)

	// LockTimeout is how long Open waits for another process to close the
	// file (bbolt allows one writer per file, enforced by flock). 0 or
	// negative: Open fails at once with an error wrapping ErrLocked.
	LockTimeout time.Duration

	// NoSync skips the fsync of each checkpoint transaction. A crash of the
	// process still loses nothing that was committed (the kernel holds the
	// pages); a crash of the machine or a power loss may lose recent
	// checkpoints or, as bbolt documents, corrupt the file. Use it only for
	// state that is cheap to lose.
	NoSync bool

	// NoFreelistSync does not write bbolt's list of free pages at each
	// commit, which makes checkpoints of many keys cheaper (the list grows
	// with the file); in exchange Open rebuilds the list by scanning the
	// whole file. It does not weaken durability.
	NoFreelistSync bool

	// BatchSize is the number of saved states (writes and deletions) per
	// bbolt transaction of a checkpoint; each transaction also holds at most
	// 16 MiB of states. 0 or negative means DefaultBatchSize. Smaller
	// batches bound the memory bbolt holds for a transaction, larger ones
	// spend fewer fsyncs (two per transaction); see Store for what either
	// means in a crash.
	BatchSize int

	// FileMode is the permission of the file if Open creates it. 0 means
	// DefaultFileMode.
	FileMode os.FileMode

	// ReplaceCorrupt makes Open start a new, empty store when the file is
	// damaged (Open would return an error wrapping ErrCorrupt: an empty
	// file, a truncated one, unreadable first pages), for a program that
	// would rather lose its saved quotas than not start. Open renames the
	// damaged file to path + ".corrupt" (replacing an older one), so that it
	// can be inspected, and passes the error it would have returned to
	// OnError, if set. Every limiter then starts fresh. Files Open refuses
	// for other reasons (ErrNotAStore, ErrFormat, ErrLocked, file system
	// errors) are still refused and left as they are. false (the default):
	// Open returns the error and changes nothing.
	ReplaceCorrupt bool
}

// Store keeps the state of attached limiters in a bbolt file, so that
// quotas survive a restart: it restores saved state when a limiter is
// attached and writes checkpoints periodically and on Close.
//
// # Checkpoints
//
// A checkpoint marshals every attached limiter and writes those whose state
// changed since the state last written (it compares a 63-bit hash of the
// bytes, see AttachKeyed), and deletes the saved state of keys that left
// their keyed set (swept, evicted or deleted), so the file mirrors the
// limiters in memory. The writes go in batches of Options.BatchSize, one
// bbolt transaction each. Takes never wait for a checkpoint: it reads each
// limiter's state as a concurrent Peek would, and writes to disk with no
// limiter's lock held. Checkpoints, Attach and Close are serialised with
// each other.
//
// # What a crash loses
//
// A bbolt transaction is atomic and, unless NoSync, durable when committed.
// So after a crash at any moment, the file opens cleanly and holds, for each
// key, a complete state: the one the last completed checkpoint wrote (or
// left in place, unchanged), or a newer one from the checkpoint in progress
// if the batch holding that key had committed. Different keys may come from
// those two checkpoints; no key's state is ever torn or older than the last
// completed checkpoint. A key deleted by the checkpoint in progress may come
// back with its state from the one before.
//
// Each key therefore loses at most the admissions it made after the last
// completed checkpoint read its state: about one CheckpointInterval plus the
// time a checkpoint takes. The limiters admit that many more after the
// restart, at most. (A key whose deletion was lost comes back as it was at
// the last completed checkpoint, as if it had not left its set.) A clean
// Close loses nothing.
//
// Downtime counts as elapsed time (see Time in the package doc).
//
// A Store is safe for concurrent use. Close it: it checkpoints a last time
// and releases the file.
type Store struct {
	db   *bolt.DB
	seed maphash.Seed // hashes states to tell changed ones, stable for the process

	batchSize    int
	onError      func(error)
	onCheckpoint func(time.Duration, error)

	// mu serialises Attach, Checkpoint, Drop and Close, and guards the fields
	// below it.
	mu       sync.Mutex
	closed   bool
	broken   error // set when bbolt panicked writing: see update
	names    map[string]bool
	singles  []*single
	sets     []keyedSet
	scratch  []byte // a marshal buffer for single limiters
	onCommit func() // test hook: called after each committed transaction

	stop     chan struct{} // closed by Close to stop the checkpointer, if any
	stopOnce sync.Once
	done     chan struct{} // closed by the checkpointer when it returns

	checkpoints, failures, written, deleted atomic.Uint64
}

// keyedSet is what a Store needs of an attached keyed set; *keyed[K, L]
// implements it.
type keyedSet interface {
	checkpoint() error
}

// single is an attached single limiter.
type single struct {
	name string
	l    Limiter
	// hash is the hash of the saved state (Store.hash); ok reports whether
	// there is one.
	hash uint64
	ok   bool
}

// The layout of a store file (format version 1). All ratekit data lives in
// one top-level bucket, so the store could share a file with other data:
//
//	"ratekit"                        bucket
//	    "format"                     one byte: 1
//	    "limiters"                   bucket: name -> state (single limiters)
//	    "keyed"                      bucket of buckets, one per keyed set:
//	        <name>                   bucket: 'k' + encoded key -> state
//
// A value is a limiter's state, its MarshalBinary output (which carries its
// own algorithm tag and version, internal/core's header), followed by a
// CRC-32C of the record's key and the state, 4 bytes big-endian: bbolt
// checks its meta pages but not its data pages, and a state damaged on disk
// must not be restored as if it were what was saved. Keys of a keyed set
// are prefixed with 'k' so that the empty key (bbolt has no zero-length
// keys) can be stored, and so that a later version can keep other records
// in the same bucket.
var (
	bucketRoot     = []byte("ratekit")
	keyFormat      = []byte("format")
	bucketLimiters = []byte("limiters")
	bucketKeyed    = []byte("keyed")
)

const (
	formatVersion = 1
	entryPrefix   = 'k'
	sumLen        = 4 // the checksum after each state
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendSum appends the checksum of a record: key, and the state that ends
// b at v0.
func appendSum(b []byte, v0 int, key []byte) []byte {
	c := crc32.Update(0, castagnoli, key)
	c = crc32.Update(c, castagnoli, b[v0:])
	return binary.BigEndian.AppendUint32(b, c)
}

// splitValue returns the state of a record, or an error wrapping ErrCorrupt
// if its checksum does not match.
func splitValue(key, v []byte) ([]byte, error) {
	// The key's bytes are read first, whatever v holds: a restore's first
	// pass calls this under guard to read every byte of a damaged page
	// there, before anything formats the key (a key bbolt reads past its
	// page, beside a short value, faulted in an error's %q, unguarded).
	c := crc32.Update(0, castagnoli, key)
	if len(v) < sumLen {
		return nil, fmt.Errorf("%w: a value of %d bytes", ErrCorrupt, len(v))
	}
	state := v[:len(v)-sumLen]
	c = crc32.Update(c, castagnoli, state)
	if c != binary.BigEndian.Uint32(v[len(state):]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return state, nil
}

// Open opens the store file at path and starts periodic checkpoints unless
// opts turns them off. If there is no file at path, Open creates the store
// whole: it writes a new empty store to a file beside path (path +
// ".new-" and a number) and links it to path, so that path never names an
// empty or partial store, even after a crash; such a crash may leave the
// ".new-" file behind, which may be deleted.
//
// Open reads nothing as an empty store that could be a damaged one: its
// error wraps ErrCorrupt for an empty (0-byte) file, a file shorter than
// the pages its store uses, or one whose first pages bbolt cannot read
// (unless opts.ReplaceCorrupt); ErrNotAStore for a file that is not a
// ratekit store (not a bbolt file, or another program's bbolt database);
// ErrFormat for a store of an unknown format version; and ErrLocked when
// another process holds the file past opts.LockTimeout. Errors of the file
// system (a missing directory, a permission) wrap the *fs.PathError. It
// never modifies a file it rejects. A bbolt file with no buckets at all
// (no data to lose) is made an empty store.
func Open(path string, opts Options) (*Store, error) {
	mode := opts.FileMode
	if mode == 0 {
		mode = DefaultFileMode
	}
	before, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = create(path, mode)
	}
	var db *bolt.DB
	if err == nil {
		db, err = openStore(path, mode, opts)
	}
	if errors.Is(err, ErrCorrupt) && opts.ReplaceCorrupt {
		db, err = replace(path, before, mode, opts, err)
	}
	if err != nil {
		return nil, fmt.Errorf("persist: open %s: %w", path, err)
	}
	s := &Store{
		db:           db,
		seed:         maphash.MakeSeed(),
		batchSize:    opts.BatchSize,
		onError:      opts.OnError,
		onCheckpoint: opts.OnCheckpoint,
		names:        map[string]bool{},
	}
	if s.batchSize <= 0 {
		s.batchSize = DefaultBatchSize
	}
	interval := opts.CheckpointInterval
	if interval == 0 {
		interval = DefaultCheckpointInterval
	}
	if interval > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		clk := opts.Clock
		if clk == nil {
			clk = clock.New()
		}
		go s.run(clk.Ticker(interval))
	}
	return s, nil
}

// openStore opens the store file at path, which exists, and checks that it
// holds a ratekit store.
func openStore(path string, mode os.FileMode, opts Options) (*bolt.DB, error) {
	db, err := openBolt(path, mode, opts)
	if err != nil {
		return nil, err
	}
	if err := initStore(db); err != nil {
		_ = guard(db.Close)
		return nil, err
	}
	return db, nil
}

// replace sets the damaged file at path aside as path + ".corrupt" and opens
// a new store in its place, for Options.ReplaceCorrupt; cause is the error
// that found the file damaged, and before what Open found at path before
// reading it.
func replace(path string, before os.FileInfo, mode os.FileMode, opts Options, cause error) (*bolt.DB, error) {
	// Set aside only the file that was judged: if another process replaced
	// it meanwhile (say, started afresh itself), that one is its to use.
	now, err := os.Stat(path)
	if err != nil || before == nil || !os.SameFile(before, now) {
		return nil, cause
	}
	if opts.OnError != nil {
		opts.OnError(fmt.Errorf("persist: open %s: %w; starting a new store, the damaged file is kept as %s.corrupt",
			path, cause, filepath.Base(path)))
	}
	if err := os.Rename(path, path+".corrupt"); err != nil {
		return nil, fmt.Errorf("setting the damaged file aside: %w (the file is damaged: %w)", err, cause)
	}
	if err := create(path, mode); err != nil {
		return nil, err
	}
	return openStore(path, mode, opts)
}

// create writes a new, empty store to path, whole: bbolt initialises a new
// file in several writes, and an empty or partial file left at path by a
// crash would be refused by the next Open. The store is written to a
// temporary file beside path, synced, and then linked to path, which fails
// if another process created path meanwhile (that store is then used).
func create(path string, mode os.FileMode) error {
	tmp, err := createTemp(path, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	db, err := bolt.Open(tmp, mode, &bolt.Options{Timeout: time.Nanosecond, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	err = db.Update(initBuckets) // synced
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	switch err := os.Link(tmp, path); {
	case err == nil, errors.Is(err, fs.ErrExist):
	default:
		// A file system without hard links: rename, which would replace
		// a store created at path by another process in the last
		// microseconds.
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	syncDir(filepath.Dir(path))
	return nil
}

// createTemp creates an empty file of mode beside path, with a name no
// other file has, and returns its name.
func createTemp(path string, mode os.FileMode) (string, error) {
	for {
		name := path + ".new-" + strconv.FormatUint(uint64(rand.Uint32()), 10)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return name, f.Close()
	}
}

// syncDir makes the directory entries of dir durable, where the system
// allows it (not on Windows); a crash may otherwise lose a new store's
// name, which costs nothing but the empty store.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// errEmpty is the error of an empty store file.
var errEmpty = fmt.Errorf("%w: an empty file (0 bytes)", ErrCorrupt)

// openBolt opens the bbolt file at path, which exists, and maps its errors
// to persist's. It never creates or initialises a file: bbolt would write
// a new database into an empty file.
func openBolt(path string, mode os.FileMode, opts Options) (db *bolt.DB, err error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		// bbolt waits forever for a zero Timeout; any timeout under its
		// 50ms retry period tries the lock exactly once.
		timeout = time.Nanosecond
	}
	// A damaged file can make bbolt index past a page or fault reading past
	// its memory map. Turn both into errors (see guard), and close the file
	// ourselves if that happens, since bbolt cannot.
	var file *os.File
	bopts := &bolt.Options{
		Timeout:        timeout,
		NoSync:         opts.NoSync,
		NoFreelistSync: opts.NoFreelistSync,
		// The hashmap freelist allocates in O(1) where the array one scans:
		// a checkpoint of a million keys frees and allocates thousands of
		// pages.
		FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag&^os.O_CREATE, perm)
			if err != nil {
				return nil, err
			}
			if fi, err := f.Stat(); err != nil || fi.Size() == 0 {
				_ = f.Close()
				if err == nil {
					err = errEmpty
				}
				return nil, err
			}
			file = f
			return f, nil
		},
	}
	var used int64
	err = guard(func() error {
		var err error
		db, err = bolt.Open(path, mode, bopts)
		if err != nil {
			return err
		}
		return db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	})
	if err == nil {
		// A file shorter than its store's pages was truncated: bbolt
		// would fault reading the missing ones, or not notice if they
		// are free.
		fi, serr := file.Stat()
		switch {
		case serr != nil:
			err = serr
		case fi.Size() < used:
			err = fmt.Errorf("%w: truncated: the store uses %d bytes, the file has %d", ErrCorrupt, used, fi.Size())
		default:
			return db, nil
		}
		_ = guard(db.Close)
		return nil, err
	}
	switch {
	case errors.Is(err, ErrCorrupt):
		if db != nil {
			_ = guard(db.Close)
		} else if file != nil {
			_ = file.Close()
		}
		return nil, err
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w (%w)", ErrLocked, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrChecksum):
		return nil, fmt.Errorf("%w (bbolt: %w)", ErrNotAStore, err)
	case strings.HasPrefix(err.Error(), "file size too small"):
		// bbolt has no error value for a file shorter than its two meta
		// pages (TestOpenUnreadable holds this match to bbolt's message).
		return nil, fmt.Errorf("%w: truncated (bbolt: %w)", ErrCorrupt, err)
	}
	return nil, err
}

// initStore checks that db holds a ratekit store of a known version, or
// makes an empty one in a file without buckets.
func initStore(db *bolt.DB) error {
	var empty bool
	err := guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			root := tx.Bucket(bucketRoot)
			if root == nil {
				k, _ := tx.Cursor().First()
				empty = k == nil
				if !empty {
					return fmt.Errorf("%w: a bbolt file without a %q bucket", ErrNotAStore, bucketRoot)
				}
				return nil
			}
			v := root.Get(keyFormat)
			if v == nil {
				return fmt.Errorf("%w: no format version", ErrFormat)
			}
			if len(v) != 1 || v[0] != formatVersion {
				return fmt.Errorf("%w: format version %x, this build reads %d", ErrFormat, v, formatVersion)
			}
			if root.Bucket(bucketLimiters) == nil || root.Bucket(bucketKeyed) == nil {
				return fmt.Errorf("%w: buckets missing", ErrFormat)
			}
			return checkPages(tx, root)
		})
	})
	if err != nil || !empty {
		return err
	}
	return guard(func() error { return db.Update(initBuckets) })
}

// initBuckets makes the buckets of an empty store.
func initBuckets(tx *bolt.Tx) error {
	root, err := tx.CreateBucket(bucketRoot)
	if err != nil {
		return err
	}
	if err := root.Put(keyFormat, []byte{formatVersion}); err != nil {
		return err
	}
	if _, err := root.CreateBucket(bucketLimiters); err != nil {
		return err
	}
	_, err = root.CreateBucket(bucketKeyed)
	return err
}

// checkPages reports a file whose tree claims more pages than it has, as
// corruption. A page's header counts the overflow pages that follow it, and
// bbolt frees a page with its overflow one page id at a time (an append and
// a map entry each) whenever a write rewrites it: a few flipped bits in
// that count made a checkpoint allocate tens of bytes for each of up to
// 2^32 claimed pages. The tree's pages are disjoint, so in a sound file
// they number at most the file's pages, less the two meta pages;
// Bucket.Stats walks them (every bucket in root, nested ones included)
// reading each page header once, which costs as much as the restores that
// follow read. Every commit frees the freelist page too, so its overflow
// must end inside the file: no exported API names that page, so
// checkPages reads its id from the meta page of tx's transaction.
func checkPages(tx *bolt.Tx, root *bolt.Bucket) error {
	ps := int64(tx.DB().Info().PageSize)
	st := root.Stats()
	claimed := int64(st.BranchPageN) + int64(st.BranchOverflowN) + int64(st.LeafPageN) + int64(st.LeafOverflowN)
	if st.BranchOverflowN < 0 || st.LeafOverflowN < 0 {
		claimed = -1 // a sum that wrapped around
	}
	have := tx.Size()/ps - 2
	if claimed < 0 || claimed > have {
		return fmt.Errorf("%w: its tree claims %d pages, the file has %d", ErrCorrupt, claimed, have)
	}
	fl, err := freelistPage(tx, ps)
	if err != nil || fl == noFreelist {
		return err
	}
	info, err := tx.Page(int(fl))
	if err != nil || info == nil || int64(fl)+int64(info.OverflowCount) >= tx.Size()/ps {
		return fmt.Errorf("%w: its freelist page %d overflows the file's %d pages (%v)", ErrCorrupt, fl, tx.Size()/ps, err)
	}
	return nil
}

// noFreelist is bbolt's freelist page id when it keeps no freelist page.
const noFreelist = ^uint64(0)

// freelistPage returns the freelist page id in the meta page of tx's
// transaction, one of the file's first two pages (bbolt's meta layout:
// after the 16-byte page header, the freelist's page id at 32 and the
// transaction id at 48; bbolt checked the meta's checksum at Open).
func freelistPage(tx *bolt.Tx, ps int64) (uint64, error) {
	f, err := os.Open(tx.DB().Path())
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b := make([]byte, 2*ps)
	if _, err := f.ReadAt(b, 0); err != nil {
		return 0, err
	}
	for m := range int64(2) {
		meta := b[m*ps+16:]
		if binary.LittleEndian.Uint64(meta[48:]) == uint64(tx.ID()) {
			return binary.LittleEndian.Uint64(meta[32:]), nil
		}
	}
	return 0, fmt.Errorf("%w: no meta page of transaction %d", ErrCorrupt, tx.ID())
}

// guard runs f, turning a panic or a memory fault in it into an error
// wrapping ErrCorrupt. It is only for calls into bbolt, never around the
// caller's code (a limiter's or a codec's), whose panics are bugs to
// propagate: bbolt trusts page headers, so a damaged page can send it out
// of a slice's bounds or past the end of its memory map, and it panics
// when it finds its free-page list inconsistent.
func guard(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	return f()
}

// run is the periodic checkpointer.
func (s *Store) run(t *clock.Ticker) {
	defer close(s.done)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			var err error
			if !s.closed {
				err = s.checkpoint()
			}
			s.mu.Unlock()
			if err != nil && s.onError != nil {
				s.onError(err)
			}
		}
	}
}

// Checkpoint writes the state of every attached limiter that changed since
// the last checkpoint, as the periodic checkpoints do, and returns when it
// is on disk. It returns the errors it met, joined; the sets and keys they
// name were not saved, the others were, and the next checkpoint tries the
// failed ones again. Once bbolt has failed writing to a damaged file, every
// checkpoint returns that error, wrapping ErrCorrupt, and writes nothing:
// restore what you can into a new file. After Close it returns ErrClosed.
func (s *Store) Checkpoint() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.checkpoint()
}

// checkpoint is Checkpoint with s.mu held.
func (s *Store) checkpoint() error {
	if s.onCheckpoint == nil {
		return s.checkpointAll()
	}
	start := time.Now()
	err := s.checkpointAll()
	s.onCheckpoint(time.Since(start), err)
	return err
}

// checkpointAll writes every attached limiter's changed state and counts the
// checkpoint.
func (s *Store) checkpointAll() error {
	var errs []error
	if err := s.checkpointSingles(); err != nil {
		errs = append(errs, err)
	}
	for _, a := range s.sets {
		if err := a.checkpoint(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.failures.Add(1)
		return join(errs...)
	}
	s.checkpoints.Add(1)
	return nil
}

// checkpointSingles writes the single limiters whose state changed, in one
// transaction (there are few).
func (s *Store) checkpointSingles() error {
	type put struct {
		a      *single
		v0, v1 int
		hash   uint64
	}
	var puts []put
	var errs []error
	buf := s.scratch[:0]
	for _, a := range s.singles {
		v0 := len(buf)
		var err error
		buf, err = appendState(buf, a.l)
		if err != nil {
			errs = append(errs, fmt.Errorf("persist: marshal %q: %w", a.name, err))
			buf = buf[:v0]
			continue
		}
		h := s.hash(buf[v0:])
		if a.ok && sameState(a.hash, h) {
			buf = buf[:v0]
			continue
		}
		buf = appendSum(buf, v0, []byte(a.name))
		puts = append(puts, put{a, v0, len(buf), h})
	}
	s.scratch = buf[:0]
	if len(puts) > 0 {
		err := s.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRoot).Bucket(bucketLimiters)
			for _, p := range puts {
				if err := b.Put([]byte(p.a.name), buf[p.v0:p.v1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return join(append(errs, fmt.Errorf("persist: checkpoint of single limiters: %w", err))...)
		}
		for _, p := range puts {
			p.a.hash, p.a.ok = p.hash, true
		}
		s.written.Add(uint64(len(puts)))
		s.committed()
	}
	return join(errs...)
}

// update runs fn in a write transaction. bbolt panics when it finds the
// file damaged while writing (a page both in use and free, say); update
// turns that into an error wrapping ErrCorrupt, and marks the store broken:
// every later write returns the same error without touching the file, so
// that a damaged file is not made worse. The caller holds s.mu.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	if s.broken != nil {
		return s.broken
	}
	err := guard(func() error { return s.db.Update(fn) })
	if errors.Is(err, ErrCorrupt) { // only guard makes it here
		s.broken = fmt.Errorf("persist: the store file is damaged and no longer written: %w", err)
		return s.broken
	}
	return err
}

// committed runs the test hook after a committed transaction.
func (s *Store) committed() {
	if s.onCommit != nil {
		s.onCommit()
	}
}

// hash returns the side-table hash of a state: 63 bits of a seeded hash, the
// low bit cleared for the mark (see keyed).
func (s *Store) hash(state []byte) uint64 { return maphash.Bytes(s.seed, state) &^ 1 }

// sameState reports whether two side-table values hash the same state,
// ignoring their marks.
func sameState(a, b uint64) bool { return (a^b)&^1 == 0 }

// appendState appends l's state to b, through AppendBinary if l has it.
func appendState[L Limiter](b []byte, l L) ([]byte, error) {
	if a, ok := any(l).(encoding.BinaryAppender); ok {
		return a.AppendBinary(b)
	}
	st, err := l.MarshalBinary()
	return append(b, st...), err
}

// Attach attaches a single limiter under name, restoring its saved state if
// the store has one, and saves its state at every checkpoint from now on.
// Attach it before it is used: the restored state replaces the limiter's.
//
// The state is restored with l.UnmarshalBinary. If that fails (a state of
// another algorithm, after the limiter of a name changed algorithm, or of
// an older format), l is attached as it is, unrestored, the next
// checkpoint overwrites the saved state, and Attach returns a *SkipError
// (wrapping ErrSkipped and the cause). Any other error means l was not
// attached: an invalid name (empty or longer than 1024 bytes, wrapping
// ratekit.ErrInvalidConfig), a name already attached to this Store (as a
// single limiter or a keyed set: one namespace), a nil l, or ErrClosed.
func (s *Store) Attach(name string, l Limiter) error {
	if isNil(l) {
		return core.Invalid("persist", "Attach(%q) of a nil limiter", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.claim(name); err != nil {
		return err
	}
	a := &single{name: name, l: l}
	var skipErr error
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketRoot).Bucket(bucketLimiters).Get([]byte(name))
			if v == nil {
				return nil
			}
			state, err := splitValue([]byte(name), v)
			if err != nil {
				// A state no limiter makes: the next checkpoint overwrites it.
				a.hash, a.ok = 0, true
				skipErr = &SkipError{Name: name, Skipped: 1, Errs: []error{err}}
				return nil
			}
			a.hash, a.ok = s.hash(state), true
			if err := l.UnmarshalBinary(state); err != nil {
				// Keep a.hash: the restored limiter's state differs from v,
				// so the next checkpoint overwrites v.
				skipErr = &SkipError{Name: name, Skipped: 1, Errs: []error{err}}
			}
			return nil
		})
	})
	if err != nil {
		delete(s.names, name)
		return fmt.Errorf("persist: restore %q: %w", name, err)
	}
	s.singles = append(s.singles, a)
	return skipErr
}

// claim reserves name for an attachment. The caller holds s.mu.
func (s *Store) claim(name string) error {
	if s.closed {
		return ErrClosed
	}
	if len(name) == 0 || len(name) > maxNameLen {
		return core.Invalid("persist", "name of %d bytes, want 1 to %d", len(name), maxNameLen)
	}
	if s.names[name] {
		return core.Invalid("persist", "name %q is already attached", name)
	}
	s.names[name] = true
	return nil
}

// Drop deletes the saved state of name, single limiter or keyed set, from
// the file. It is for names no longer attached by any program version,
// whose state the file otherwise keeps (it costs only space). It returns an
// error wrapping ratekit.ErrInvalidConfig if name is attached to s, and
// ErrClosed after Close; dropping a name with no saved state does nothing.
func (s *Store) Drop(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.names[name] {
		return core.Invalid("persist", "Drop(%q) of an attached name", name)
	}
	if len(name) == 0 || len(name) > maxNameLen {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if err := root.Bucket(bucketLimiters).Delete([]byte(name)); err != nil {
			return err
		}
		err := root.Bucket(bucketKeyed).DeleteBucket([]byte(name))
		if errors.Is(err, bolterrors.ErrBucketNotFound) {
			err = nil
		}
		return err
	})
}

// Close stops periodic checkpoints, writes a last checkpoint and closes the
// file. It returns the checkpoint's and the file's errors; the file is
// closed either way. Attached limiters keep working, unsaved. Close is
// idempotent: later calls return nil.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	err := s.checkpoint()
	s.closed = true
	return join(err, guard(s.db.Close))
}

// Stats counts what a Store has done since Open.
type Stats struct {
	Checkpoints uint64 // checkpoints that completed without error
	Failures    uint64 // checkpoints that returned an error
	Written     uint64 // states written
	Deleted     uint64 // saved states deleted (keys that left their set, unreadable keys)
}

// Stats returns s's counts, read one after another rather than as one
// snapshot. It works after Close.
func (s *Store) Stats() Stats {
	return Stats{
		Checkpoints: s.checkpoints.Load(),
		Failures:    s.failures.Load(),
		Written:     s.written.Load(),
		Deleted:     s.deleted.Load(),
	}
}

// SkipError reports saved states that Attach or AttachKeyed could not
// restore. The limiters were attached and every other saved state was
// restored; a skipped key's limiter is left as its set made it (fresh), and
// the next checkpoint overwrites or deletes the skipped state. A state is
// skipped when the limiter's UnmarshalBinary rejects it (another algorithm,
// an older format, corrupt bytes; the error wraps ratekit.ErrInvalidState),
// when the key codec cannot decode its key, or when the keyed set has no
// limiter for the key (its Get returns nil).
type SkipError struct {
	Name    string  // the attached name
	Skipped int     // how many states were skipped
	Errs    []error // the reasons of the first few, each naming its key
}

// maxSkipErrs bounds SkipError.Errs.
const maxSkipErrs = 10

func (e *SkipError) Error() string {
	msg := fmt.Sprintf("persist: %q: skipped %d of its saved states", e.Name, e.Skipped)
	for _, err := range e.Errs {
		msg += "; " + err.Error()
	}
	if e.Skipped > len(e.Errs) {
		msg += "; ..."
	}
	return msg
}

// Unwrap returns ErrSkipped and the reasons.
func (e *SkipError) Unwrap() []error { return append([]error{ErrSkipped}, e.Errs...) }

// isNil reports whether v is nil or holds a nil pointer, map, slice,
// channel or function.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return r.IsNil()
	}
	return false
}
