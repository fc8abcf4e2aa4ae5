package slidingwindow

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/core"
)

// Log is an exact sliding-window limiter: in every interval of length
// Window it admits at most Limit units, and a unit admitted at e counts at
// now while now-e < Window.
//
// It keeps the instant of each of the last Limit units in a ring (8 bytes
// per unit of Limit); a Take of n units writes n slots. A Take is admitted
// iff (units with now-e < Window) + n <= Limit; a denial's RetryAfter is
// exactly when enough of the oldest units will have expired. A Take whose
// now is older than the newest instant the log has recorded counts every
// unit with now-e < Window, those recorded after now included, and its
// units are recorded at that newest instant, so a stale time never admits
// more.
//
// Build a Log with NewLog; the zero Log has Limit 0 until Reconfigure (see
// The zero value at ratekit.Limiter).
// Take, Peek and Refund allocate nothing. Peek, and a Take that is denied,
// only read: they write no shared memory
// (but for OnLimitReached's mark) and never wait on a writer that is not
// mid-write. Allowed Takes and Refunds are serialised by a seqlock, a CAS
// on one packed word, held for the few stores of the write itself (see the
// comment on logState).
//
// # Memory
//
// The ring is 8·(Limit+1) bytes (a slot per unit of Limit and the lost
// mark, see Reconfigure), rounded up to Go's next size class, in an
// allocation of its own; after a Reconfigure that lowered the Limit, it
// keeps a slot for each unit it held (see Reconfigure): at most
// 8·(max(Limit, units held at the last Reconfigure)+1) bytes. The Log itself is
// 56 bytes, in Go's 64-byte size class: Logs of equal Configs share one
// immutable parameter set, so NewLog per key in a ratekit.Keyed factory
// costs the ring and 64 bytes a key, in two allocations.
type Log struct {
	s0 logState                 // the first state, inline
	s  atomic.Pointer[logState] // nil: the zero Log, whose s0 is unset
}

// firstLog serialises the first Reconfigure of zero Logs, which writes the
// Log's inline first state before it publishes it in Log.s. Every method
// loads Log.s before it reads s0, and a nil Log.s is the zero Log.
var firstLog sync.Mutex

var _ ratekit.Limiter = (*Log)(nil)

// logState is a Log's ring of instants, its seqlock and its floor, with the
// parameters they are read by. Reconfigure replaces it whole, with a ring of
// the new Limit; the state it replaces is retired by leaving its seqlock
// held forever, so that a caller still holding a pointer to it fails its
// CAS, rereads Log.s and starts again. Taking the seqlock is also the lock
// between replacers (Reconfigure, UnmarshalBinary): each works on the state
// it locked, and one that finds the lock held for good waits for the state
// that replaces it. UnmarshalBinary rewrites the ring of the state in force
// under its seqlock, like any writer, and releases it.
//
// The seqlock. word packs four fields:
//
//	bit 0      locked: a writer is between its CAS and its final Store
//	bits 1-24  head: the slot the next unit goes to (< limit <= 2^24)
//	bit 25     mark: OnLimitReached was called for this state (see Take)
//	bits 26-63 version: +1 on every completed write
//
// A reader loads word, and if it is unlocked reads the slots and floor it
// needs and loads word again: if word is unchanged, no write began or ended
// in between, so what it read is one consistent state. (Go's atomics are
// sequentially consistent, so the slot loads cannot move outside the two
// word loads, and a writer's slot stores cannot move outside its CAS and
// Store.) A writer does the same read, then CASes word from the value it
// read to that value with the locked bit set: success means the state is
// still the one it decided on, so it writes without deciding again, and
// stores the new head with the version advanced and the bit clear.
//
// The version makes the CAS and the recheck immune to ABA: the word could
// only return to a value a reader saw after 2^38 writes, which at one write
// per 10ns takes 45 minutes, between two adjacent loads of one
// goroutine.
//
// Why not lock-free: a Take of n units writes n slots and must be seen whole
// or not at all, and a Refund moves units within the ring; neither fits one
// CAS. The writer's critical section is a bounded run of stores (n for a
// Take, the units recorded since `at` for a Refund) that never allocates or
// blocks, and readers never block writers. A caller
// that finds the word locked rereads it a few times and then yields its
// thread (runtime.Gosched), so a writer that was preempted mid-write is
// rescheduled rather than spun against.
type logState struct {
	word atomic.Uint64
	p    *logParams // immutable, and shared by the Logs of an equal Config
	// floor is the newest instant ever recorded that is no longer in the
	// ring, because a Refund removed it; minTime-1 if none. With the newest
	// instant in the ring it makes the log's clock, which never goes back:
	// see (*logState).decide.
	floor atomic.Int64
	// restored is the latest instant a Refund gives nothing back at or
	// before, because UnmarshalBinary replaced the units a Take then may
	// have recorded (see UnmarshalBinary); noFloor if never restored.
	// Written under the seqlock, by a restore and by install.
	restored atomic.Int64
	// slots holds the instants of the last limit units. Unit j, counted
	// from the newest (j = 0) to the oldest (j = limit-1), is in slot
	// head-1-j (mod limit), so instants never decrease from oldest to newest.
	// An instant e is stored as enc(e) = e-minTime+1, in [1, 2^62], so that
	// a slot holding no unit holds 0: a new ring needs no initialising, and
	// empty slots compare older than every instant (see after).
	slots []atomic.Int64
}

const (
	lockedBit    = 1
	headShift    = 1
	headMask     = MaxLogLimit - 1
	markBit      = 1 << 25
	versionShift = 26

	// noFloor is the floor of a log that never had a unit refunded, and
	// what an empty slot decodes to: older than every instant.
	noFloor = minTime - 1
)

func headOf(w uint64) int { return int(w >> headShift & headMask) }

// released returns the word that ends a write begun from w: the version
// advanced (wrapping after 2^38), the new head, the locked bit and the mark
// clear: every write ends a run of denials (see Config.OnLimitReached).
func released(w uint64, head int) uint64 {
	return (w>>versionShift+1)<<versionShift | uint64(head)<<headShift
}

// logParams is one immutable parameter set of a Log: shared by the Logs of
// an equal Config (see sharedLog); Reconfigure makes one for a single Log.
// Every parameter set of one Log has the same epoch, so an instant computed
// from one holds for all.
type logParams struct {
	epoch     time.Time // instants are nanoseconds from here
	epochUnix int64     // epoch in Unix nanoseconds, for MarshalBinary
	limit     int
	window    int64
	name      string
	clock     clock.Clock
	hook      func(ratekit.Decision) // Config.OnLimitReached
}

func newLogParams(cfg Config, epoch time.Time) *logParams {
	return &logParams{
		epoch:     epoch,
		epochUnix: unixOf(epoch),
		limit:     cfg.Limit,
		window:    int64(cfg.Window),
		name:      cfg.Name,
		clock:     core.Clock(cfg.Clock),
		hook:      cfg.OnLimitReached,
	}
}

// config returns the Config these parameters were made from, with the
// Clock that Allow reads.
func (p *logParams) config() Config {
	return Config{Limit: p.limit, Window: time.Duration(p.window), Name: p.name, Clock: p.clock, OnLimitReached: p.hook}
}

// internedLogs holds the parameters NewLog shares between Logs of equal
// Configs.
var internedLogs cell.Interner[cell.Key, logParams]

// sharedLog returns the interned parameters of cfg, a Config that may be
// invalid, as shared does a Counter's: made, with their epoch at
// cfg.Clock's time, if there are none or if that clock has moved more than
// half their range from their epoch.
func sharedLog(cfg Config) (*logParams, error) {
	return internedLogs.Get(keyOf(cfg), func(p *logParams) bool {
		x := since(p.clock.Now(), p.epoch)
		return x > minTime/2 && x < maxTime/2
	}, func() (*logParams, error) {
		if err := cfg.validateLog(); err != nil {
			return nil, err
		}
		return newLogParams(cfg, epochAt(core.Clock(cfg.Clock).Now())), nil
	})
}

// NewLog returns an exact sliding log, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate; a Log's
// Limit must also be at most MaxLogLimit). It allocates the 64-byte Log and
// its ring of cfg.Limit instants; Logs of equal Configs (Clock compared as
// an interface value, OnLimitReached as the same function value) share
// their parameters, so NewLog is the way to make a Log per key.
func NewLog(cfg Config) (*Log, error) {
	p, err := sharedLog(cfg)
	if err != nil {
		return nil, err
	}
	l := &Log{}
	l.init(p)
	return l, nil
}

// init makes l an empty Log with parameters p.
func (l *Log) init(p *logParams) {
	l.s0.init(p, p.limit)
	l.s.Store(&l.s0)
}

// init makes s an empty state of p with a ring of size slots, at least
// p.limit (more when Reconfigure or UnmarshalBinary must keep more units
// than the Limit: see Reconfigure).
func (s *logState) init(p *logParams, size int) {
	s.p = p
	s.floor.Store(noFloor)
	s.restored.Store(noFloor)
	// One element past the ring holds the lost mark (see lost).
	s.slots = make([]atomic.Int64, size+1)[:size] // all empty
}

// lost returns the lost mark of s, stored (as enc does) in the element
// past the end of the ring: the newest instant of a unit a Take overwrote
// (or a state that s replaced overwrote), 0 if none. A forgotten unit
// counts at every x with x-window < its instant, where every unit the ring
// holds counts too; the log does not know how many units it forgot, so
// such an x admits nothing (see decide). With a ring of at least Limit
// slots this changes no decision (the ring is full of units that count
// there); it matters after Reconfigure raised the Limit above the ring a
// Take overwrote, and then only ever admits less. Written under the
// seqlock.
//
// Its address is computed, not indexed: Take and decide ask for it on
// every call, and the slice expression's two bounds checks cost more than
// the load (init allocates the element, so it is always there).
func (s *logState) lost() *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.slots)), uintptr(len(s.slots))*unsafe.Sizeof(atomic.Int64{})))
}

// newLogState returns an empty state of p with a ring of size slots.
func newLogState(p *logParams, size int) *logState {
	s := new(logState)
	s.init(p, size)
	return s
}

// LogTemplate makes empty Logs of one Config validated once, so that its
// New cannot fail. Its Logs are exactly NewLog's: they share the parameters
// of every Log of the Config, and cost no less and no more.
//
// Deprecated: call NewLog, in a ratekit.Keyed factory too: it shares
// parameters between Logs of equal Configs, as a LogTemplate did.
type LogTemplate struct {
	cfg Config
}

// NewLogTemplate returns a LogTemplate of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid for a Log (as NewLog would).
//
// Deprecated: call NewLog.
func NewLogTemplate(cfg Config) (*LogTemplate, error) {
	if _, err := sharedLog(cfg); err != nil {
		return nil, err
	}
	return &LogTemplate{cfg: cfg}, nil
}

// New returns NewLog of the template's Config: an empty Log. It cannot fail.
//
// Deprecated: call NewLog.
func (t *LogTemplate) New() *Log {
	return core.Must(NewLog(t.cfg))
}

// Config returns the configuration of the template's Logs, as their Config
// method does (Clock is the real clock if the Config had none).
//
// Deprecated: call NewLog, and the Log's Config.
func (t *LogTemplate) Config() Config { return t.cfg.withClock() }

// since returns now as an instant of l. Every state of l has the epoch of
// its first, whose parameters s0.p are never written after init: reading
// them needs no atomic load, and does not wait for the state in force. The
// caller has loaded a non-nil Log.s, which orders that read after init.
func (l *Log) since(now time.Time) int64 { return since(now, l.s0.p.epoch) }

// backoff is what a caller does after its i-th failed attempt to read or
// lock a state: retry at once a few times (a write holds the lock for tens
// of nanoseconds), then yield the thread so that a preempted writer can run.
func backoff(i int) {
	if i >= 4 {
		runtime.Gosched()
	}
}

// slot returns the slot of unit j (0: the newest) when the head is head.
// j is in [0, limit), so one conditional add replaces a modulo.
func (s *logState) slot(head, j int) *atomic.Int64 {
	i := head - 1 - j
	if i < 0 {
		i += len(s.slots)
	}
	return &s.slots[i]
}

// enc is how an instant is stored in a slot; dec undoes it (and decodes an
// empty slot as noFloor).
func enc(e int64) int64 { return e - minTime + 1 }
func dec(v int64) int64 { return v + minTime - 1 }

// after returns the stored value that slots holding instants after v
// exceed: enc(v), or 0 when v is before minTime (every unit is after it, no
// empty slot is). v >= minTime-MaxWindow-1, so nothing overflows.
func after(v int64) int64 { return max(enc(v), 0) }

// unit returns the instant of unit j (0: the newest); noFloor if none.
func (s *logState) unit(head, j int) int64 { return dec(s.slot(head, j).Load()) }

// above returns how many units, counting from the newest, are stamped after
// v. Instants never decrease from oldest to newest, so those units are a
// prefix of the newest-first order, and the boundary is searched for.
//
// The search gallops from both ends at once, doubling its step, then
// bisects the bracket it found: O(log min(count, limit-count)) loads rather
// than O(log limit). The common cases are at the ends: sparse traffic, with
// few units live, and a log at its limit, where a Take finds all units but
// the oldest one or two live. A log of 10,000 at its limit costs about 4
// loads instead of 15.
func (s *logState) above(head int, v int64) int { return s.exceeding(head, after(v)) }

// exceeding is above for the stored value c = after(v): how many units,
// counting from the newest, are stored as more than c.
func (s *logState) exceeding(head int, c int64) int {
	if s.slot(head, 0).Load() <= c {
		return 0
	}
	limit := len(s.slots)
	if s.slot(head, limit-1).Load() > c {
		return limit
	}
	// Units before lo are after v; units from hi on are not.
	lo, hi := 1, limit-1
	for step := 1; lo < hi; step <<= 1 {
		if i := lo + step - 1; i >= hi {
			break
		} else if s.slot(head, i).Load() > c {
			lo = i + 1
		} else {
			hi = i
			break
		}
		if j := hi - step; j < lo {
			break
		} else if s.slot(head, j).Load() > c {
			lo = j + 1
			break
		} else {
			hi = j
		}
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.slot(head, mid).Load() > c {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// decide sets *d to what Take(now, n) decides in the state read from word
// w, and returns the instant t at which the units would be recorded. x is
// now as an instant. decide only reads; under a concurrent write it may compute from
// a torn state, which the caller's recheck of word then discards (it cannot
// fault: every index is reduced mod limit).
func (s *logState) decide(d *ratekit.Decision, w uint64, x int64, n int) int64 {
	p := s.p
	head := headOf(w)
	newest := s.unit(head, 0)
	// Units are recorded at the log's clock t, which never goes back: now,
	// or the newest instant ever recorded (in the ring, or refunded since)
	// if now is stale. That keeps the ring sorted.
	t := max(x, newest, s.floor.Load())
	// Every time is judged by itself: a unit at e counts at x while
	// x-e < window, that is e > x-window, units stamped after x included.
	// So a stale x counts every unit a later time counts and more: it never
	// admits more because it is stale, and what it admits does not depend
	// on how far the clock has run ahead (a Take that was refunded may have
	// moved it; see Refund). x-window >= minTime-MaxWindow does not
	// overflow.
	c := after(x - p.window) // units stored above c count at x
	count := s.exceeding(head, c)

	*d = ratekit.Decision{Limit: p.limit, Window: time.Duration(p.window), Policy: p.name}
	// Until the log is at full capacity again: until the newest live unit
	// expires. It is live, so newest+window-x lies in (0, window+(t-x)],
	// under 2^63 (see minTime).
	reset := time.Duration(0)
	if count > 0 {
		reset = time.Duration(newest + p.window - x)
	}
	// A unit the ring forgot that counts at x: x admits nothing until it
	// expires, at lostEnd (see lost), after x as it counts there; 0 if
	// none.
	lostEnd := time.Duration(0)
	if v := s.lost().Load(); v > c {
		count = max(count, p.limit)
		lostEnd = time.Duration(dec(v) + p.window - x)
		reset = max(reset, lostEnd)
	}
	// count may exceed the Limit after Reconfigure lowered it (the ring
	// then holds more than Limit slots): the log is over-full, and admits
	// nothing until enough units expire; n == 0, which takes nothing, is
	// allowed there too, with nothing remaining.
	switch {
	case n < 0 || n > p.limit:
		*d = core.Impossible(p.limit, max(p.limit-count, 0), d.Window, reset, p.name)
	case n == 0:
		d.Allowed = true
		d.Remaining = max(p.limit-count, 0)
		d.ResetAfter = reset
	case count+n <= p.limit:
		d.Allowed = true
		d.Remaining = p.limit - count - n
		d.ResetAfter = time.Duration(t + p.window - x)
	default:
		// Denied: count+n-limit units must expire first, the oldest ones.
		// The newest of those is unit limit-n (counting from the newest):
		// when it expires, at most limit-n units remain. It is live (count
		// > limit-n), so the wait is positive and bounded like reset; and
		// not before a forgotten unit expires, which until then counts the
		// log as full.
		d.Remaining = max(p.limit-count, 0)
		d.ResetAfter = reset
		d.RetryAfter = max(time.Duration(s.unit(head, p.limit-n)+p.window-x), lostEnd)
	}
	return t
}

// Take admits n units iff the units with now-e < Window, plus n, are at
// most Limit. A denial's RetryAfter is the exact wait until enough units
// have expired. A stale now is judged by itself
// (every unit with now-e < Window counts, units recorded after now
// included), and its units are recorded at the newest instant the log has
// recorded, so that they expire no sooner than a fresh Take's.
//
// An allowed Take of n units stores n instants, O(n); deciding costs
// O(log Limit) loads.
func (l *Log) Take(now time.Time, n int) (d ratekit.Decision) {
	if l.s.Load() == nil {
		return zeroDecision(n)
	}
	x := l.since(now)
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit != 0 {
			backoff(i)
			continue
		}
		t := s.decide(&d, w, x, n)
		if !d.Allowed || n == 0 {
			if s.p.hook != nil && !d.Allowed && w&markBit == 0 && n > 0 && n <= s.p.limit && x >= t {
				// The first denial of a run, because the limit is reached,
				// at a now that is not stale: mark the state, by a CAS that
				// also confirms no write began or ended since it was read,
				// and call the hook (see Config.OnLimitReached).
				if !s.word.CompareAndSwap(w, w|markBit) {
					continue
				}
				s.p.hook(d)
				return d
			}
			// Nothing to write: the decision stands if no write began or
			// ended while it was read.
			if s.word.Load() == w {
				return d
			}
			continue
		}
		if !s.word.CompareAndSwap(w, w|lockedBit) {
			continue
		}
		// The lock is ours and the state is the one decide read.
		next, v := headOf(w), enc(t)
		// The newest unit the write overwrites, if any, is the log's
		// lost mark from now on (instants never decrease along the ring).
		i := next + n - 1
		if i >= len(s.slots) {
			i -= len(s.slots)
		}
		s.forget(i)
		for range n {
			s.slots[next].Store(v)
			if next++; next == len(s.slots) {
				next = 0
			}
		}
		s.word.Store(released(w, next))
		return d
	}
}

// forget raises the lost mark to the unit in slot i, about to be
// overwritten by the caller, who holds the seqlock.
func (s *logState) forget(i int) {
	if v, m := s.slots[i].Load(), s.lost(); v > m.Load() {
		m.Store(v)
	}
}

// Peek is ratekit.Limiter's Peek. It never writes shared memory.
func (l *Log) Peek(now time.Time, n int) (d ratekit.Decision) {
	if l.s.Load() == nil {
		return zeroDecision(n)
	}
	x := l.since(now)
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit != 0 {
			backoff(i)
			continue
		}
		s.decide(&d, w, x, n)
		if s.word.Load() == w {
			return d
		}
	}
}

// Refund gives back n units that an allowed Take(at, n) recorded, for work
// that did not happen. n <= 0 does nothing. It removes the n oldest units
// recorded at or after `at`:
//
//   - Take(at, n) recorded its units at at, or later if at was stale (see
//     Take), so the units removed are never newer than the Take's own. When
//     they are not its own, they are older ones, which expire sooner: the
//     log then holds units at least as new as it would had the Take not
//     happened, so it never admits more than it would have. A Refund never
//     mints capacity, whatever runs concurrently.
//   - That argument needs the Take's units to be in the log still. Once
//     Limit newer units have overwritten them (they had expired), the
//     oldest units at or after at are someone else's newer ones. So Refund
//     looks past the units recorded exactly at `at` only if the log still
//     holds a unit recorded before at: units are overwritten oldest first,
//     so then every unit recorded since is still there. Otherwise (a log
//     that holds only units recorded at or after at) it removes only units
//     recorded exactly at `at`, the same as the Take's own or older.
//
// So a Refund gives back exactly what the Take took, except when the Take's
// now was stale and the log holds nothing older than it; then it gives back
// what was recorded at that now, possibly nothing. Refunding more than was
// taken, or twice, may take back other callers' units: do not.
//
// What it gives back counts at the log's clock (the newest instant it has
// recorded) and later. At staler times a full log gives back only what no
// unit it has forgotten could fill: the refunded Take's units overwrote
// older ones, which had expired at the clock but may count at a stale time
// (see Take), so each unit removed from a full log leaves a placeholder
// no later than the oldest unit left and than the clock minus Window (see
// remove). A stale time is then judged no less strictly than if the
// refunded Take had never happened.
//
// A Refund moves the units newer than the removed ones back, O(units
// recorded since at).
func (l *Log) Refund(at time.Time, n int) {
	if n <= 0 || l.s.Load() == nil {
		return // the zero Log has taken nothing
	}
	a := l.since(at)
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit != 0 {
			backoff(i)
			continue
		}
		head := headOf(w)
		if a <= s.restored.Load() {
			// A Take at or before the last restore's mark: its units may
			// have been in the state the restore replaced.
			if s.word.Load() == w {
				return
			}
			continue
		}
		// Units 0..q-1 (from the newest) are recorded at or after a; unit
		// q, if it holds one, before. a-1 >= minTime-1 does not overflow.
		q := s.above(head, a-1)
		from := 0
		if q == len(s.slots) || s.slot(head, q).Load() == 0 {
			from = s.above(head, a) // nothing older: only units at a
		}
		k := min(n, q-from)
		if k == 0 {
			if s.word.Load() == w {
				return // nothing to give back
			}
			continue
		}
		if !s.word.CompareAndSwap(w, w|lockedBit) {
			continue
		}
		s.word.Store(released(w, s.remove(head, q-k, k)))
		return
	}
}

// remove removes units p..p+k-1 (counted from the newest) and returns the
// new head. The caller holds the lock.
//
// The units newer than the removed ones move k slots back, onto them, and
// the head moves back by k: the units older than the removed ones stay where
// they are, so the work is O(p+k), and the ring stays sorted. The k slots
// freed at the top become, under the new head, the k oldest positions of the
// ring. If the ring was full, they stand for units that the last k units
// recorded overwrote: the log no longer knows their instants, but an
// admission of n units overwrites only units that no longer count at its
// now (unit limit-n has expired), so each was at most clk-window, clk being
// the newest instant ever recorded, and at most the oldest unit left. The
// freed slots get that bound, min(oldest left, clk-window): such a
// placeholder never counts at clk or later, where the overwritten units had
// expired, and counts at a stale time whenever they could have, so that a
// stale time is judged no less strictly after a Refund than before it (see
// decide). If the ring was not full nothing was overwritten, and the slots
// are left empty. That is also why the newest instant is kept in floor
// before it can leave the ring.
func (s *logState) remove(head, p, k int) int {
	limit := len(s.slots)
	newest := s.unit(head, 0)
	clk := max(newest, s.floor.Load())
	if p == 0 && newest > s.floor.Load() {
		s.floor.Store(newest) // the newest unit leaves the ring
	}
	var fill int64 // what the freed slots get: empty, or the bound above
	if s.slot(head, limit-1).Load() != 0 {
		// clk-window >= minTime-MaxWindow-1 does not overflow. A bound
		// before minTime is before every instant ever recorded: nothing was
		// overwritten then, and the slots stay empty.
		bound := clk - s.p.window
		if oldest := limit - 1; p+k < limit {
			bound = min(bound, s.unit(head, oldest))
		} else if p > 0 {
			bound = min(bound, s.unit(head, p-1))
		}
		fill = max(enc(bound), 0)
	}
	for j := p - 1; j >= 0; j-- {
		s.slot(head, j+k).Store(s.slot(head, j).Load())
	}
	for j := range k {
		s.slot(head, j).Store(fill)
	}
	head -= k
	if head < 0 {
		head += limit
	}
	return head
}

// snapshot returns a consistent copy of every unit the ring holds, oldest
// first (those expired at the log's clock too: they still count at stale
// times), the clock itself (the newest instant recorded; noFloor for a log
// that never recorded one) and the lost mark (noFloor if none). Like every
// reader, it rereads Log.s on each attempt: a state retired by Reconfigure
// stays locked for good.
func (l *Log) snapshot() (units []int64, clk, lost int64) {
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit != 0 {
			backoff(i)
			continue
		}
		head := headOf(w)
		clk = max(s.unit(head, 0), s.floor.Load())
		lost = dec(s.lost().Load())
		count := s.above(head, noFloor) // every slot that holds a unit
		units = units[:0]
		for j := count - 1; j >= 0; j-- {
			units = append(units, s.unit(head, j))
		}
		if s.word.Load() == w {
			return units, clk, lost
		}
	}
}

// Idle reports whether the log is as good as a fresh one from now on: now
// is not older than the newest instant it has recorded, and no unit counts
// at now (every unit has now-e >= Window), and now is after the restore
// mark (a log restored by UnmarshalBinary over recorded Takes gives
// nothing back for a refund stamped at or before the mark, which a fresh
// log in its place would give back: see Refund). Dropping an idle log and
// making a fresh one changes no decision at now or later.
func (l *Log) Idle(now time.Time) bool {
	if l.s.Load() == nil {
		return true // the zero Log holds nothing
	}
	x := l.since(now)
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit != 0 {
			backoff(i)
			continue
		}
		head := headOf(w)
		idle := x >= s.floor.Load() && x > s.restored.Load() && s.slot(head, 0).Load() <= after(x-s.p.window)
		if s.word.Load() == w {
			return idle
		}
	}
}

// Allow is shorthand for AllowN(1).
func (l *Log) Allow() bool { return l.AllowN(1) }

// AllowN is shorthand for Take(clock.Now(), n).Allowed, with Config.Clock.
func (l *Log) AllowN(n int) bool {
	return l.Take(l.clock().Now(), n).Allowed
}

// Wait is ratekit.Wait(ctx, clock, l, n) with Config.Clock.
func (l *Log) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	return ratekit.Wait(ctx, l.clock(), l, n)
}

// Config returns the configuration in effect.
func (l *Log) Config() Config {
	s := l.s.Load()
	if s == nil {
		return Config{}
	}
	return s.p.config()
}

// clock returns Config.Clock, or the real clock.
func (l *Log) clock() clock.Clock {
	s := l.s.Load()
	if s == nil {
		return core.Clock(nil)
	}
	return s.p.clock
}

// lock takes the seqlock of the current state for good and returns the
// state: it is about to be replaced. A replacer that comes second waits
// here until the first has published its state, and then locks that one.
func (l *Log) lock() *logState {
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit == 0 && s.word.CompareAndSwap(w, w|lockedBit) {
			return s
		}
		backoff(i)
	}
}

// install fills next, a state no one else can see yet, with units (oldest
// first, at most next.limit) and the clock clk, and publishes it in place of
// old, whose lock the caller holds and never releases.
func (l *Log) install(next *logState, units []int64, clk, restored int64) {
	for i, e := range units {
		next.slots[i].Store(enc(e))
	}
	head := len(units)
	if head == len(next.slots) {
		head = 0
	}
	next.word.Store(uint64(head) << headShift)
	// The clock is kept whole: the newest unit, when it is one of units,
	// counts towards it anyway.
	next.floor.Store(clk)
	next.restored.Store(restored)
	l.s.Store(next)
}

// Reconfigure changes the configuration at once, keeping the units
// recorded so far, or returns an error wrapping ratekit.ErrInvalidConfig and
// changes nothing.
//
// Units taken stay counted whatever limits come and go: every unit the
// ring holds is kept, and judged against the new Limit and Window. A Limit
// lowered below the units that count leaves the log over-full: it admits
// nothing until enough of them expire, and raising the Limit again gives
// none back, at stale times too. To keep them, the ring never shrinks: it
// keeps the slots of the largest Limit the Log has had (or of the units it
// held, if more), and so the memory that Limit needed. A unit that has
// expired at the log's clock still counts at a stale time (see Take),
// where a Limit raised again would need it, and a ring sized to the units
// held would have to overwrite it at the next Takes. The log forgets a
// unit only when a Take overwrites it, once it has expired at the Take's
// time; a longer Window or a higher Limit does not bring it back.
//
// A Take under a lowered Limit may overwrite a unit that a stale time
// still counts, and that a Limit raised again would need there. The log
// remembers the newest instant it so forgot (8 bytes), and a time at which
// that unit counts admits nothing, until the unit expires: a conservative
// rule, which only ever admits less than a log that kept every unit, and
// which changes no decision of a log never reconfigured (there, every
// slot of its ring of Limit holds a unit that counts at such a time).
//
// The new ring is allocated with the log locked (its size depends on the
// units) and the units copied into it: the seqlock is held for O(ring)
// stores, during which concurrent Takes, Refunds and Peeks wait (they yield
// the thread), and then carry on under the new configuration. The Log gets
// parameters of its own; the Logs that shared its old ones are unchanged.
func (l *Log) Reconfigure(cfg Config) error {
	if err := cfg.validateLog(); err != nil {
		return err
	}
	if l.s.Load() == nil {
		// The zero Log, configured for the first time: an empty Log with
		// the parameters NewLog would share, unless a racing first
		// Reconfigure got in first (firstLog orders them).
		p, err := sharedLog(cfg)
		if err != nil {
			return err
		}
		firstLog.Lock()
		first := l.s.Load() == nil
		if first {
			l.init(p)
		}
		firstLog.Unlock()
		if first {
			return nil
		}
	}
	p := l.s.Load().p
	np := newLogParams(cfg, p.epoch) // the epoch of every state of l
	old := l.lock()
	// The old state is locked, so this read is consistent: headOf works
	// with the locked bit set.
	w := old.word.Load()
	head := headOf(w)
	clk := max(old.unit(head, 0), old.floor.Load())
	held := old.above(head, noFloor)                       // every slot that holds a unit
	next := newLogState(np, max(np.limit, len(old.slots))) // held <= len(old.slots)
	next.lost().Store(old.lost().Load())
	units := make([]int64, 0, held)
	for j := held - 1; j >= 0; j-- {
		units = append(units, old.unit(head, j))
	}
	l.install(next, units, clk, old.restored.Load())
	return nil
}

// logFormat is the version of the Log's MarshalBinary format;
// logLostFormat (2) is written only for a state with a lost mark (see
// lost), which version 1 cannot carry, and logLastFormat (3) only for a
// state with units at the last instant the Log holds, which neither can.
const (
	logFormat     = 1
	logLostFormat = 2
	logLastFormat = 3
)

// MarshalBinary returns the log's state in wall-clock terms: every unit its
// ring holds, those expired at the newest instant it has recorded included
// (they still count at staler times, which a restored log must judge as
// strictly as this one), that instant, and the lost mark, as Unix
// nanoseconds. It is at most a ring's worth of units, as a log at its
// Limit saves anyway; units recorded at one instant take a byte each.
//
// The format, after the 4-byte ratekit header, is: uvarint unit count,
// uvarint 1 and a varint Unix instant if the log has recorded any unit
// (else uvarint 0), then the units oldest first, the first as a varint
// Unix instant and each next as a uvarint delta from the previous. A state
// with a lost mark is version 2: version 1's fields followed by a uvarint
// of the clock minus the mark. Every other state is version 1, which
// builds before version 2 read.
//
// A Log's instants end 73 years past its epoch: a Take stamped later (a
// clock glitch of a century) is recorded at that last instant, where every
// later time falls too, so it never expires. A state with such units is
// version 3 (which builds before it refuse with a clear error): version
// 1's fields, a uvarint of the clock minus the lost mark plus 1 (0: no
// mark), and a uvarint of how many of the newest units are at the last
// instant. Restored into a Log whose clock reads later, those units (and
// the clock) move to that reading, within its own range, so they count
// for a Window from the restore on. The configuration is not included. int64
// Unix nanoseconds hold every instant a Log records, whatever year its
// Config.Clock reads: its epoch is within 146 years of 1970 and its times
// within 73 years of the epoch (see the package documentation), so no
// instant is saturated.
func (l *Log) MarshalBinary() ([]byte, error) {
	if l.s.Load() == nil {
		// The zero Log: a log that never recorded a unit.
		b := core.AppendHeader(make([]byte, 0, 6), core.SlidingLog, logFormat)
		return binary.AppendUvarint(binary.AppendUvarint(b, 0), 0), nil
	}
	units, clk, lost := l.snapshot()
	epochUnix := l.s0.p.epochUnix // the same for every state of l
	last := 0                     // the newest units at the last instant, which never expire
	for i := len(units) - 1; i >= 0 && units[i] == maxTime; i-- {
		last++
	}
	version := byte(logFormat)
	switch {
	case last > 0:
		version = logLastFormat
	case lost != noFloor && clk != noFloor:
		version = logLostFormat
	}
	b := core.AppendHeader(make([]byte, 0, 16+3*len(units)), core.SlidingLog, version)
	b = binary.AppendUvarint(b, uint64(len(units)))
	if clk == noFloor {
		return binary.AppendUvarint(b, 0), nil
	}
	b = binary.AppendUvarint(b, 1)
	b = binary.AppendVarint(b, epochUnix+clk)
	prev := int64(0)
	for i, e := range units {
		if i == 0 {
			b = binary.AppendVarint(b, epochUnix+e)
		} else {
			b = binary.AppendUvarint(b, uint64(e-prev))
		}
		prev = e
	}
	// Every unit the ring overwrote was recorded at or before the clock,
	// so the mark is too (max only guards the format).
	switch version {
	case logLostFormat:
		b = binary.AppendUvarint(b, uint64(max(clk-lost, 0)))
	case logLastFormat:
		m := uint64(0)
		if lost != noFloor {
			m = uint64(max(clk-lost, 0)) + 1
		}
		b = binary.AppendUvarint(binary.AppendUvarint(b, m), uint64(last))
	}
	return b, nil
}

// UnmarshalBinary replaces the log's state with one from MarshalBinary, so
// that the time between the two counts as elapsed. It returns an error
// wrapping ratekit.ErrInvalidState, and leaves the log unchanged, if b is
// truncated, corrupt, of another algorithm or version, holds more than
// MaxLogLimit units, or holds instants out of order or more than 73 years
// after the epoch of its parameters (the making of the first Log of
// its Config). Instants more than 73 years
// before it are moved up to that bound, which only makes them count longer.
// A state with more units than the log's Limit (saved before the Limit was
// lowered, or with a higher one) is restored whole: the log is over-full
// until enough of them expire, as after a Reconfigure that lowered the Limit.
// The lost mark (version 2) is restored too; a version 1 state has none,
// and holds what MarshalBinary saved before version 2: the units that
// count at its clock, so a state saved by such a build restores as it
// did then.
//
// From then on, unless the log had never recorded a unit, a Refund stamped
// at or before the newest instant it had recorded before the restore, or
// the restored state's, gives nothing
// back: the Take it refunds may have been recorded in the replaced state,
// not the restored one.
//
// It rewrites the ring in place, under the seqlock, for O(ring) stores, as
// Reconfigure does; only a state with more units than the ring has slots
// allocates a ring that holds them. The Log keeps its parameters, shared
// or not.
func (l *Log) UnmarshalBinary(b []byte) error {
	payload, lostFormat, err := core.ParseHeaders(b, core.SlidingLog, logFormat, logLostFormat)
	lastFormat := false
	if err != nil {
		var err3 error
		if payload, err3 = core.ParseHeader(b, core.SlidingLog, logLastFormat); err3 != nil {
			if len(b) >= core.HeaderLen {
				if _, other := core.ParseHeader(b, core.SlidingLog, b[3]); other == nil {
					return core.InvalidState(core.SlidingLog.String(), "format version %d, this build reads 1, 2 and 3", b[3])
				}
			}
			return err
		}
		lastFormat = true
	}
	if l.s.Load() == nil {
		return core.InvalidState(pkg, "the zero Log has no configuration to restore a state into; create it with NewLog")
	}
	p := l.s.Load().p // its epoch is every state's; its limit bounds k until the recheck below
	epochUnix := p.epochUnix
	r := core.NewReader(core.SlidingLog, payload)
	k := r.Uint64()
	hasClock := r.Uint64()
	// Instants are checked in Unix nanoseconds, where the bounds are
	// epochUnix+minTime and epochUnix+maxTime (both well inside int64).
	lo, hi := epochUnix+minTime, epochUnix+maxTime
	var c int64 // the clock, in Unix nanoseconds
	// r.Err also reports unread bytes, so it is checked once, at the end;
	// until then ok says whether the units may be read (k is bounded).
	ok := false
	switch {
	case hasClock > 1:
		r.Fail("bad clock flag %d", hasClock)
	case k > MaxLogLimit || k > uint64(len(payload)):
		// Each unit takes a byte at least: a count the payload cannot
		// hold is corrupt, and is refused before anything is allocated.
		r.Fail("state holds %d units, more than a Log can (%d) or the state's %d bytes do", k, MaxLogLimit, len(payload))
	case hasClock == 0 && k > 0:
		r.Fail("state holds %d units and no clock", k)
	case hasClock == 1:
		// A version 3 clock past hi is that of units at the saver's last
		// instant, moved below (checked there).
		if c = r.Int64(); c > hi && !lastFormat {
			r.Fail("clock %d is more than 73 years after this log was made", c)
		}
		ok = true
	}
	var units []int64
	if ok && k > 0 {
		units = make([]int64, 0, k)
		u := r.Int64()
		if u > c {
			r.Fail("unit 0 is after the clock")
			k = 0
		}
		for i := uint64(0); i < k; i++ {
			if i > 0 {
				// u <= c, so c-u fits a uint64 whatever their signs,
				// and u+delta <= c cannot overflow.
				delta := r.Uint64()
				if delta > uint64(c)-uint64(u) {
					r.Fail("unit %d is after the clock", i)
					break
				}
				u += int64(delta)
			}
			units = append(units, max(u, lo)-epochUnix)
		}
	}
	lost := int64(noFloor) // the lost mark, as an instant
	if lastFormat {
		// The clock minus the mark, plus 1 (0: no mark), then how many of
		// the newest units are at the saver's last instant: they, and the
		// clock, move to this Log's clock reading if later, within its
		// range (where every later instant falls, as at the saver's).
		m, last := r.Uint64(), r.Uint64()
		switch {
		case hasClock != 1:
			r.Fail("last units without a clock")
		case last == 0 || last > uint64(len(units)):
			r.Fail("%d last units of %d", last, len(units))
		case r.Err() == nil:
			to := min(max(c, epochUnix+since(p.clock.Now(), p.epoch)), hi)
			for i := len(units) - int(last); i < len(units); i++ {
				if units[i]+epochUnix != c {
					r.Fail("a last unit is not at the clock")
					break
				}
				units[i] = to - epochUnix
			}
			if m > 0 {
				lost = lo
				if c > lo && m-1 < uint64(c-lo) {
					lost = c - int64(m-1)
				}
				lost -= epochUnix
			}
			c = to
		}
		for _, u := range units {
			if u+epochUnix > hi {
				r.Fail("a unit is more than 73 years after this log was made")
				break
			}
		}
	}
	if lostFormat {
		// The clock minus the mark. A mark before lo moves up to it, as
		// units do; c-lo < 2^62 when c > lo (both in [lo, hi]).
		back := r.Uint64()
		if hasClock != 1 {
			r.Fail("lost mark without a clock")
		}
		lost = lo
		if c > lo && back < uint64(c-lo) {
			lost = c - int64(back)
		}
		lost -= epochUnix
	}
	if err := r.Err(); err != nil {
		return err
	}
	clk := int64(noFloor)
	if hasClock == 1 {
		clk = max(c, lo) - epochUnix
	}
	for i := 0; ; i++ {
		s := l.s.Load()
		w := s.word.Load()
		if w&lockedBit != 0 {
			backoff(i)
			continue
		}
		if len(units) > len(s.slots) {
			// More units than the ring holds (saved by a Log whose Limit
			// was lowered, or is higher): a ring that keeps them all, as
			// Reconfigure makes, replaces this one.
			old := l.lock()
			next := newLogState(old.p, len(units))
			next.lost().Store(enc(lost))
			l.install(next, units, clk, old.restoreMark(clk))
			return nil
		}
		if s.word.CompareAndSwap(w, w|lockedBit) {
			s.rewrite(w, units, clk, lost, s.restoreMark(clk))
			return nil
		}
	}
}

// restoreMark returns the restored mark of a state that replaces s, which
// the caller has locked, with a state of clock clk: every Take recorded in
// s, or in a state s replaced, was stamped at or before s's clock, and
// every Take recorded in the new state at or before clk.
func (s *logState) restoreMark(clk int64) int64 {
	head := headOf(s.word.Load())
	old := max(s.restored.Load(), s.unit(head, 0), s.floor.Load())
	if old == noFloor {
		return noFloor // never recorded, never restored: no Take to refund
	}
	return max(old, clk)
}

// rewrite replaces the units of s by units (oldest first, at most
// len(s.slots)), its floor by clk, its lost mark by lost (noFloor: none)
// and its restored mark by restored, and releases the lock the caller took
// from word w. Readers that overlap it see the version move and read again.
func (s *logState) rewrite(w uint64, units []int64, clk, lost, restored int64) {
	for i := range s.slots {
		v := int64(0) // empty
		if i < len(units) {
			v = enc(units[i])
		}
		s.slots[i].Store(v)
	}
	head := len(units)
	if head == len(s.slots) {
		head = 0
	}
	// The units are replaced whole, lost mark included: enc(noFloor) is 0,
	// no mark.
	s.lost().Store(enc(lost))
	// As in install, the clock is kept whole.
	s.floor.Store(clk)
	s.restored.Store(restored)
	s.word.Store(released(w, head))
}
