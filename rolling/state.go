package rolling

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

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
//     parameters, and its one mutable word packs the start as an exact
//     nanosecond offset from base together with the count. Adding to an open
//     window, refunding and opening a window within reach of base are one
//     CAS on that word; only a window whose start is out of reach of base
//     (or a Reconfigure, or a restore that does not fit) needs a new cell:
//     one allocation per new window at most, never one per event.
//
// The word, for a cell whose count field is cb bits wide:
//
//	bit 63         sealed: the cell is retired and its word is final
//	bit 62         notified: OnLimitReached has fired for this window
//	bit 61         later: a unit stamped after start joined the window
//	bits 61-1..cb  offset: start - base, in nanoseconds (61-cb bits)
//	bits cb-1..0   count: units taken in the window
//
// cb is the bit length of the largest count the cell can hold (its Limit,
// or a larger count carried over from before a Reconfigure), so at most
// 49 bits and the offset keeps at least 12: a reach of 2^(61-cb) ns, which
// is 4 µs at MaxLimit, 1 ms at Limit 2^40, 36 minutes at Limit 10^6, 26
// days at Limit 1000 and 4.5 years at Limit 10. (The later bit, which
// Refund needs, took one bit of reach.) A word whose count is 0 means
// no window is open; it is always the word 0.
//
// Replacing a cell (the protocol that keeps every admission in the right
// window when cells change):
//
//  1. Seal: CAS the word w -> w|sealed, from the very w the decision was
//     made on. After it no CAS on the word can succeed, so nobody adds to
//     the old window afterwards, and the state w is final.
//  2. Publish: CAS Limiter.cur old -> successor, a new cell holding the
//     state that results from applying the operation to w. Exactly one
//     successor wins: cur never returns to a cell it has left (a retired
//     cell is never reused, and whoever compares against it holds it, so
//     its memory cannot be recycled: no ABA).
//
// So a sealed cell that cur still points to has no successor yet, and one
// that cur has left has one: cur is the only link, and a cell needs no
// pointer to its successor (which keeps a Template's Limiter at 32 bytes).
// The limiter's logical state is therefore always well defined: the word of
// the current cell, sealed (final) or not. Every operation that changes it
// does so by exactly one successful CAS, either on an unsealed word (the
// common in-place path) or on cur from a sealed cell (step 2), and every
// decision is made on the value that CAS compares against. That is the
// linearization point, and since each decision is a pure function of the
// state value and the caller's time, every interleaving of Takes is
// equivalent to some sequential order of them: no window ever admits more
// than Limit, a Take that decided on the old window fails its CAS if the
// window was replaced (the word differs: a new window has a new offset; a
// sealed word takes no CAS, and a new cell has a new word), and nothing is
// added to a sealed word. ABA on the word is harmless for the same reason:
// a decision depends on the value only.
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
	laterBit    = 1 << 61
	flagBits    = 3
	// maxRetry caps the durations a Decision reports, one below Never, which
	// is reserved for requests that can never be admitted. Only times near
	// the ±292-year saturation of time.Time.Sub come near it.
	maxRetry = math.MaxInt64 - 1
)

// params is one immutable parameter set: a Config's values, the epoch that
// internal times count from, and the width of a cell's count field. The
// limiters of a Template share one; New and Reconfigure make one for a
// single limiter. All the params of one Limiter have the same epoch, so a
// time converted with one of them is valid with any other.
type params struct {
	limit   int64
	window  int64
	name    string
	clock   clock.Clock
	onLimit func(ratekit.Decision)

	// epoch is the instant internal time counts from: time.Now() at New or
	// NewTemplate, so that times carrying a monotonic reading are compared
	// on it. epochUnix is epoch in Unix nanoseconds, to marshal in
	// wall-clock terms.
	epoch     time.Time
	epochUnix int64

	// cb is the width of a cell's count field in bits, and offMax the
	// largest offset the remaining 61-cb bits hold.
	cb     uint
	offMax uint64
	// natural is the params whose cb fits limit: p itself, unless p was
	// widened (see fit) for a count carried over above limit.
	natural *params
	// compact: the limiter was made by a Template, and its cells are 24
	// bytes, not padded to put the word on a cache line of its own.
	compact bool
}

func newParams(cfg Config, epoch time.Time, compact bool) *params {
	p := &params{
		limit:     int64(cfg.Limit),
		window:    int64(cfg.Window),
		name:      cfg.Name,
		clock:     core.Clock(cfg.Clock),
		onLimit:   cfg.OnLimitReached,
		epoch:     epoch,
		epochUnix: epoch.UnixNano(),
		compact:   compact,
	}
	p.cb, p.offMax = width(p.limit)
	p.natural = p
	return p
}

// width returns the count field's width for counts up to most, and the
// largest offset the bits left over hold.
func width(most int64) (cb uint, offMax uint64) {
	cb = uint(bits.Len64(uint64(most)))
	return cb, 1<<(64-flagBits-cb) - 1
}

// fit returns params of p's Config whose count field holds count: p, or
// its natural params, or a copy widened for count (after a Reconfigure to
// a lower Limit, or the restore of an over-full window). publish keeps
// widened params for that window only, so a Template's limiter that
// restores an over-full window is back on the shared parameters with its
// next window.
func (p *params) fit(count int64) *params {
	cb, offMax := width(max(p.limit, count))
	switch cb {
	case p.cb:
		return p
	case p.natural.cb:
		return p.natural
	}
	w := *p.natural
	w.cb, w.offMax = cb, offMax
	return &w
}

// since converts now to nanoseconds from the epoch. time.Time.Sub saturates
// at ±292 years, so the zero time and absurd times become the extreme int64
// values rather than overflowing; the arithmetic below is written to be
// exact for any int64 (see closed and untilEnd).
func (p *params) since(now time.Time) int64 { return int64(now.Sub(p.epoch)) }

// freshBase is the base of a cell made at t with no window open: a Window
// before t (so that a Take stamped up to a Window before t, or a window
// restored from before a restart that is still open at t, fits), but at
// most half the reach before it, which leaves the rest ahead of t for the
// windows to come.
func (p *params) freshBase(t int64) int64 {
	return subSat(t, min(int64(p.offMax/2), p.window))
}

// state is the logical state, unpacked: count 0 means no window is open
// (start, notified and later are then meaningless and zero).
type state struct {
	start    int64
	count    int64
	notified bool
	// later: some unit in the window was taken with a stamp after start
	// (see refund). Stale units, stamped before start, do not set it.
	later bool
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
func (s *params) take(st state, t int64, n int) (ratekit.Decision, state, action) {
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
		st.later = st.later || t > st.start
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
//
// A refund at the window's start, with units left over that some caller
// took with a stamp after the start (st.later), is of a Take that may have
// opened the window: had it never happened, one of those later units (or
// an earlier, stale one) would have opened the window instead, and it
// would close later than this one does. Their stamps are not kept, but
// each is before start+window (it joined this window), so the window's
// start moves to start+window-1ns, the last instant any of them can be: it
// then closes no sooner than it would have, holding the units left. Without
// st.later every unit left was stamped at the start or before it, so the
// window would have opened at the start or earlier: it stays as it is, and
// a TakeAll rolled back at the instant of the Takes before it leaves the
// limiter exactly as it was.
//
// Proof that this never admits more, at any instant from the refunded
// Take's stamp t on, than a twin that never saw the refunded Take, as long
// as no Take stamped at or after start+window has opened another window
// (see the package documentation for what a refund cannot undo): the
// twin's window at t or later holds at most the units left (the other
// callers' units, where it admitted them), and opened at one of their
// stamps s <= start+window-1ns, or at t or before; so wherever it is open
// at or after t, the window here is open, with at least as many units.
// Every refund at an instant after the start takes units off a window the
// refunded Take joined, which closes when it would have: exact.
func (s *params) refund(st state, t int64, n int) (state, bool) {
	if st.count == 0 || t < st.start || closed(st.start, t, s.window) {
		return st, false
	}
	n64 := min(int64(n), st.count)
	if t == st.start && st.later && n64 < st.count {
		// Every unit left is now stamped at or before the new start.
		st.start, st.later = addSat(st.start, s.window-1), false
	}
	st.count -= n64
	if st.count == 0 {
		st = state{}
	}
	return st, true
}

// cell is one immutable configuration of the limiter plus its mutable word:
// the base the window start is an offset from, and the parameters. See the
// comment at the top of this file. The word comes last, so that New's
// padded layouts can put base and p on one cache line and the word alone on
// the next (see newCell).
type cell struct {
	base int64
	p    *params
	word atomic.Uint64
}

// newCell returns an unpublished cell holding st under params of p (see
// fit). Its base is st's start when a window is open, so the word's offset
// is 0 and fits, and base otherwise.
//
// A Template's limiters get a 24-byte cell. New's get one padded to 128
// bytes (Go's 128-byte size class is cache-line aligned): base and p at
// the end of one line, which every Take reads, and the word alone on the
// next, which every admission writes. When a process-wide limiter is
// shared by all cores, their compare-and-swaps take the word's line from
// each other; the reads of base and p then do not wait for it. Measured on
// two cores (BenchmarkParallel/allow-heavy-2, against this layout): 26%
// slower with 24-byte cells, 60% with New's Limiter laid out as a
// Template's (cur on the word's line).
// The price is 128 bytes for each cell New's limiters allocate: one per
// window out of reach, never per event.
func newCell(p *params, st state, base int64) *cell {
	p = p.fit(st.count)
	var c *cell
	if p.compact {
		c = &cell{}
	} else {
		pc := &struct {
			_ [64 - unsafe.Offsetof(cell{}.word)]byte
			c cell
			_ [56]byte
		}{}
		c = &pc.c
	}
	c.p, c.base = p, base
	if st.count > 0 {
		c.base = st.start
	}
	w, _ := c.encode(st) // fits: offset 0, count within cb bits
	c.word.Store(w)
	return c
}

// decode unpacks w (sealed or not).
func (c *cell) decode(w uint64) state {
	cb := c.p.cb
	count := int64(w & (1<<cb - 1))
	if count == 0 {
		return state{}
	}
	off := (w &^ (sealedBit | notifiedBit | laterBit)) >> cb
	// base+off is the start that encode packed: no overflow.
	return state{start: c.base + int64(off), count: count, notified: w&notifiedBit != 0, later: w&laterBit != 0}
}

// encode packs st, or reports false if it does not fit this cell: the start
// is before base or more than offMax after it, or the count is too wide.
func (c *cell) encode(st state) (uint64, bool) {
	if st.count == 0 {
		return 0, true
	}
	p := c.p
	if st.start < c.base || uint64(st.count) >= 1<<p.cb {
		return 0, false
	}
	off := uint64(st.start) - uint64(c.base) // exact: start >= base
	if off > p.offMax {
		return 0, false
	}
	w := off<<p.cb | uint64(st.count)
	if st.notified {
		w |= notifiedBit
	}
	if st.later {
		w |= laterBit
	}
	return w, true
}

// publish makes next the limiter's state in place of c's state w, which the
// caller's decision was made on. It reports false, having changed nothing,
// if the state is no longer w; the caller must then decide again.
//
// In place when it can (one CAS on an unsealed word); otherwise c is sealed
// at w and a successor cell holding next is published, which allocates.
// t is the caller's time, near which the successor's base goes if next has
// no window.
func (l *Limiter) publish(c *cell, w uint64, next state, t int64) bool {
	if w&sealedBit == 0 {
		// Widened parameters (see fit) serve only the window they were
		// widened for: a new window goes to a cell of the natural ones.
		p := c.p
		if nw, ok := c.encode(next); ok && (p == p.natural || !opens(c.decode(w), next)) {
			return c.word.CompareAndSwap(w, nw)
		}
		if !c.word.CompareAndSwap(w, w|sealedBit) {
			return false
		}
	}
	// c is sealed and its final state is w.
	return l.cur.CompareAndSwap(c, newCell(c.p, next, c.p.freshBase(t)))
}

// opens reports whether next is a window other than prev's: one that a
// Take opened.
func opens(prev, next state) bool {
	return next.count > 0 && (prev.count == 0 || prev.start != next.start)
}

// replace installs the parameters and state that f returns for the current
// ones: the slow path of Reconfigure and UnmarshalBinary. With the same
// parameters and a state that fits the current cell, it is one CAS on the
// word (so a restored Template limiter keeps its 32 bytes); otherwise it
// follows the same seal-and-publish protocol as Take. Either way it is safe
// under any concurrent use and never loses a Take.
func (l *Limiter) replace(f func(p *params, st state) (*params, state)) {
	for {
		c := l.cur.Load()
		w := c.word.Load()
		if w&sealedBit != 0 && l.cur.Load() != c {
			continue // c has a successor: start again from it
		}
		p, st := f(c.p, c.decode(w))
		p = p.fit(st.count)
		if w&sealedBit == 0 {
			if p == c.p {
				if nw, ok := c.encode(st); ok {
					if c.word.CompareAndSwap(w, nw) {
						return
					}
					continue
				}
			}
			if !c.word.CompareAndSwap(w, w|sealedBit) {
				continue
			}
		}
		if l.cur.CompareAndSwap(c, newCell(p, st, c.base)) {
			return
		}
	}
}
