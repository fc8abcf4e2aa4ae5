package rolling

import (
	"math"
	"math/bits"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
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
//   - What is done here: a block of internal/cell holds the parameters and,
//     in its Aux, a base time, both immutable, and its one mutable word
//     packs the start as an exact nanosecond offset from base together
//     with the count. Adding to an open window, refunding and opening a
//     window within reach of base are one CAS on that word; only a window
//     whose start is out of reach of base (or a Reconfigure, or a restore
//     that does not fit) needs a new block: one allocation per new window
//     at most, never one per event.
//
// The word, for a block whose count field is cb bits wide:
//
//	bit 63         sealed (cell.SealBit): the block is retired, the rest final
//	bit 62         notified: OnLimitReached has fired for this window
//	bit 61         later: a unit stamped after start joined the window
//	bits 61-1..cb  offset: start - base, in nanoseconds (61-cb bits)
//	bits cb-1..0   count: units taken in the window
//
// cb is the bit length of the largest count the block can hold (its Limit,
// or a larger count carried over from before a Reconfigure), so at most
// 49 bits and the offset keeps at least 12: a reach of 2^(61-cb) ns, which
// is 4 µs at MaxLimit, 1 ms at Limit 2^40, 36 minutes at Limit 10^6, 26
// days at Limit 1000 and 4.5 years at Limit 10. (The later bit, which
// Refund needs, took one bit of reach.) A word whose count is 0 means
// no window is open: it is the word 0 unless Refund took a window's count
// to zero; then it keeps that window's start and the later bit (a spent
// window: see state.spent).
//
// Since a block is replaced in the course of ordinary Takes (a window out
// of reach), the Limiter uses its cell.Ref in helping mode: the seal is the
// sign bit, which keeps the final word readable, and whoever finds a block
// sealed decides on its final word and may publish the successor (see
// internal/cell, where the protocol and its argument live). A Take's
// linearization point is its one successful CAS: on the word in place, or
// on the Ref from a sealed block.

const (
	notifiedBit = 1 << 62
	laterBit    = 1 << 61
	flagBits    = 3 // sealed, notified, later
	// maxRetry caps the durations a Decision reports, one below Never, which
	// is reserved for requests that can never be admitted. Only times near
	// the ±292-year saturation of time.Time.Sub come near it.
	maxRetry = math.MaxInt64 - 1
	// epochReach is how far from the present, either way, interned
	// parameters' epoch may be for a new limiter to share them (146 years):
	// internal times are int64 ns from the epoch, and time.Time.Sub
	// saturates at 292 years.
	epochReach = 1 << 62
)

// block is a state: the parameters, the base in Aux, and the word.
type block = cell.Block[params]

// params is one immutable parameter set: a Config's values, the epoch that
// internal times count from, and the width of a block's count field. The
// limiters of equal Configs share one (see shared). Internal times are
// relative to a params' epoch, so a Limiter whose block changes to params
// of another epoch (a Reconfigure) converts them (see rebase).
type params struct {
	cfg    Config
	limit  int64
	window int64
	clock  clock.Clock // cfg.Clock, or the real clock

	// epoch is the instant internal time counts from: cfg.Clock's time when
	// the parameters were made, so that times carrying a monotonic reading
	// are compared on it, and a clock set far from the wall clock (a mock)
	// measures from near its own present. Its wall-clock reading turns
	// internal times into wall-clock instants, to marshal (in any year:
	// int64 Unix nanoseconds would wrap after 2262).
	epoch time.Time
	wall  cell.Epoch // epoch for Joint's count of a time without one (see cell.Wall)

	// cb is the width of a block's count field in bits, cmask its mask,
	// and offMax the largest offset the remaining 61-cb bits hold.
	cb     uint
	cmask  int64
	offMax uint64
	// natural is the params whose cb fits limit: p itself, unless p was
	// widened (see fit) for a count carried over above limit.
	natural *params

	// marked says a Refund stamped at or before mark (from epoch) gives
	// nothing back: set on a limiter's own copy by UnmarshalBinary (see
	// restoreMark), and carried by every params derived from it (fit,
	// Reconfigure) until a window opens after the mark (see successor).
	// Shared parameters are never marked. unmarked, in marked params, is
	// the params they are a marked copy of.
	marked   bool
	mark     int64
	unmarked *params
}

// withMark returns a copy of p's natural parameters with the refund mark
// m; its widened copies (fit) carry the mark too.
func (p *params) withMark(m int64) *params {
	q := *p.natural
	if !q.marked {
		q.unmarked = p.natural
	}
	q.marked, q.mark = true, m
	q.natural = &q
	return &q
}

func newParams(cfg Config, epoch time.Time) *params {
	p := &params{
		cfg:    cfg,
		limit:  int64(cfg.Limit),
		window: int64(cfg.Window),
		clock:  core.Clock(cfg.Clock),
		epoch:  epoch,
		wall:   cell.EpochOf(epoch),
	}
	p.setWidth(p.limit)
	p.natural = p
	return p
}

// setWidth sizes the count field for counts up to most, and the offset in
// the bits left over.
func (p *params) setWidth(most int64) {
	p.cb = uint(bits.Len64(uint64(most)))
	p.cmask = 1<<p.cb - 1
	p.offMax = 1<<(64-flagBits-p.cb) - 1
}

// fit returns params of p's Config whose count field holds count: p, or
// its natural params, or a copy widened for count (after a Reconfigure to
// a lower Limit, or the restore of an over-full window). publish keeps
// widened params for that window only, so a limiter that restores an
// over-full window is back on the shared parameters with its next window.
func (p *params) fit(count int64) *params {
	cb := uint(bits.Len64(uint64(max(p.limit, count))))
	switch cb {
	case p.cb:
		return p
	case p.natural.cb:
		return p.natural
	}
	w := *p.natural
	w.setWidth(max(p.limit, count))
	return &w
}

// interned holds the parameters New shares between limiters of equal
// Configs.
var interned cell.Interner[cell.Key, params]

// shared returns the interned parameters of cfg, making them (their epoch
// cfg.Clock's present) if there are none or if their epoch is more than
// epochReach from the present, and the present relative to their epoch;
// or an error wrapping ratekit.ErrInvalidConfig for an invalid cfg. It
// reads cfg.Clock once.
func shared(cfg Config) (p *params, now int64, err error) {
	at := core.Clock(cfg.Clock).Now()
	p, err = interned.Get(cell.Key{Limit: cfg.Limit, Window: cfg.Window, Name: cfg.Name, Clock: cfg.Clock, Hook: cell.HookOf(cfg.OnLimitReached)}, func(p *params) bool {
		now = p.since(at)
		return -epochReach <= now && now <= epochReach
	}, func() (*params, error) {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		now = 0
		return newParams(cfg, at), nil
	})
	return p, now, err
}

// since converts now to nanoseconds from the epoch. time.Time.Sub saturates
// at ±292 years, so the zero time and absurd times become the extreme int64
// values rather than overflowing; the arithmetic below is written to be
// exact for any int64 (see closed and untilEnd), and decisions on such a
// reading to be exact (see holds and farDecide).
func (p *params) since(now time.Time) int64 { return int64(now.Sub(p.epoch)) }

// holds reports whether p's epoch holds st exactly, so that every decision
// on it is exact at any time, saturated or not: no window (open or spent),
// or one whose start is above math.MinInt64 and at most math.MaxInt64 less
// p's window. Then a time since read as math.MinInt64 (more than 292 years
// before the epoch) is before the start, as its instant is, and one read
// as math.MaxInt64 (more than 292 years after) is at or after the window's
// end, as its instant is; so whether the window is open at t, or t is
// stale, is what it is at the instant. Every state a block holds keeps
// this: a window that would not is stored with its epoch moved to its
// start (see movedTo and settle).
func (p *params) holds(st state) bool {
	return st.count == 0 && !st.later || st.start != math.MinInt64 && st.start <= math.MaxInt64-p.window
}

// movedTo returns a private copy of p whose epoch is at: internal times
// then count from there. Its refund mark is the same instant, as far as
// the new epoch reads it (a mark more than 292 years from at saturates; it
// concerns Refunds before every window the copy holds, or after every one,
// and gives nothing back either way). A widened p moves with its natural
// parameters, and marked ones with their unmarked ones (see successor).
func (p *params) movedTo(at time.Time) *params {
	move := func(x *params) *params {
		y := *x
		y.epoch, y.wall = at, cell.EpochOf(at)
		y.natural = &y
		return &y
	}
	nat := move(p.natural)
	if nat.marked {
		nat.mark = nat.since(p.epoch.Add(time.Duration(p.mark)))
		nat.unmarked = move(nat.unmarked)
	}
	if p == p.natural {
		return nat
	}
	q := move(p)
	q.natural, q.mark, q.unmarked = nat, nat.mark, nat.unmarked
	return q
}

// settle returns p, st and base if p holds st (see holds); otherwise p
// moved to the instant of st's start (which is then 0) and st and base
// converted to it. st's start must be exact relative to p's epoch (not a
// saturated reading): a start that a Refund or a carried Reconfigure moved
// within a Window of the bound, or one a Reconfigure read exactly.
func (p *params) settle(st state, base int64) (*params, state, int64) {
	if p.holds(st) {
		return p, st, base
	}
	q := p.movedTo(p.epoch.Add(time.Duration(st.start)))
	st, base = rebase(st, base, p, q)
	return q, st, base
}

// farDecide is take at now, which p.since reads as math.MinInt64 (more
// than 292 years before the epoch, where time.Time.Sub saturates), exact:
// with a window open or spent, which holds (see holds) puts after now, it
// decides in a frame at now, where the start is its distance from now
// (saturated at math.MaxInt64, beyond which every duration is capped
// anyway); with none, as take at that reading, which opens a window there
// (the caller moves the epoch to now: see farTake).
func (p *params) farDecide(st state, now time.Time, n int) (verdict, state, action) {
	if st.count == 0 && !st.later {
		return p.take(st, math.MinInt64, n)
	}
	f := st
	f.start = int64(p.epoch.Add(time.Duration(st.start)).Sub(now))
	v, next, act := p.take(f, 0, n)
	next.start = st.start // a join or a denial: the window stays where it is
	return v, next, act
}

// farTake is one attempt of Take(now, n) on b's word w, for a now that
// p.since reads saturated, more than 292 years from the epoch: the Take
// of a block, decided as farDecide decides it, and a window it opens is
// published with the epoch moved to now (see holds), where it starts at 0.
// It reports false if the state is no longer w (the caller decides
// again), or fills dec and reports true. It is Take's cold path.
func (l *Limiter) farTake(b *block, w int64, now time.Time, n int, dec *ratekit.Decision) bool {
	p := b.P
	t := p.since(now)
	st := p.decode(w, b.Aux.Load())
	var v verdict
	var next state
	var act action
	if t == math.MinInt64 {
		v, next, act = p.farDecide(st, now, n)
	} else {
		v, next, act = p.take(st, t, n) // at or after every window's end
	}
	if act != keep {
		ok := false
		if p.holds(next) {
			ok = l.publish(b, w, next, t)
		} else {
			q := p.movedTo(now)
			next.start = q.since(now)
			ok = l.publishIn(b, w, q, next)
		}
		if !ok {
			return false
		}
	}
	p.fill(dec, v)
	if act == notify {
		p.cfg.OnLimitReached(*dec) // after the write, as in Take
	}
	return true
}

// freshBase is the base of a block made at t with no window open: a Window
// before t (so that a Take stamped up to a Window before t, or a window
// restored from before a restart that is still open at t, fits), but at
// most half the reach before it, which leaves the rest ahead of t for the
// windows to come; and above math.MinInt64, where no window starts (see
// holds), so that encode refuses such a start.
func (p *params) freshBase(t int64) int64 {
	return max(subSat(t, min(int64(p.offMax/2), p.window)), math.MinInt64+1)
}

// state is the logical state, unpacked: count 0 means no window is open
// (start, notified and later are then zero, but in a spent state).
type state struct {
	start    int64
	count    int64
	notified bool
	// later: some unit in the window was taken with a stamp after start
	// (see refund). Stale units, stamped before start, do not set it.
	// With count 0 it marks the state spent instead (see spent). (A fifth
	// field would make take's results one word too many for registers.)
	later bool
}

// spent reports whether no window is open because Refund took the window
// that started at s.start to zero. Takes were made before it whose
// windows it replaced, stamped before s.start, and a Refund may yet
// concern them; and a window they opened, replaced at s.start, may still
// count at times before s.start, with a count the state no longer holds.
// So a Take stamped before s.start is denied (a twin that never took the
// refunded units may hold that older window full there; at s.start and
// after the capacity is whole), no window opens at its own stamp (where a
// refund of one of those Takes would take its units), and a restore marks
// them (see restoreMark). Window starts so never move back.
func (s state) spent() bool { return s.count == 0 && s.later }

// open reports whether the window is open at t: it has units and t is
// before its end. A t before start counts as open (a stale Take is counted
// into the window; see the package documentation).
func (s state) open(t, window int64) bool {
	return s.count > 0 && !closed(s.start, t, window)
}

// carried returns st as a Reconfigure at t from a Window of old ns to one
// of window ns carries it (see Limiter.Reconfigure). With a shorter window,
// the units counted were stamped in [start, start+old), and as far as the
// limiter can tell not after t: a limiter of the new window all along may
// have a window open from any of those stamps, the latest at a, holding
// all of them. If a window of the new length from start is still open at
// a, it covers that; otherwise the window starts at a, which closes it no
// sooner than any of those, and counts it at earlier times, as a stale
// time is counted (see open). Units may be stamped either side of the new
// start, so it has the later mark (see refund: a refund at the start
// then keeps the window open longer, never shorter).
func (st state) carried(t, old, window int64) state {
	if st.count == 0 || window >= old {
		return st
	}
	a := addSat(st.start, old-1) // the old window's last instant
	if t >= st.start && t < a {
		a = t
	}
	if closed(st.start, a, window) {
		st.start, st.later = a, true
	}
	return st
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

// verdict is cell.Verdict, which fill makes the caller's Decision.
type verdict = cell.Verdict

// fill is core.Fill with the parameters' Limit, Window and Name.
func (p *params) fill(dec *ratekit.Decision, v verdict) {
	core.Fill(dec, p.cfg.Limit, p.cfg.Window, p.cfg.Name, v)
}

// take decides Take(t, n) on st: the verdict, the state after it, and what
// to write. It is a pure function of its arguments, so Peek is take without
// the write.
func (p *params) take(st state, t int64, n int) (verdict, state, action) {
	// n is compared as int64 with values of at most MaxLimit: no sum below
	// can overflow, since n <= limit is checked first.
	n64 := int64(n)
	if st.spent() && t < st.start {
		// A stale time before a spent window's start admits nothing: the
		// Take that opened the spent window replaced a window that may
		// still count at t, and the refund that emptied it cannot give
		// back what that older window counts (see refund). At the start,
		// full capacity.
		d := untilEnd(st.start, t, 0)
		v := verdict{Reset: d}
		switch {
		case n == 0:
			v.OK = true
		case n64 < 0 || n64 > p.limit:
			v.Retry = ratekit.Never
		default:
			v.Retry = d
		}
		return v, st, keep
	}
	if !st.open(t, p.window) {
		// Full capacity; the first event opens a window at t.
		switch {
		case uint64(n64-1) < uint64(p.limit): // 1 <= n <= limit
			return verdict{OK: true, Remaining: int(p.limit - n64), Reset: untilEnd(t, t, p.window)}, state{start: t, count: n64}, write
		case n == 0:
			return verdict{OK: true, Remaining: int(p.limit)}, st, keep
		}
		return verdict{Remaining: int(p.limit), Retry: ratekit.Never}, st, keep
	}
	// What is left now, and when the window ends. A Reconfigure may have
	// lowered Limit below the count: nothing is left then.
	remaining := max(0, p.limit-st.count)
	v := verdict{Remaining: int(remaining), Reset: untilEnd(st.start, t, p.window)}
	switch {
	case uint64(n64-1) < uint64(remaining): // 1 <= n <= remaining
		v.OK, v.Remaining = true, int(remaining-n64)
		st.count += n64
		st.later = st.later || t > st.start
		return v, st, write
	case n == 0:
		v.OK = true
		return v, st, keep
	case n64 < 0 || n64 > p.limit:
		v.Retry = ratekit.Never
		return v, st, keep
	}
	// Denied until the window closes, when n <= limit opens a new one.
	v.Retry = v.Reset
	if p.cfg.OnLimitReached == nil || st.notified {
		return v, st, keep // a denial writes nothing
	}
	st.notified = true
	return v, st, notify
}

// refund decides Refund(at=t, n) on st, for n >= 0 (0: a refund that
// gives nothing back, after a restore): the state after it, and whether it
// changes anything. Only the window open at t, with t not before
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
func (p *params) refund(st state, t int64, n int) (state, bool) {
	if st.count == 0 || t < st.start || closed(st.start, t, p.window) {
		return st, false
	}
	n64 := min(int64(n), st.count)
	if t == st.start && st.later && n64 < st.count {
		// Every unit left is now stamped at or before the new start.
		st.start, st.later = addSat(st.start, p.window-1), false
	} else if n64 == 0 {
		return st, false
	}
	st.count -= n64
	if st.count == 0 {
		st = state{start: st.start, later: true} // spent
	}
	return st, true
}

// decode unpacks w, a word of a block of p with base base (sealed or
// not).
func (p *params) decode(w, base int64) state {
	count := w & p.cmask
	if count == 0 && w&laterBit == 0 {
		return state{}
	}
	off := uint64(w&^(cell.SealBit|notifiedBit|laterBit)) >> p.cb
	// base+off is the start that encode packed: no overflow. A spent word
	// (count 0) has the later bit and no notified mark.
	return state{start: base + int64(off), count: count, notified: w&notifiedBit != 0, later: w&laterBit != 0}
}

// encode packs st for a block of p with base base, or reports false if it
// does not fit: the start (of an open or spent window) is before base or
// more than offMax after it, or the count is too wide, or p's epoch does
// not hold it (a start above math.MaxInt64 less the window: see holds;
// one at math.MinInt64 is before every base, see freshBase).
func (p *params) encode(st state, base int64) (int64, bool) {
	if st.count == 0 && !st.later {
		return 0, true
	}
	if st.start < base || st.count > p.cmask || st.start > math.MaxInt64-p.window {
		return 0, false
	}
	off := uint64(st.start) - uint64(base) // exact: start >= base
	if off > p.offMax {
		return 0, false
	}
	w := int64(off<<p.cb) | st.count
	if st.notified {
		w |= notifiedBit
	}
	if st.later {
		w |= laterBit
	}
	return w, true
}

// place returns the parameters, word and base of a block of p's Config
// that holds st, preferring p and base themselves: the block in force
// keeps its place when st fits it. Otherwise it is p's successor.
func (p *params) place(st state, base int64) (*params, int64, int64) {
	if p.fit(st.count) == p {
		if w, ok := p.encode(st, base); ok {
			return p, w, base
		}
	}
	return p.successor(st, base)
}

// successor returns the parameters, word and base of a new block of p's
// Config holding st: the params are p.fit(st.count), and the base is the
// (open or spent) window's start (offset 0, which fits, and the whole
// reach ahead of it), or, with none, base.
//
// Marked params whose window starts after the mark give way to the params
// they are a copy of (shared, for a limiter restored with its Config
// unchanged): a Refund stamped at or before the mark is before the window,
// and window starts never move back (see state.spent) but by a restore,
// which marks again. So a restore's private parameters last until the
// next window after the mark opens.
func (p *params) successor(st state, base int64) (*params, int64, int64) {
	if p.marked && st.count > 0 && st.start > p.mark {
		p = p.unmarked
	}
	np := p.fit(st.count)
	if st.count > 0 || st.later {
		base = st.start
	}
	w, _ := np.encode(st, base) // fits: offset 0, count within cb bits
	return np, w, base
}

// publish makes next the limiter's state in place of b's state w (as
// loaded: sealed or not), on which the caller's decision was made. It
// reports false, having changed nothing, if the state is no longer w; the
// caller must then decide again.
//
// In place when it can (one CAS on an unsealed word); otherwise b is sealed
// at w and a successor block holding next is published (internal/cell's
// helping mode), which allocates. t is the caller's time, near which the
// successor's base goes if next has no window open.
func (l *Limiter) publish(b *block, w int64, next state, t int64) bool {
	p := b.P
	if w >= 0 {
		// Widened parameters (see fit) serve only the window they were
		// widened for: a new window goes to a block of the natural ones;
		// and a marked one after the mark, to the unmarked (successor).
		base := b.Aux.Load()
		if nw, ok := p.encode(next, base); ok && (p == p.natural && (!p.marked || next.start <= p.mark) || !opens(p.decode(w, base), next)) {
			return b.W.CompareAndSwap(w, nw)
		}
		if !cell.Seal(&b.W, w) {
			return false
		}
	}
	// b is sealed and its final state is w.
	if !p.holds(next) {
		// A start within a Window of the last instant the epoch reads
		// (exact: see holds), which encode refuses: the epoch moves to it.
		q, st, _ := p.settle(next, 0)
		np, nw, base := q.successor(st, 0)
		return l.c.Help(b, np, nw, base)
	}
	np, nw, base := p.successor(next, p.freshBase(t))
	return l.c.Help(b, np, nw, base)
}

// publishIn makes next, relative to q's epoch, the limiter's state in
// place of b's state w, in a new block of q's Config (b's moved: see
// movedTo), as publish does when next is out of b's reach.
func (l *Limiter) publishIn(b *block, w int64, q *params, next state) bool {
	if w >= 0 && !cell.Seal(&b.W, w) {
		return false
	}
	np, nw, base := q.successor(next, 0)
	return l.c.Help(b, np, nw, base)
}

// opens reports whether next is a window other than prev's: one that a
// Take opened.
func opens(prev, next state) bool {
	return next.count > 0 && (prev.count == 0 || prev.start != next.start)
}

// rebase converts st and base, times relative to from's epoch, to times
// relative to to's, through the instants they stand for (so exactly, with
// epochs centuries apart too, unless an instant is more than 292 years
// from to's epoch: then it saturates, as since does; the callers move the
// epoch where a window's start would, see settle).
func rebase(st state, base int64, from, to *params) (state, int64) {
	if from.epoch == to.epoch {
		return st, base
	}
	if st.count > 0 || st.spent() {
		st.start = to.since(from.epoch.Add(time.Duration(st.start)))
	}
	return st, to.since(from.epoch.Add(time.Duration(base)))
}
