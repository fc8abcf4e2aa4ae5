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
// set's eviction as it restores.
//
// # Memory and time
//
// To write only what changed, the store keeps a side table, a map from each
// saved key to a 63-bit hash of the state last written for it (and a bit
// that marks the keys a checkpoint has seen). It costs a map entry of the
// key and 8 bytes per saved key, about 50 bytes for a string key (whose
// bytes the map shares with the set's own copy), measured by the
// benchmarks. A checkpoint marshals every key's state (allocation-free for
// limiters with AppendBinary), hashes it and looks it up, so its cost grows
// with the number of keys; only changed states cost a write. Two different
// states have the same hash with probability 2^-63, in which case the
// change is not saved until the state changes again.
//
// The table holds the keys themselves: with a key type holding pointers,
// a key that left the set is kept alive until the next checkpoint deletes
// its saved state.
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
	// an op per changed or deleted state, their encoded keys in keys, and
	// the states of the batch being written in vals, ending at ends.
	ops     []op[K, L]
	keys    []byte
	vals    []byte
	ends    []int
	scratch []byte // one state, to hash
	// The sizes of the last chunk, to size ops and keys when release freed
	// them: one allocation each rather than a dozen as they grow.
	hintOps, hintKeys int
}

// op is one write or deletion of a checkpoint.
type op[K comparable, L Limiter] struct {
	key    K
	lim    L      // opPut: the limiter whose state to write
	hash   uint64 // opPut: the side value of the state written
	k0, k1 int32  // the encoded key, in keys
	kind   opKind
}

type opKind uint8

// The kinds of op, in the order of ops on equal keys (see writeChunk).
const (
	opPurge  opKind = iota // a record that is no key: key is unset
	opPut                  // a changed state
	opDelete               // a key that left the set
	opSkip                 // a put whose state could not be marshalled
)

// Bounds of a checkpoint's work held at once (a chunk; see checkpoint).
const (
	chunkOps  = 1 << 20
	chunkKeys = 64 << 20 // bytes of encoded keys
	keepBytes = 4 << 20  // buffers larger than this are freed after a checkpoint
)

// checkpoint writes what changed in the set since the last checkpoint.
//
// It reads every key and limiter, marshals the state and compares its hash
// with the side table's. It collects an op for each changed state, then
// one for each key the side table has and the set no longer does, sorts the
// ops by encoded key and writes them in batches, one transaction each. The
// sort is what makes batches cheap: a batch of keys in random order would
// touch most of bbolt's leaf pages, and every batch would rewrite the whole
// tree; in key order each page is rewritten once per checkpoint. A changed
// state is marshalled again when its batch is written (so the ops hold a
// pointer to the limiter rather than its state, whose size varies), and the
// side table gets the hash of what was written.
//
// The ops are written when all are collected, or earlier when they reach
// chunkOps or chunkKeys, which bounds the memory a checkpoint holds; each
// chunk is sorted and written on its own, so a checkpoint of more changes
// than a chunk rewrites pages once per chunk.
func (a *keyed[K, L]) checkpoint() error {
	s, mark := a.store, a.mark
	var errs errList
	if a.ops == nil && a.hintOps > 0 {
		a.ops = make([]op[K, L], 0, a.hintOps+a.hintOps/8)
		a.keys = make([]byte, 0, a.hintKeys+a.hintKeys/8)
	}
	defer a.release()
	for _, raw := range a.purge {
		if err := a.add(raw, op[K, L]{kind: opPurge}, &errs); err != nil {
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
		var err error
		a.scratch, err = appendState(a.scratch[:0], l)
		if err != nil {
			errs.add(fmt.Errorf("key %s: marshal: %w", keyString(k), err))
			if old, ok := a.side[k]; ok {
				a.side[k] = old&^1 | mark // keep its saved state
			}
			continue
		}
		h := s.hash(a.scratch) | mark
		old, ok := a.side[k]
		if ok && sameState(old, h) {
			if old != h {
				a.side[k] = h
			}
			continue
		}
		if ok {
			// Seen; the new hash goes in once the write commits.
			a.side[k] = old&^1 | mark
		}
		if err := a.add(nil, op[K, L]{key: k, lim: l, kind: opPut}, &errs); err != nil {
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
		if err := a.add(nil, op[K, L]{key: k, kind: opDelete}, &errs); err != nil {
			return a.fail(err, &errs)
		}
	}
	if err := a.writeChunk(s, mark, &errs); err != nil {
		return a.fail(err, &errs)
	}
	a.mark ^= 1
	a.purge = nil
	if err := errs.err(); err != nil {
		return fmt.Errorf("persist: checkpoint of %q: %w", a.name, err)
	}
	return nil
}

// add adds an op, with raw as its encoded key for a purge or else o.key
// encoded, and writes the chunk if it is full.
func (a *keyed[K, L]) add(raw []byte, o op[K, L], errs *errList) error {
	k0 := len(a.keys)
	if o.kind == opPurge {
		a.keys = append(a.keys, raw...)
	} else {
		a.keys = append(a.keys, entryPrefix)
		a.keys = a.codec.AppendKey(a.keys, o.key)
		if n := len(a.keys) - k0; n > bolt.MaxKeySize {
			a.keys = a.keys[:k0]
			errs.add(fmt.Errorf("key %s: encoded in %d bytes, more than bbolt's %d", keyString(o.key), n, bolt.MaxKeySize))
			return nil
		}
	}
	o.k0, o.k1 = int32(k0), int32(len(a.keys))
	a.ops = append(a.ops, o)
	if len(a.ops) >= chunkOps || len(a.keys) >= chunkKeys {
		return a.writeChunk(a.store, a.mark, errs)
	}
	return nil
}

// writeChunk sorts the ops collected and writes them in batches.
func (a *keyed[K, L]) writeChunk(s *Store, mark uint64, errs *errList) error {
	keys, ops := a.keys, a.ops
	a.hintOps, a.hintKeys = len(ops), len(keys)
	// On equal keys a purge (of a record that failed its checksum) goes
	// before the write of the key's state.
	slices.SortFunc(ops, func(x, y op[K, L]) int {
		if c := bytes.Compare(keys[x.k0:x.k1], keys[y.k0:y.k1]); c != 0 {
			return c
		}
		return cmp.Compare(x.kind, y.kind)
	})
	for len(ops) > 0 {
		// Marshal the batch's states before the transaction: MarshalBinary
		// is the caller's code, and must not run inside bbolt's.
		vals, ends := a.vals[:0], a.ends[:0]
		n := 0
		for ; n < len(ops) && n < s.batchSize && len(vals) < maxBatchBytes; n++ {
			o := &ops[n]
			if o.kind == opPut {
				v0 := len(vals)
				var err error
				vals, err = appendState(vals, o.lim)
				if err != nil {
					vals = vals[:v0]
					o.kind = opSkip
					errs.add(fmt.Errorf("key %s: marshal: %w", keyString(o.key), err))
				} else {
					o.hash = s.hash(vals[v0:]) | mark
					vals = appendSum(vals, v0, keys[o.k0:o.k1])
				}
			}
			ends = append(ends, len(vals))
		}
		a.vals, a.ends = vals, ends
		batch := ops[:n]
		err := s.update(func(tx *bolt.Tx) error {
			b, err := tx.Bucket(bucketRoot).Bucket(bucketKeyed).CreateBucketIfNotExists(a.bname)
			if err != nil {
				return err
			}
			v0 := 0
			for i := range batch {
				o := &batch[i]
				key := keys[o.k0:o.k1]
				switch o.kind {
				case opPut:
					err = b.Put(key, vals[v0:ends[i]])
				case opDelete, opPurge:
					err = b.Delete(key)
				}
				if err != nil {
					return err
				}
				v0 = ends[i]
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
	clear(a.ops) // drop the keys and limiters
	a.ops, a.keys = a.ops[:0], a.keys[:0]
	return nil
}

// fail ends a checkpoint that could not commit a batch.
func (a *keyed[K, L]) fail(err error, errs *errList) error {
	clear(a.ops)
	a.ops, a.keys = a.ops[:0], a.keys[:0]
	errs.add(err)
	return fmt.Errorf("persist: checkpoint of %q: %w", a.name, errs.err())
}

// release frees the checkpoint's buffers if they grew large (a checkpoint
// of many changes), and keeps them for the next one otherwise.
func (a *keyed[K, L]) release() {
	if cap(a.ops)*int(unsafe.Sizeof(op[K, L]{}))+cap(a.keys) > keepBytes {
		a.ops, a.keys = nil, nil
	}
	if cap(a.vals) > keepBytes {
		a.vals, a.ends = nil, nil
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
	if len(errs) == 1 {
		return errs[0]
	}
	return joinedErr(errs)
}

// joinedErr is errors.Join's result with "; " between the errors rather than
// newlines, for log lines.
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
