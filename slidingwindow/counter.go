package slidingwindow

import (
	"context"
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Counter is an approximate sliding-window limiter in one 64-bit word of
// state, after Cloudflare's: time is cut into fixed windows of length Window
// aligned to Unix time, and at an instant e into the current window the
// sliding count is estimated as
//
//	current + previous·(Window-e)/Window
//
// where current and previous are the units admitted in the current and the
// previous fixed window: the previous window's units are assumed spread
// evenly over it, and the part of it the sliding window still covers is
// counted. A Take of n units is admitted iff estimate+n <= Limit, compared
// exactly in integers (no floats, no rounding); since the weighted term is
// never negative, a Counter never admits more than Limit in one fixed window.
//
// # Error
//
// The estimate is exact when the previous window's units were evenly spread.
// When they were not, the Counter over-admits if they came late in it and
// under-admits if they came early. The worst case, proven in the comment on
// admitAt and reached by TestCounterErrorBound: in an interval of length
// Window, a Counter admits at most 2·Limit-1 units (Limit at the very end of
// one fixed window, Limit-1 across the next), where an exact Log admits
// Limit. Conversely, it can deny a unit when no unit at all was admitted in
// the last Window (the previous window's units all came at its start).
//
// TestCounterError measures it on an hour of requests against 600 per
// minute (go test -run CounterError -v prints the table). With Poisson
// arrivals at 0.9 times the limit, the estimate was off by 1.2% of Limit on
// average, 1.1% of requests were admitted although what the Counter had
// admitted in the last Window already made Limit, 0.02% were refused
// although it had not, and the most admitted in any sliding minute was
// 1.05·Limit. Traffic always at or over the limit fares worse: at 1.5 times
// the limit, 1.02·Limit at most but 10% of requests admitted and 20% refused
// wrongly; bursts of up to 2·Limit, 1.94·Limit in one minute; on/off, 1.11.
// Where that matters, use a Log.
//
// # Concurrency
//
// The state is one word, updated by a CAS loop: Take, Peek and Refund are
// lock-free, allocate nothing, and a denial writes nothing. A stale now is
// evaluated at the start of the fixed window the Counter is in, the instant
// at which the previous window weighs most, so it never admits more.
//
// # Memory
//
// Build a Counter with NewCounter, or with a CounterTemplate's New; the
// zero Counter is not usable (its methods panic). A Counter is safe for
// concurrent use.
//
// A Counter made by a CounterTemplate is 24 bytes, one allocation: the
// template's Counters share their parameters. One made by NewCounter has
// 112 bytes of parameters of its own and is padded to 128 bytes, two cache
// lines: the word alone at the end of the first, the target of every core's
// CAS when the Counter is shared by a whole process, and the rest in the
// second, read by every Take and written only when the parameters change,
// so that a Take's reads of the parameters do not wait for the contended
// line.
type Counter struct {
	s0 counterState // the first state, inline: a Counter is one allocation
	s  atomic.Pointer[counterState]
}

var _ ratekit.Limiter = (*Counter)(nil)

// counterState is a Counter's word together with the parameters it is
// packed by. Reconfigure replaces the state whole, because the word's layout
// depends on Limit and Window: a word of one layout must never be CASed by
// a caller that decoded it with another. The state it replaces is retired
// by setting its word to retired, which no layout produces, so that every
// CAS against it fails and its callers reread Counter.s. Retiring is also
// the lock between replacers: only the one whose CAS to retired succeeded
// may publish; the others wait for it (they see retired) and start again.
// A retired word is never reused, so no CAS in flight can succeed on it
// (no ABA); Go's atomics are sequentially consistent, so a caller that sees
// retired and rereads Counter.s finds a state published no earlier.
//
// word packs, from the top:
//
//	rel  (64-2·cb bits) index of the current fixed window, relative to base
//	cur  (cb bits)      units admitted in that window
//	prev (cb bits)      units admitted in the window before it
//
// where cb = (64-indexBits(window))/2, all the bits rel leaves, whatever the
// Limit: a count is at most the Limit, or more when Reconfigure lowered the
// Limit below the units already counted, which stay counted (the window is
// then over-full; raising the Limit again gives nothing back). Since the
// layout depends on the Window alone, a Reconfigure that keeps the Window
// keeps every count. rel is the full index, not a tag, so a word
// never aliases another window however long the Counter sat unused or
// however stale a time is: that is what bounds Limit (MaxCounterLimit). The
// zero word (window base, nothing admitted) is a fresh Counter.
type counterState struct {
	w atomic.Uint64  // first, so that padding can give it a line of its own (see wordLine)
	p *counterParams // immutable, and shared by the Counters of a CounterTemplate
}

// counterParams is one immutable parameter set of a Counter. The Counters
// of a CounterTemplate share one; NewCounter and Reconfigure make one for a
// single Counter. Every parameter set of one Counter has the same epoch, so
// an instant computed from one holds for all.
type counterParams struct {
	epoch     time.Time // instants are nanoseconds from here
	epochUnix int64     // epoch in Unix nanoseconds: windows are aligned to Unix time
	limit     int
	window    int64
	name      string
	clock     clock.Clock

	base   int64  // Unix index (Unix nanoseconds / window, floored) of rel 0: the window of minTime
	mask   uint64 // 1<<cb - 1
	shift  uint8  // 2·cb: rel's position
	cb     uint8  // bits per count
	padded bool   // NewCounter's: each state's word gets a cache line of its own
}

// config returns the Config these parameters were made from, with the
// Clock that Allow reads.
func (s *counterParams) config() Config {
	return Config{Limit: s.limit, Window: time.Duration(s.window), Name: s.name, Clock: s.clock}
}

// retired is the word of a replaced state. No state has it: rel never has
// all its bits set (indexBits keeps one value free) and when rel has fewer
// than 64-2·cb bits, the top bits are zero.
const retired = ^uint64(0)

// NewCounter returns an approximate sliding counter, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate; a
// Counter's Limit must also be at most MaxCounterLimit(cfg.Window)). To make
// many Counters of one Config (one per key), make a CounterTemplate once and
// use its New: its Counters share their parameters.
func NewCounter(cfg Config) (*Counter, error) {
	if err := cfg.validateCounter(); err != nil {
		return nil, err
	}
	// The word alone on the first line, the rest on the second (see Counter).
	c := &struct {
		_ [wordLine]byte
		c Counter
		_ [128 - wordLine - unsafe.Sizeof(Counter{})]byte
	}{}
	c.c.init(newCounterParams(cfg, time.Now(), true))
	return &c.c, nil
}

// wordLine is the padding before a state (or a limiter, whose first field
// is its first state) in an allocation of 128 bytes, Go's line-aligned size
// class, that puts the state's word, its first field, alone at the end of
// the first cache line, and the rest of the state (and the limiter) in the
// second.
const wordLine = 64 - 8

// init makes c a fresh Counter with parameters p.
func (c *Counter) init(p *counterParams) {
	c.s0.p = p
	c.s.Store(&c.s0)
}

// newCounterState returns a state of p with the word w: compact for a
// template's Counter, else with the word on a cache line of its own (see
// Counter).
func newCounterState(p *counterParams, w uint64) *counterState {
	var st *counterState
	if p.padded {
		c := &struct {
			_  [wordLine]byte
			st counterState
			_  [128 - wordLine - unsafe.Sizeof(counterState{})]byte
		}{}
		st = &c.st
	} else {
		st = new(counterState)
	}
	st.p = p
	st.w.Store(w)
	return st
}

// newCounterParams returns the parameters of cfg, a valid Counter Config,
// for a Counter with the given epoch.
func newCounterParams(cfg Config, epoch time.Time, padded bool) *counterParams {
	cb := uint8((64 - indexBits(int64(cfg.Window))) / 2) // see counterState; MaxCounterLimit is 1<<cb - 1
	epochUnix := unixOf(epoch)
	return &counterParams{
		epoch:     epoch,
		epochUnix: epochUnix,
		limit:     cfg.Limit,
		window:    int64(cfg.Window),
		name:      cfg.Name,
		clock:     core.Clock(cfg.Clock),
		base:      floorDiv(epochUnix+minTime, int64(cfg.Window)),
		shift:     2 * cb,
		cb:        cb,
		mask:      1<<cb - 1,
		padded:    padded,
	}
}

// CounterTemplate makes fresh Counters of one Config that share their
// parameters, so that each costs 24 bytes in one allocation (NewCounter's
// cost 240 in two): for a ratekit.Keyed of a Counter per key (per org, per
// token, per IP). Validate the Config once, with NewCounterTemplate, and the
// factory cannot fail:
//
//	t, err := slidingwindow.NewCounterTemplate(cfg)
//	...
//	perOrg := ratekit.NewKeyed(func(string) *slidingwindow.Counter { return t.New() }, ratekit.KeyedConfig{})
//
// A Counter made by a CounterTemplate is in every way a Counter made by
// NewCounter with the template's Config, except that it measures time from
// the template's making rather than its own (see the package documentation
// on time): Reconfigure, UnmarshalBinary and the rest act on that Counter
// alone (Reconfigure gives it parameters of its own; UnmarshalBinary keeps
// the shared ones). A CounterTemplate is immutable and safe for concurrent
// use.
type CounterTemplate struct {
	p *counterParams
}

// NewCounterTemplate returns a CounterTemplate of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid for a Counter (as NewCounter
// would). Its Counters measure time from now (time.Now()).
func NewCounterTemplate(cfg Config) (*CounterTemplate, error) {
	if err := cfg.validateCounter(); err != nil {
		return nil, err
	}
	return &CounterTemplate{p: newCounterParams(cfg, time.Now(), false)}, nil
}

// New returns a fresh Counter of the template's Config. It allocates only
// the 24-byte Counter, and cannot fail.
func (t *CounterTemplate) New() *Counter {
	c := &Counter{}
	c.init(t.p)
	return c
}

// Config returns the configuration of the template's Counters, as their
// Config method does (Clock is the real clock if the Config had none).
func (t *CounterTemplate) Config() Config { return t.p.config() }

// floorDiv is a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func (s *counterParams) pack(rel, cur, prev uint64) uint64 {
	return rel<<s.shift | cur<<s.cb | prev
}

func (s *counterParams) unpack(w uint64) (rel, cur, prev uint64) {
	return w >> s.shift, w >> s.cb & s.mask, w & s.mask
}

// maxRel is the largest rel: the window of maxTime.
func (s *counterParams) maxRel() uint64 {
	return uint64(floorDiv(s.epochUnix+maxTime, s.window) - s.base)
}

// view is the state as seen from one instant: the fixed window it falls in
// (rel), that window's start as an instant, how far into it the instant is,
// and the units admitted in it and in the window before.
type view struct {
	rel       uint64
	start, e  int64
	cur, prev uint64
	stale     bool // the instant is before the word's window
}

// at returns the view of word w from instant x. The start of window rel,
// (base+rel)·window in Unix nanoseconds, lies in [epochUnix+minTime-window,
// epochUnix+maxTime], well inside int64.
func (s *counterParams) at(w uint64, x int64) (v view) {
	rel, cur, prev := s.unpack(w)
	start := (s.base+int64(rel))*s.window - s.epochUnix
	switch d := x - start; {
	case d < 0:
		// A stale instant, before the word's window: evaluated at that
		// window's start, where the previous window weighs most.
		v = view{rel: rel, start: start, cur: cur, prev: prev, stale: true}
	case d < s.window:
		v = view{rel: rel, start: start, e: d, cur: cur, prev: prev}
	case d < 2*s.window:
		// The next window: the word's current count is now the previous.
		v = view{rel: rel + 1, start: start + s.window, e: d - s.window, prev: cur}
	default:
		// Two or more windows on: nothing counts. The only division on
		// the hot path, once per window at most.
		k := floorDiv(s.epochUnix+x, s.window)
		ks := k*s.window - s.epochUnix
		v = view{rel: uint64(k - s.base), start: ks, e: x - ks}
	}
	return v
}

// mulLE reports whether a·b <= c·d, in 128 bits.
func mulLE(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || h1 == h2 && l1 <= l2
}

// mulDiv returns floor(a·b/c) and whether it had a remainder. The caller
// guarantees a·b < c·2^64 (so the quotient fits): here a·b < c·window.
func mulDiv(a, b, c uint64) (q uint64, inexact bool) {
	hi, lo := bits.Mul64(a, b)
	q, r := bits.Div64(hi, lo, c)
	return q, r != 0
}

// weighted returns the previous window's weight prev·(window-e)/window
// rounded up: the number of units it takes from what remains.
func (s *counterParams) weighted(v *view) uint64 {
	if v.prev == 0 || v.e == 0 {
		return v.prev
	}
	q, inexact := mulDiv(v.prev, uint64(s.window-v.e), uint64(s.window))
	if inexact {
		q++
	}
	return q
}

// decide sets *d to what Take(now, n) decides from word w, with x the
// instant of now, and returns the word to store if it is allowed. (It fills
// the caller's Decision rather than returning one: the 64-byte struct and
// the view are then not copied through each call.)
//
// The estimate at e is cur + prev·(W-e)/W, and n units are admitted iff
// cur + n + prev·(W-e)/W <= L, that is prev·(W-e) <= (L-cur-n)·W in
// integers: both sides are below 2^31·2^59, compared in 128 bits. Remaining
// is the largest m admitted next, L - cur - ceil(prev·(W-e)/W).
func (s *counterParams) decide(d *ratekit.Decision, w uint64, x int64, n int) uint64 {
	v := s.at(w, x)
	lim := uint64(s.limit)
	if n < 0 || n > s.limit {
		*d = core.Impossible(s.limit, s.remaining(&v, v.cur), time.Duration(s.window),
			s.reset(&v, v.cur, x), s.name)
		return 0
	}
	*d = ratekit.Decision{Limit: s.limit, Window: time.Duration(s.window), Policy: s.name}
	un := uint64(n)
	cur := v.cur
	var next uint64
	if v.cur+un <= lim && mulLE(v.prev, uint64(s.window-v.e), lim-v.cur-un, uint64(s.window)) {
		d.Allowed = true
		cur += un
		next = s.pack(v.rel, cur, v.prev)
	} else {
		d.RetryAfter = time.Duration(s.admitAt(&v, un) - x)
	}
	d.Remaining = s.remaining(&v, cur)
	d.ResetAfter = s.reset(&v, cur, x)
	return next
}

// remaining is how many units would be admitted at v with cur units in the
// current window.
func (s *counterParams) remaining(v *view, cur uint64) int {
	lim := uint64(s.limit)
	if cur >= lim {
		return 0
	}
	wp := s.weighted(v)
	if wp >= lim-cur {
		return 0
	}
	return int(lim - cur - wp)
}

// reset is how long from x until the estimate is zero if nothing more is
// taken: until the window after next if the current window holds units (they
// weigh on the next one), until the next window if only the previous does.
func (s *counterParams) reset(v *view, cur uint64, x int64) time.Duration {
	switch {
	case cur > 0:
		return time.Duration(v.start + 2*s.window - x)
	case v.prev > 0:
		return time.Duration(v.start + s.window - x)
	}
	return 0
}

// admitAt returns the first instant at which n units (0 < n <= limit) would
// be admitted if nothing more were taken, for a view at which they are not.
//
// In the current window, at e' >= e, they are admitted iff cur+n <= L and
// prev·(W-e') <= r·W with r = L-cur-n, that is e' >= W - floor(r·W/prev).
// Since they are denied at e, r < prev, so floor(r·W/prev) < W and the
// 128-bit division's quotient fits; e' = W - floor(r·W/prev) > e. If that
// is W, the current window never admits them. In the next window the counts
// are (0, cur): admitted at e' >= W - floor((L-n)·W/cur), or at its start if
// cur <= L-n. If even that is W (n = L with cur > 0), they are admitted at
// the start of the window after, where nothing counts.
//
// That last case is the Counter's worst case: L units late in one window,
// then L-1 admitted across the next as the previous window's weight falls,
// 2L-1 in an interval of length W. No interval of length W can hold more:
// it meets at most two fixed windows, each admits at most L, and when the
// earlier one holds any unit the later one admits at most L-1 before its
// end, since prev·(W-e') >= 1 for every e' < W.
func (s *counterParams) admitAt(v *view, n uint64) int64 {
	lim, w := uint64(s.limit), uint64(s.window)
	if v.cur+n <= lim && v.prev > 0 { // denied with cur+n <= L means prev > 0
		r := lim - v.cur - n
		m, _ := mulDiv(r, w, v.prev)
		if m > 0 {
			return v.start + int64(w-m)
		}
	}
	if v.cur <= lim-n {
		return v.start + s.window
	}
	m, _ := mulDiv(lim-n, w, v.cur)
	if m > 0 {
		return v.start + 2*s.window - int64(m)
	}
	return v.start + 2*s.window
}

// Take admits n units at now and counts them, or counts nothing and denies:
// admitted iff the estimated sliding count plus n is at most Limit (see
// Counter). A denial's RetryAfter is the exact wait until the estimate
// admits n, if nothing more is taken; n < 0 or n > Limit is denied with
// RetryAfter ratekit.Never; n == 0 is allowed and counts nothing.
func (c *Counter) Take(now time.Time, n int) (d ratekit.Decision) {
	x := c.since(now)
	st := c.s.Load()
	for i := 0; ; i++ {
		w := st.w.Load()
		if w == retired {
			backoff(i)
			st = c.s.Load()
			continue
		}
		next := st.p.decide(&d, w, x, n)
		if !d.Allowed || n == 0 || st.w.CompareAndSwap(w, next) {
			return d
		}
		st = c.s.Load()
	}
}

// Peek reports exactly what Take(now, n) would decide, Remaining included,
// and counts nothing. It never writes.
func (c *Counter) Peek(now time.Time, n int) (d ratekit.Decision) {
	x := c.since(now)
	st := c.s.Load()
	for i := 0; ; i++ {
		if w := st.w.Load(); w != retired {
			st.p.decide(&d, w, x, n)
			return d
		}
		backoff(i)
		st = c.s.Load()
	}
}

// since returns now as an instant of c. Every state of c has the epoch of
// its first, whose parameters s0.p are never written after init: reading
// them needs no atomic load, and does not wait for the state in force.
func (c *Counter) since(now time.Time) int64 { return since(now, c.s0.p.epoch) }

// load returns the state in force and its word, waiting out a replacement
// in progress.
func (c *Counter) load() (*counterState, uint64) {
	for i := 0; ; i++ {
		st := c.s.Load()
		if w := st.w.Load(); w != retired {
			return st, w
		}
		backoff(i)
	}
}

// Refund gives back n units counted by an allowed Take(at, n): they are
// taken off the count of the fixed window `at` falls in, if that is the
// current or the previous window, and never below zero. Units of an older
// window no longer weigh on any estimate, so nothing is given back for them.
// n <= 0 does nothing.
//
// A Take whose now was stale was counted in the Counter's current window; if
// its `at` falls in the previous window, Refund takes the units off the
// previous window's count instead, which weighs less: it gives back less
// than the Take took, never more.
func (c *Counter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	a := c.since(at)
	for {
		st, w := c.load()
		s := st.p
		rel, cur, prev := s.unpack(w)
		start := (s.base+int64(rel))*s.window - s.epochUnix
		un := uint64(n)
		switch d := a - start; {
		case d >= 0 && d < s.window && cur > 0:
			cur -= min(cur, un)
		case d < 0 && d >= -s.window && prev > 0:
			prev -= min(prev, un)
		default:
			return // nothing counted there
		}
		if st.w.CompareAndSwap(w, s.pack(rel, cur, prev)) {
			return
		}
	}
}

// Idle reports whether the Counter is as good as a fresh one from now on:
// now is not before its current fixed window, and the estimate at now is
// zero (no unit in now's window or the one before). Dropping an idle Counter
// and making a fresh one changes no decision at now or later.
func (c *Counter) Idle(now time.Time) bool {
	st, w := c.load()
	v := st.p.at(w, c.since(now))
	return !v.stale && v.cur == 0 && v.prev == 0
}

// Allow is shorthand for AllowN(1).
func (c *Counter) Allow() bool { return c.AllowN(1) }

// AllowN reports whether n units may pass now, reading Config.Clock, and
// takes them if so: Take(clock.Now(), n).Allowed. It is false for n < 0 and
// n > Limit.
func (c *Counter) AllowN(n int) bool {
	return c.Take(c.s.Load().p.clock.Now(), n).Allowed
}

// Wait blocks until n units are admitted, and takes them, reading and
// sleeping on Config.Clock: ratekit.Wait(ctx, clock, c, n). It returns
// ratekit.ErrExceedsLimit at once for n > Limit or n < 0, and an error
// matching context.DeadlineExceeded at once if the wait would outlast ctx's
// deadline; nothing is taken when it returns an error.
func (c *Counter) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	return ratekit.Wait(ctx, c.s.Load().p.clock, c, n)
}

// Config returns the configuration in effect.
func (c *Counter) Config() Config { return c.s.Load().p.config() }

// Reconfigure changes the configuration at once, keeping the counts, or
// returns an error wrapping ratekit.ErrInvalidConfig and changes nothing.
// The Counter gets parameters of its own: a Counter made by a
// CounterTemplate no longer shares the template's, and the template and its
// other Counters are unchanged.
//
// Units taken stay counted whatever limits come and go: counts above a
// lowered Limit are kept, and the Counter admits nothing until they weigh
// less than it; raising the Limit again gives none back. If the Window
// changes, the old windows do not map onto the new ones: the units of the
// old current and previous windows are all counted in the new window that
// holds the last instant of the old current one, where they count at least
// as long as they did (capped at MaxCounterLimit of the new Window, which
// keeps that window full under any Limit it allows). Concurrent calls wait (yielding the
// thread) for the few instructions the swap takes, then carry on under the
// new configuration.
func (c *Counter) Reconfigure(cfg Config) error {
	if err := cfg.validateCounter(); err != nil {
		return err
	}
	p := c.s.Load().p
	next := newCounterParams(cfg, p.epoch, p.padded) // the epoch and layout of every state of c
	for i := 0; ; i++ {
		old := c.s.Load()
		w := old.w.Load()
		if w == retired {
			backoff(i) // another replacement is under way: wait for it
			continue
		}
		if !old.w.CompareAndSwap(w, retired) {
			continue
		}
		c.s.Store(newCounterState(next, carry(w, old.p, next)))
		return nil
	}
}

// carry converts the word w of old into next's layout (see Reconfigure).
func carry(w uint64, old, next *counterParams) uint64 {
	rel, cur, prev := old.unpack(w)
	switch {
	case next.window == old.window:
		// Same windows, same base, same layout: the word carries over.
		return w
	case cur+prev > 0:
		end := (old.base+int64(rel)+1)*old.window - 1 // Unix nanoseconds
		k := min(max(floorDiv(end, next.window)-next.base, 0), int64(next.maxRel()))
		return next.pack(uint64(k), min(cur+prev, next.mask), 0)
	}
	return 0
}

// counterFormat is the version of the Counter's MarshalBinary format.
const counterFormat = 1

// MarshalBinary returns the Counter's state in wall-clock terms. The format,
// after the 4-byte ratekit header, is: uvarint Window in nanoseconds, varint
// start of the current fixed window in Unix nanoseconds, uvarint units
// counted in it, uvarint units counted in the window before.
func (c *Counter) MarshalBinary() ([]byte, error) {
	st, w := c.load()
	s := st.p
	rel, cur, prev := s.unpack(w)
	b := core.AppendHeader(make([]byte, 0, 32), core.SlidingCounter, counterFormat)
	b = binary.AppendUvarint(b, uint64(s.window))
	b = binary.AppendVarint(b, (s.base+int64(rel))*s.window)
	b = binary.AppendUvarint(b, cur)
	return binary.AppendUvarint(b, prev), nil
}

// UnmarshalBinary replaces the Counter's state with one from MarshalBinary,
// so that the time between the two counts as elapsed. It returns an error
// wrapping ratekit.ErrInvalidState, and leaves the Counter unchanged, if b is
// truncated, corrupt, of another algorithm or version, saved with another
// Window, holds a count above MaxCounterLimit(Window), or a window more than 73 years
// after this Counter (or its CounterTemplate) was made. A window more than
// 73 years before it restores as a fresh state: nothing in it can count any
// more. A Counter made by a CounterTemplate keeps sharing its parameters.
func (c *Counter) UnmarshalBinary(b []byte) error {
	payload, err := core.ParseHeader(b, core.SlidingCounter, counterFormat)
	if err != nil {
		return err
	}
	r := core.NewReader(core.SlidingCounter, payload)
	window, start, cur, prev := r.Uint64(), r.Int64(), r.Uint64(), r.Uint64()
	if err := r.Err(); err != nil {
		return err
	}
	for {
		st, w := c.load()
		next, err := st.p.restore(window, start, cur, prev)
		if err != nil {
			return err
		}
		// The same state, the same layout: a CAS. One that fails lost to
		// a Take, a Refund or a replacement: start again.
		if st.w.CompareAndSwap(w, next) {
			return nil
		}
	}
}

func badCounterState(format string, args ...any) error {
	return core.InvalidState(core.SlidingCounter.String(), format, args...)
}

// restore returns the word of a state saved by MarshalBinary, if s can hold
// it (see UnmarshalBinary).
func (s *counterParams) restore(window uint64, start int64, cur, prev uint64) (uint64, error) {
	var rel int64
	switch {
	case window != uint64(s.window):
		return 0, badCounterState("state of a %v Window, this Counter's is %v", time.Duration(window), time.Duration(s.window))
	case start%s.window != 0:
		return 0, badCounterState("window start %d is not a multiple of the Window", start)
	case cur > s.mask || prev > s.mask:
		// Counts above the Limit are a state saved after Reconfigure
		// lowered it: restored whole. Above the layout's bound, corrupt.
		return 0, badCounterState("counts %d and %d exceed %d, the most a Counter of a %v Window counts", cur, prev, s.mask, time.Duration(s.window))
	}
	if rel = start/s.window - s.base; rel > int64(s.maxRel()) {
		return 0, badCounterState("window start %d is too far in the future", start)
	}
	if rel < 0 {
		return 0, nil
	}
	return s.pack(uint64(rel), cur, prev), nil
}
