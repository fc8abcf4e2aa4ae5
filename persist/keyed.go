package persist

import (
	"bytes"
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Keyed is what AttachKeyed needs of a keyed set of limiters. A
// *ratekit.Keyed[K, L] is one.
type Keyed[K comparable, L Limiter] interface {
	// Get returns key's limiter, making it if the set has none. Restoring
	// calls it once per saved key. A nil result means the set has no
	// limiter for key: its saved state is skipped.
	Get(key K) L
	// All yields the set's keys and limiters. Every checkpoint reads them
	// all; it must not hold locks that Takes need while it yields.
	All() iter.Seq2[K, L]
}

var _ Keyed[string, Limiter] = (*ratekit.Keyed[string, Limiter])(nil)

// AttachKeyed attaches a keyed set of limiters under name, restores the
// saved state of each of its keys (making their limiters with set.Get), and
// saves the set at every checkpoint from now on. codec turns keys into
// bytes and back (StringKey, IntKey, AddrKey, or your own). Attach the set
// before it is used: restored states replace those of keys already present.
//
// # Restoring
//
// AttachKeyed reads the set's saved states in one bbolt read transaction,
// in two passes. The first reads every saved key and state and changes
// nothing; if the file's pages are damaged, AttachKeyed returns an error
// wrapping ErrCorrupt with nothing restored and the set not attached. The
// second restores each key in turn. A state that cannot be restored is
// skipped, never half-applied: its key's limiter stays as set.Get made it
// (fresh), and AttachKeyed, having attached the set and restored every
// other key, returns a *SkipError that counts the skipped states and names
// the first few (see SkipError). The next checkpoint overwrites each
// skipped state with its key's current one, or deletes it if the key is
// gone. Other errors are as for Attach. A set whose saved keys outnumber
// the set's capacity (ratekit.KeyedConfig.MaxKeys) loses the excess to the
// set's eviction as it restores. Checkpoints wait while AttachKeyed
// restores, and the set's Get and the codec must not use the Store.
//
// # Memory and time
//
// To write only what changed, the store keeps a side table, a map from each
// saved key to a 63-bit hash of the state last written for it (and a bit
// that marks the keys a checkpoint has seen). It costs a map slot of the
// key and 8 bytes per saved key, with the map's spare slots: 25 to 60 bytes
// for a string key (bench/RESULTS.md, "persist checkpoints"), whose bytes
// the map shares with the set's own copy.
// The table holds the keys themselves: with a key type holding pointers, a
// key that left the set is kept alive until the next checkpoint deletes its
// saved state.
//
// A checkpoint marshals every key's state (see Limiter for the allocation
// that costs), hashes it and looks it up, so its cost grows with the
// number of keys, changed or not; only changed states cost a write, which
// costs several times more than the look-up (BenchmarkCheckpoint; the
// figures are in bench/RESULTS.md, "persist checkpoints"). While it runs
// it holds, per changed key, the record to write and about 40 bytes, up to
// 64 MiB of records (more changes are written in several rounds). Two different
// states have the same hash with probability 2^-63, in which case the
// change is not saved until the state changes again.
//
// On disk a key costs its encoded key, its state, 4 bytes of checksum and
// bbolt's 16 bytes, in pages partly full (bench/RESULTS.md, "persist
// checkpoints", has the bytes a key measured).
func AttachKeyed[K comparable, L Limiter](s *Store, name string, set Keyed[K, L], codec KeyCodec[K]) error {
	if isNil(set) || isNil(codec) {
		return core.Invalid("persist", "AttachKeyed(%q) with a nil set or codec", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.claim(name); err != nil {
		return err
	}
	a := &keyed[K, L]{store: s, name: name, bname: []byte(name), set: set, codec: codec, mark: 1}
	skipped, err := a.restore(s)
	if err != nil {
		delete(s.names, name)
		return fmt.Errorf("persist: restore %q: %w", name, err)
	}
	if a.side == nil {
		a.side = map[K]uint64{}
	}
	s.sets = append(s.sets, a)
	if skipped != nil {
		return skipped
	}
	return nil
}

// keyed is an attached keyed set.
//
// Its side table maps each key with a saved state to a side value: the
// 63-bit hash of that state (Store.hash) with the low bit used as a mark.
// The mark tells which keys the checkpoint in progress has seen: a key has
// been seen when its bit equals mark. Between checkpoints every key's bit
// differs from mark; a checkpoint sets the bit of each key the set yields
// and then deletes the saved state of every key whose bit it did not set,
// since those left the set. Only a checkpoint that completes flips mark,
// which makes every bit differ from it again. A checkpoint that fails
// leaves mark as it was, and the one that retries sees as already seen the
// keys the failed one saw: a key that left the set in between is deleted
// one checkpoint late.
type keyed[K comparable, L Limiter] struct {
	store *Store
	name  string
	bname []byte
	set   Keyed[K, L]
	codec KeyCodec[K]

	side map[K]uint64
	mark uint64
	// purge holds saved keys that decode to no key of the set (the codec
	// rejected them), for the next checkpoint to delete.
	purge [][]byte

	// A checkpoint's work, reused from one to the next (see checkpoint):
	// an op per changed or deleted state, and the records they write in
	// arena.
	ops   []op[K]
	arena []byte
	// The sizes of the last chunk, to size ops and arena when release freed
	// them: one allocation each rather than a dozen as they grow.
	hintOps, hintArena int
}

// op is one write or deletion of a checkpoint. Its record is in the arena:
// for a write, the value (state and checksum) at [v0, k0) and the encoded
// key at [k0, k1); for a deletion, the key at [k0, k1).
type op[K comparable] struct {
	key        K
	hash       uint64 // opPut: the side value of the state
	v0, k0, k1 int32
	kind       opKind
}

type opKind uint8

// The kinds of op, in the order of ops on equal keys (see writeChunk).
const (
	opPurge  opKind = iota // a record that is no key: key is unset
	opPut                  // a changed state
	opDelete               // a key that left the set
)

// Bounds of a checkpoint's work held at once (a chunk; see checkpoint).
const (
	chunkOps   = 1 << 20
	chunkBytes = 64 << 20 // of records in the arena
	keepBytes  = 4 << 20  // buffers larger than this are freed after a checkpoint
	// maxStateLen bounds a state, so that arena offsets fit in an int32.
	// (A ratekit state is at most a sliding log's 2^24 timestamps.)
	maxStateLen = 1 << 30
)

// checkpoint writes what changed in the set since the last checkpoint.
//
// It reads every key and limiter, marshals the state into the arena and
// compares its hash with the side table's. For each changed state it keeps
// the record (state, checksum and encoded key) and an op; then it adds an
// op for each key the side table has and the set no longer does. It sorts
// the ops by encoded key and writes them in batches, one transaction each.
// The sort is what makes batches cheap: a batch of keys in random order
// would touch most of bbolt's leaf pages, and every batch would rewrite the
// whole tree; in key order each page is rewritten once per checkpoint.
//
// The ops are written when all are collected, or earlier when they reach
// chunkOps or chunkBytes, which bounds the memory a checkpoint holds (about
// 40 bytes per op for a string key, plus the records); each chunk is sorted
// and written on its own, so a checkpoint of more changes than a chunk
// rewrites pages once per chunk.
func (a *keyed[K, L]) checkpoint() error {
	s, mark := a.store, a.mark
	var errs errList
	if a.ops == nil && a.hintOps > 0 {
		a.ops = make([]op[K], 0, a.hintOps+a.hintOps/8)
		a.arena = make([]byte, 0, a.hintArena+a.hintArena/8)
	}
	defer a.release()
	for _, raw := range a.purge {
		k0 := len(a.arena)
		a.arena = append(a.arena, raw...)
		if err := a.add(op[K]{kind: opPurge, k0: int32(k0), k1: int32(len(a.arena))}, &errs); err != nil {
			return a.fail(err, &errs)
		}
	}

	// Collect the states that changed.
	for k, l := range a.set.All() {
		if isNil(l) {
			// The set has no limiter for k (its Get made none): nothing to
			// save, and the deletion pass below deletes what was saved.
			continue
		}
		v0 := len(a.arena)
		var err error
		a.arena, err = appendState(a.arena, l)
		if err == nil && len(a.arena)-v0 > maxStateLen {
			err = fmt.Errorf("a state of %d bytes, more than %d", len(a.arena)-v0, maxStateLen)
		}
		if err != nil {
			a.arena = a.arena[:v0]
			errs.add(fmt.Errorf("key %s: marshal: %w", keyString(k), err))
			if old, ok := a.side[k]; ok {
				a.side[k] = old&^1 | mark // keep its saved state
			}
			continue
		}
		h := s.hash(a.arena[v0:]) | mark
		old, ok := a.side[k]
		if ok && sameState(old, h) {
			a.arena = a.arena[:v0]
			if old != h {
				a.side[k] = h
			}
			continue
		}
		if ok {
			// Seen; the new hash goes in once the write commits.
			a.side[k] = old&^1 | mark
		}
		// The checksum covers the key, which follows it: make room for it,
		// append the key, then fill it in.
		k0 := len(a.arena) + sumLen
		a.arena = append(a.arena, make([]byte, sumLen)...)
		a.arena = append(a.arena, entryPrefix)
		a.arena = a.codec.AppendKey(a.arena, k)
		if n := len(a.arena) - k0; n > bolt.MaxKeySize {
			a.arena = a.arena[:v0]
			errs.add(fmt.Errorf("key %s: encoded in %d bytes, more than bbolt's %d", keyString(k), n, bolt.MaxKeySize))
			continue
		}
		appendSum(a.arena[:k0-sumLen], v0, a.arena[k0:]) // in place
		o := op[K]{key: k, hash: h, v0: int32(v0), k0: int32(k0), k1: int32(len(a.arena)), kind: opPut}
		if err := a.add(o, &errs); err != nil {
			return a.fail(err, &errs)
		}
	}

	// Delete the saved states of keys that left the set. (Writing a chunk
	// while ranging over the side table deletes entries, and may insert
	// entries for keys written above, which is allowed during a range; the
	// inserted entries carry mark and are skipped.)
	for k, v := range a.side {
		if v&1 == mark {
			continue
		}
		k0 := len(a.arena)
		a.arena = append(a.arena, entryPrefix)
		a.arena = a.codec.AppendKey(a.arena, k)
		if err := a.add(op[K]{key: k, k0: int32(k0), k1: int32(len(a.arena)), kind: opDelete}, &errs); err != nil {
			return a.fail(err, &errs)
		}
	}
	if err := a.writeChunk(&errs); err != nil {
		return a.fail(err, &errs)
	}
	a.mark ^= 1
	a.purge = nil
	if err := errs.err(); err != nil {
		return fmt.Errorf("persist: checkpoint of %q: %w", a.name, err)
	}
	return nil
}

// add adds an op whose record is in the arena, and writes the chunk if it
// is full.
func (a *keyed[K, L]) add(o op[K], errs *errList) error {
	a.ops = append(a.ops, o)
	if len(a.ops) >= chunkOps || len(a.arena) >= chunkBytes {
		return a.writeChunk(errs)
	}
	return nil
}

// writeChunk sorts the ops collected and writes them in batches.
func (a *keyed[K, L]) writeChunk(errs *errList) error {
	s, arena, ops := a.store, a.arena, a.ops
	a.hintOps, a.hintArena = len(ops), len(arena)
	// On equal keys a purge (of a record that failed its checksum) goes
	// before the write of the key's state.
	slices.SortFunc(ops, func(x, y op[K]) int {
		if c := bytes.Compare(arena[x.k0:x.k1], arena[y.k0:y.k1]); c != 0 {
			return c
		}
		return cmp.Compare(x.kind, y.kind)
	})
	for len(ops) > 0 {
		n, size := 0, 0
		for n < len(ops) && n < s.batchSize && size < maxBatchBytes {
			size += int(ops[n].k1 - ops[n].v0)
			n++
		}
		batch := ops[:n]
		err := s.update(func(tx *bolt.Tx) error {
			b, err := tx.Bucket(bucketRoot).Bucket(bucketKeyed).CreateBucketIfNotExists(a.bname)
			if err != nil {
				return err
			}
			for i := range batch {
				o := &batch[i]
				if o.kind == opPut {
					err = b.Put(arena[o.k0:o.k1], arena[o.v0:o.k0])
				} else {
					err = b.Delete(arena[o.k0:o.k1])
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		var written, deleted uint64
		for i := range batch {
			switch o := &batch[i]; o.kind {
			case opPut:
				a.side[o.key] = o.hash
				written++
			case opDelete:
				delete(a.side, o.key)
				deleted++
			case opPurge:
				deleted++
			}
		}
		s.written.Add(written)
		s.deleted.Add(deleted)
		s.committed()
		ops = ops[n:]
	}
	clear(a.ops) // drop the keys
	a.ops, a.arena = a.ops[:0], a.arena[:0]
	return nil
}

// fail ends a checkpoint that could not commit a batch.
func (a *keyed[K, L]) fail(err error, errs *errList) error {
	clear(a.ops)
	a.ops, a.arena = a.ops[:0], a.arena[:0]
	errs.add(err)
	return fmt.Errorf("persist: checkpoint of %q: %w", a.name, errs.err())
}

// release frees the checkpoint's buffers if they grew large (a checkpoint
// of many changes), and keeps them for the next one otherwise.
func (a *keyed[K, L]) release() {
	if cap(a.ops)*int(unsafe.Sizeof(op[K]{}))+cap(a.arena) > keepBytes {
		a.ops, a.arena = nil, nil
	}
}

// restore restores the saved states into the set and fills the side table.
// It returns the skipped states, or an error if nothing was restored.
func (a *keyed[K, L]) restore(s *Store) (*SkipError, error) {
	var skip *SkipError
	err := s.db.View(func(tx *bolt.Tx) error {
		// Pass one reads every key and state, so that a damaged page stops
		// the restore before it has changed anything.
		var b *bolt.Bucket
		n := 0
		err := guard(func() error {
			b = tx.Bucket(bucketRoot).Bucket(bucketKeyed).Bucket(a.bname)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil {
					return fmt.Errorf("%w: a bucket %q inside keyed set %q", ErrFormat, k, a.name)
				}
				splitValue(k, v) // reads every byte: a fault happens here, guarded
				n++
			}
			return nil
		})
		if err != nil || b == nil {
			return err
		}

		// Pass two restores. It reads what pass one read, so bbolt cannot
		// fail here; errors are the set's and the codec's, one key each.
		a.side = make(map[K]uint64, n)
		unseen := a.mark ^ 1
		add := func(err error) {
			if skip == nil {
				skip = &SkipError{Name: a.name}
			}
			skip.Skipped++
			if len(skip.Errs) < maxSkipErrs {
				skip.Errs = append(skip.Errs, err)
			}
		}
		c := b.Cursor()
		for kb, v := c.First(); kb != nil; kb, v = c.Next() {
			if len(kb) == 0 || kb[0] != entryPrefix {
				add(fmt.Errorf("record %.64q: not a key of format %d", kb, formatVersion))
				a.purge = append(a.purge, bytes.Clone(kb))
				continue
			}
			state, err := splitValue(kb, v)
			if err != nil {
				// The key's bytes may be what is damaged: make no limiter
				// for them. If the key is live after all, the next
				// checkpoint deletes the record and then writes it anew.
				add(fmt.Errorf("record %.64q: %w", kb[1:], err))
				a.purge = append(a.purge, bytes.Clone(kb))
				continue
			}
			key, err := a.codec.ParseKey(kb[1:])
			if err != nil {
				add(fmt.Errorf("key %.64q: %w", kb[1:], err))
				a.purge = append(a.purge, bytes.Clone(kb))
				continue
			}
			// Whatever follows, the record is in the file and the side
			// table knows it, so the next checkpoint keeps it, overwrites
			// it or deletes it.
			a.side[key] = s.hash(state) | unseen
			l := a.set.Get(key)
			if isNil(l) {
				add(fmt.Errorf("key %s: the set has no limiter for it", keyString(key)))
				continue
			}
			if err := l.UnmarshalBinary(state); err != nil {
				add(fmt.Errorf("key %s: %w", keyString(key), err))
			}
		}
		return nil
	})
	if err != nil {
		a.side, a.purge = nil, nil
		return nil, err
	}
	return skip, nil
}

// errList collects a checkpoint's per-key errors, keeping the first few.
type errList struct {
	n    int
	errs []error
}

func (l *errList) add(err error) {
	l.n++
	if len(l.errs) < maxSkipErrs {
		l.errs = append(l.errs, err)
	}
}

func (l *errList) err() error {
	if l.n == 0 {
		return nil
	}
	return joinMore(l.errs, l.n-len(l.errs))
}

// joinMore joins errs, noting how many more were left out.
func joinMore(errs []error, more int) error {
	if more > 0 {
		errs = append(errs, fmt.Errorf("and %d more", more))
	}
	return join(errs...)
}

// join is errors.Join with "; " between the errors rather than newlines,
// for log lines: nil if every err is nil, the one error if there is one.
func join(errs ...error) error {
	var nonNil joinedErr
	for _, err := range errs {
		if err != nil {
			nonNil = append(nonNil, err)
		}
	}
	switch len(nonNil) {
	case 0:
		return nil
	case 1:
		return nonNil[0]
	}
	return nonNil
}

// joinedErr is join's result.
type joinedErr []error

func (e joinedErr) Error() string {
	var b bytes.Buffer
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e joinedErr) Unwrap() []error { return e }

// keyString formats a key for an error message: strings quoted, anything
// cut to 64 bytes.
func keyString(k any) string {
	var s string
	if str, ok := k.(string); ok {
		s = strconv.Quote(str)
	} else {
		s = fmt.Sprint(k)
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}
