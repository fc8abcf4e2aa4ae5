package rolling

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// The state of a rolling window is its start (int64 ns from the epoch) and
// its count (up to MaxLimit = 2^48): 112 bits, more than one atomic word
// holds. Three ways were weighed:
//
//   - One word with a coarse time unit: a 2^40 count leaves 23 bits for the
//     start, which cannot span centuries at any unit that keeps ResetAfter
//     meaningful, and rounding the start changes when windows close.
//   - An immutable {start, count} cell per event: one allocation per Take.
//   - What is done here: an immutable cell holds a base time and the
//     settings, and its one mutable word packs the start as an exact
//     nanosecond offset from base together with the count. Adding to an open
//     window, refunding and opening a window within reach of base are one
//     CAS on that word; only a window whose start is out of reach of base
//     (or a Reconfigure, or a restore) needs a new cell: one allocation per
//     new window at most, never one per event.
//
// The word, for a cell whose count field is cb bits wide:
//
//	bit 63         sealed: the cell is retired and its word is final
//	bit 62         notified: OnLimitReached has fired for this window
//	bits 62-1..cb  offset: start - base, in nanoseconds (62-cb bits)
//	bits cb-1..0   count: units taken in the window
//
// cb is the bit length of the largest count the cell can hold (its Limit,
// or a larger count carried over from before a Reconfigure), so at most
// 49 bits and the offset keeps at least 13: a reach of 2^(62-cb) ns, which
// is 8 µs at MaxLimit, 2 ms at Limit 2^40, 73 minutes at Limit 10^6, 52
// days at Limit 1000 and 9 years at Limit 10. A word whose count is 0 means
// no window is open; it is always the word 0.
//
// Replacing a cell (the protocol that keeps every admission in the right
// window when cells change):
//
//  1. Seal: CAS the word w -> w|sealed, from the very w the decision was
//     made on. After it no CAS on the word can succeed, so nobody adds to
//     the old window afterwards, and the state w is final.
//  2. Publish: CAS next nil -> successor, a new cell holding the state that
//     results from applying the operation to w. Exactly one successor wins.
//  3. Advance: CAS cur old -> next. Anyone may do it; it changes nothing
//     logical, it only saves later callers a hop.
//
// The limiter's logical state is therefore always well defined: the word of
// the current cell if unsealed; its final word if sealed with no successor
// yet; otherwise the successor's. Every operation that changes it does so by
// exactly one successful CAS, either on an unsealed word (step 0: the common
// in-place path) or on a sealed cell's next (step 2), and every decision is
// made on the value that CAS compares against. That is the linearization
// point, and since each decision is a pure function of the state value and
// the caller's time, every interleaving of Takes is equivalent to some
// sequential order of them: no window ever admits more than Limit, a Take
// that decided on the old window fails its CAS if the window was replaced
// (the word differs: a new window has a new offset, and a new cell has a
// new word), and nothing is added to a sealed word. ABA on the word is
// harmless for the same reason: a decision depends on the value only.
//
// Lock freedom: a caller retries only when another caller's CAS succeeded,
// and a sealed cell without a successor does not wait for the caller that
// sealed it: anyone who finds it may publish a successor computed from its
// final state (step 2), so a goroutine preempted between steps 1 and 2
// stalls nobody. Go's sync/atomic operations are sequentially consistent,
// and a successor's fields are written before the CAS that publishes it, so
// whoever loads it sees them.

const (
	sealedBit   = 1 << 63
	notifiedBit = 1 << 62
	flagBits    = 2
	// maxRetry caps the durations a Decision reports, one below Never, which
	// is reserved for requests that can never be admitted. Only times near
	// the ±292-year saturation of time.Time.Sub come near it.
	maxRetry = math.MaxInt64 - 1
)

// settings is an immutable snapshot of a Config, shared by the cells built
// under it.
type settings struct {
	limit   int64
	window  int64
	name    string
	clock   clock.Clock
	onLimit func(ratekit.Decision)
}

func newSettings(cfg Config) *settings {
	return &settings{
		limit:   int64(cfg.Limit),
		window:  int64(cfg.Window),
		name:    cfg.Name,
		clock:   core.Clock(cfg.Clock),
		onLimit: cfg.OnLimitReached,
	}
}

// state is the logical state, unpacked: count 0 means no window is open
// (start and notified are then meaningless and zero).
type state struct {
	start    int64
	count    int64
	notified bool
}

// open reports whether the window is open at t: it has units and t is
// before its end. A t before start counts as open (a stale Take is counted
// into the window; see the package documentation).
func (s state) open(t, window int64) bool {
	return s.count > 0 && !closed(s.start, t, window)
}

// closed reports whether t >= start+window, without computing start+window,
// which may overflow: both are arbitrary int64 values. When t >= start the
// difference t-start is exact in uint64 (it is below 2^64).
func closed(start, t, window int64) bool {
	return t >= start && uint64(t)-uint64(start) >= uint64(window)
}

// untilEnd is start+window-t for a window open at t, capped at maxRetry.
// If t >= start, t-start < window (it is open), so the result is in
// (0, window]. If t < start (a stale time), start-t is exact in uint64 and
// adding window may overflow even uint64: the sum is checked. The cap
// matters only for times or windows of centuries.
func untilEnd(start, t, window int64) time.Duration {
	var d uint64
	if t >= start {
		d = uint64(window) - (uint64(t) - uint64(start))
	} else {
		gap := uint64(start) - uint64(t)
		d = gap + uint64(window)
		if d < gap {
			return maxRetry
		}
	}
	return time.Duration(min(d, maxRetry))
}

// action says what an operation does to the state.
type action int

const (
	keep   action = iota // nothing to write
	write                // write the new state
	notify               // write the new state (the notified mark), then call OnLimitReached
)

// take decides Take(t, n) on st: the Decision, the state after it, and what
// to write. It is a pure function of its arguments, so Peek is take without
// the write.
func (s *settings) take(st state, t int64, n int) (ratekit.Decision, state, action) {
	open := st.open(t, s.window)
	// What is left now, and when the window ends. A Reconfigure may have
	// lowered Limit below the count: nothing is left then.
	remaining, reset := s.limit, time.Duration(0)
	if open {
		remaining = max(0, s.limit-st.count)
		reset = untilEnd(st.start, t, s.window)
	}
	d := ratekit.Decision{
		Limit:      int(s.limit),
		Remaining:  int(remaining),
		Window:     time.Duration(s.window),
		ResetAfter: reset,
		Policy:     s.name,
	}
	// n is compared as int64 with values of at most MaxLimit: no sum below
	// can overflow, since n <= limit is checked first.
	n64 := int64(n)
	switch {
	case n64 < 0 || n64 > s.limit:
		return core.Impossible(d.Limit, d.Remaining, d.Window, d.ResetAfter, d.Policy), st, keep
	case n == 0:
		// Takes nothing, opens no window.
		d.Allowed = true
		return d, st, keep
	case !open:
		// The first event while no window is open opens one at t.
		d.Allowed = true
		d.Remaining = int(s.limit - n64)
		d.ResetAfter = untilEnd(t, t, s.window)
		return d, state{start: t, count: n64}, write
	case n64 <= remaining:
		d.Allowed = true
		d.Remaining = int(remaining - n64)
		st.count += n64
		return d, st, write
	}
	// Denied until the window closes, when n <= limit opens a new one.
	d.RetryAfter = reset
	if s.onLimit == nil || st.notified {
		return d, st, keep // a denial writes nothing
	}
	st.notified = true
	return d, st, notify
}

// refund decides Refund(at=t, n) on st, for n > 0: the state after it, and
// whether it changes anything. Only the window open at t, with t not before
// its start, gets units back; a count that reaches zero closes the window.
func (s *settings) refund(st state, t int64, n int) (state, bool) {
	if st.count == 0 || t < st.start || closed(st.start, t, s.window) {
		return st, false
	}
	st.count -= min(int64(n), st.count)
	if st.count == 0 {
		st = state{}
	}
	return st, true
}

// cell is one immutable configuration of the limiter plus its mutable word:
// the settings, the base the window start is an offset from, and the width
// of the count field. See the comment at the top of this file.
type cell struct {
	word atomic.Uint64
	next atomic.Pointer[cell]
	cfg  *settings
	base int64
	// cb is the width of the count field in bits, and offMax the largest
	// offset the remaining 62-cb bits hold.
	cb     uint
	offMax uint64
}

// newCell returns an unpublished cell holding st under cfg. Its base is
// st's start when a window is open, so the word's offset is 0 and fits, and
// baseHint otherwise (a time near which the next window will likely open).
// The count field is wide enough for cfg's limit and for st's count, which
// may exceed it after a Reconfigure or a restore.
func newCell(cfg *settings, st state, baseHint int64) *cell {
	cb := uint(bits.Len64(uint64(max(cfg.limit, st.count))))
	c := &cell{cfg: cfg, base: baseHint, cb: cb, offMax: 1<<(64-flagBits-cb) - 1}
	if st.count > 0 {
		c.base = st.start
	}
	w, _ := c.encode(st) // fits: offset 0, count within cb bits
	c.word.Store(w)
	return c
}

// decode unpacks w (sealed or not).
func (c *cell) decode(w uint64) state {
	count := int64(w & (1<<c.cb - 1))
	if count == 0 {
		return state{}
	}
	off := (w &^ (sealedBit | notifiedBit)) >> c.cb
	// base+off is the start that encode packed: no overflow.
	return state{start: c.base + int64(off), count: count, notified: w&notifiedBit != 0}
}

// encode packs st, or reports false if it does not fit this cell: the start
// is before base or more than offMax after it, or the count is too wide.
func (c *cell) encode(st state) (uint64, bool) {
	if st.count == 0 {
		return 0, true
	}
	if st.start < c.base || uint64(st.count) >= 1<<c.cb {
		return 0, false
	}
	off := uint64(st.start) - uint64(c.base) // exact: start >= base
	if off > c.offMax {
		return 0, false
	}
	w := off<<c.cb | uint64(st.count)
	if st.notified {
		w |= notifiedBit
	}
	return w, true
}

// publish makes next the limiter's state in place of c's state w, which the
// caller's decision was made on. It reports false, having changed nothing,
// if the state is no longer w; the caller must then decide again.
//
// In place when it can (one CAS on an unsealed word); otherwise c is sealed
// at w and a successor cell holding next is published, which allocates.
// t is the caller's time, a base for the successor if next has no window.
func (l *Limiter) publish(c *cell, w uint64, next state, t int64) bool {
	if w&sealedBit == 0 {
		if nw, ok := c.encode(next); ok {
			return c.word.CompareAndSwap(w, nw)
		}
		if !c.word.CompareAndSwap(w, w|sealedBit) {
			return false
		}
	}
	// c is sealed and its final state is w.
	q := newCell(c.cfg, next, t)
	if !c.next.CompareAndSwap(nil, q) {
		return false
	}
	l.cur.CompareAndSwap(c, q)
	return true
}

// replace installs, in a new cell, the settings and state that f returns
// for the current cell and its state: the slow path of Reconfigure and
// UnmarshalBinary. It follows the same seal-and-publish protocol as Take,
// so it is safe under any concurrent use and never loses a Take.
func (l *Limiter) replace(f func(c *cell, st state) (*settings, state)) {
	for {
		c := l.cur.Load()
		w := c.word.Load()
		if w&sealedBit != 0 {
			if nx := c.next.Load(); nx != nil {
				l.cur.CompareAndSwap(c, nx)
				continue
			}
		} else if !c.word.CompareAndSwap(w, w|sealedBit) {
			continue
		}
		cfg, st := f(c, c.decode(w))
		q := newCell(cfg, st, c.base)
		if c.next.CompareAndSwap(nil, q) {
			l.cur.CompareAndSwap(c, q)
			return
		}
	}
}
