// Package persist keeps the state of ratekit limiters in an embedded bbolt
// file, so that quotas survive restarts: a 30-day quota that resets
// whenever the process restarts is no quota.
//
// # Basics
//
//	store, err := persist.Open("quota.db", persist.Options{})
//	if err != nil {
//		return err // not a ratekit store, locked by another process, ...
//	}
//	defer store.Close() // a last checkpoint
//
//	daily, _ := rolling.New(rolling.Config{Limit: 100_000, Window: 24 * time.Hour})
//	orgs := ratekit.NewKeyed(newOrgLimiter, ratekit.KeyedConfig{MaxKeys: 1_000_000})
//	// Attach restores its state, AttachKeyed every key's. ErrSkipped: attached,
//	// but a saved state could not be restored (the next checkpoint replaces it).
//	if err := store.Attach("daily", daily); err != nil && !errors.Is(err, persist.ErrSkipped) {
//		return err
//	}
//	if err := persist.AttachKeyed(store, "orgs", orgs, persist.StringKey{}); err != nil && !errors.Is(err, persist.ErrSkipped) {
//		return err
//	}
//
// Attach limiters before using them. From then on the store checkpoints
// them every Options.CheckpointInterval (10s by default) and on Close.
// Limiters are saved by name, so a program may change their configuration
// between runs: a restored state is judged by the current Config, its
// units carried over as Reconfigure carries them (Persistence in package
// ratekit; states saved by builds whose rolling and tokenbucket states did
// not record the Window or rate are restored as the limiter's own).
//
// # Time
//
// States are saved in wall-clock terms, so downtime counts as elapsed time:
// a window that ended while no process ran is over when the state is
// restored, and a token bucket has refilled for the time it was down.
// Checkpoints read no clock, and save what the limiters were given: a Take
// stamped a hundred years ahead is saved as such, until the state is
// replaced (see "Time" in package ratekit: Keyed.Delete, or UnmarshalBinary
// of a fresh state), which the next checkpoint saves in its place.
//
// # Checkpoints and crashes
//
// A checkpoint writes only the states that changed since the last one, in
// batched bbolt transactions, and deletes the states of keys that left their
// set; Takes never wait for it. A crash loses at most the admissions made
// since the last completed checkpoint; the file always opens cleanly and
// every key's state is one a checkpoint wrote, whole. Store documents this
// precisely, AttachKeyed the memory it costs. The tests kill a process with
// SIGKILL in the middle of its checkpoints to check it.
//
// # Bad input
//
// Open refuses a file that is not a ratekit store (ErrNotAStore), a store of
// an unknown format version (ErrFormat), a file another process has open
// (ErrLocked), and a damaged one (ErrCorrupt), without changing it. An
// empty (0-byte) or truncated file is damaged, not a new store: reading it
// as one would silently reset every quota it held. A program that would
// rather start afresh than fail sets Options.ReplaceCorrupt, which keeps
// the damaged file beside the new one and reports it through
// Options.OnError. Open creates a missing file whole (written beside it,
// then linked into place), so a crash never leaves an empty file. A state that cannot be restored (of
// another algorithm, of an older format, damaged on disk, under a key the
// codec rejects or that the set has no limiter for) is skipped, whole, and
// reported in a *SkipError; every other state is restored, and the next
// checkpoint replaces or deletes the skipped one. A damaged file never makes
// persist panic: bbolt's panics and faults on damaged pages become errors
// wrapping ErrCorrupt, and every record carries a CRC-32C, since bbolt
// checks only its meta pages.
//
// # File format
//
// The file is a bbolt database with one bucket, "ratekit", holding a format
// version (1), a bucket of single limiters' states by name and a bucket per
// keyed set of states by encoded key (see KeyCodec). A state is the
// limiter's MarshalBinary output, which carries its own algorithm tag and
// version. The bbolt command-line tool can inspect the file.
package persist
