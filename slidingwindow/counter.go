package slidingwindow

import (
	"context"
	"encoding/binary"
	"math"
	"math/bits"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
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
// TestCounterError measures the error on several traffic shapes (go test
// -run CounterError -v prints the table; bench/RESULTS.md, "Sliding counter
// error", keeps the figures): small under steady traffic below the limit,
// larger for traffic always at or over it, and for bursts. Where that
// matters, use a Log.
//
// # Concurrency
//
// The state is one word on internal/cell's seam, updated by a CAS loop; a
// denial writes nothing but OnLimitReached's mark. A stale now, before the fixed window the Counter is in,
// is judged by its own fixed window: the units of the Counter's two windows
// count in full, and the window before them, which the Counter no longer
// knows, counts as full (see decideStale). So it never admits more than a
// later time would, nor more because other Takes moved the Counter's window
// ahead.
//
// # Memory
//
// Build a Counter with NewCounter; the zero Counter has Limit 0 until
// Reconfigure (see The zero value at ratekit.Limiter). Counters of equal Configs share one immutable
// parameter set, so a Counter is 32 bytes, one allocation, its word inline.
type Counter struct {
	c cell.Ref[counterParams] // W: the packed word (see counterParams.pack); Aux unused; no block: zeroCounter
}

// zeroCounter is the state of the zero Counter, which has no block of its
// own until Reconfigure adopts one: Limit 0, so that no Take of n > 0 fits
// and nothing is ever written to it, which lets every zero Counter share
// it; fresh, with the real clock. Its arithmetic uses a 1ns window, which
// no Decision reports: Take and Peek of a zero Counter answer from
// zeroDecision, and Config is the zero Config.
var zeroCounter = func() *cell.Block[counterParams] {
	p := newCounterParams(Config{Window: 1}, epochAt(time.Unix(0, 0).UTC()))
	b := &cell.Block[counterParams]{P: p}
	b.W.Store(int64(p.pack(0, 0, 0)))
	return b
}()

// zeroDecision is the Decision of the zero Counter (and Log): Limit 0, so
// n == 0 is allowed and every other n can never be.
func zeroDecision(n int) ratekit.Decision {
	if n == 0 {
		return ratekit.Decision{Allowed: true}
	}
	return ratekit.Decision{RetryAfter: ratekit.Never}
}

// load is cell's Load, with the zero Counter's zeroCounter.
func (c *Counter) load() (*cell.Block[counterParams], int64) {
	if b := c.c.Cur(); b == nil {
		return zeroCounter, zeroCounter.W.Load()
	}
	return c.c.Load()
}

var _ ratekit.Limiter = (*Counter)(nil)

// counterParams is one immutable parameter set of Counters: shared by every
// Counter of an equal Config (see interned), and replaced whole, through
// internal/cell, when a Counter is reconfigured, because the word's layout
// depends on the Window: a word of one layout must never be CASed by a
// caller that decoded it with another (the seam guarantees it).
//
// The word packs, from the top, before the XOR with flip (see pack):
//
//	rel  (64-shift bits) index of the current fixed window, relative to base
//	mark (1 bit)         OnLimitReached was called for this word: only if set
//	cur  (cb bits)       units admitted in that window
//	prev (cb bits)       units admitted in the window before it
//
// where cb = countBits(window, hook), half the bits rel (and the mark)
// leave, whatever the Limit: a count is at most the Limit, or more when
// Reconfigure lowered the Limit below the units already counted, which stay
// counted (the window is then over-full; raising the Limit again gives
// nothing back). Since the layout depends on the Window (and the hook)
// alone, a Reconfigure that keeps them keeps every count. The mark is set
// by the first denial of a run (see Config.OnLimitReached), by CAS, and
// every word a write packs has it clear, which is what ends the run. rel is the full index, not a tag, so a word never
// aliases another window however long the Counter sat unused or however
// stale a time is: that is what bounds Limit (MaxCounterLimit). The word of
// window base with nothing admitted is a fresh Counter.
type counterParams struct {
	epoch     time.Time  // instants are nanoseconds from here
	epochUnix int64      // epoch in Unix nanoseconds: windows are aligned to Unix time
	wall      cell.Epoch // epoch for Joint's count of a time without one (see cell.Wall)
	limit     int
	window    int64
	name      string
	clock     clock.Clock
	hook      func(ratekit.Decision) // Config.OnLimitReached

	base   int64  // Unix index (Unix nanoseconds / window, floored) of rel 0: the window of minTime
	start0 int64  // the instant at which window rel 0 starts: base·window - epochUnix <= minTime
	mask   uint64 // 1<<cb - 1
	flip   uint64 // the bits of rel's field below its top one (see pack)
	fbit   uint64 // 1<<(2·cb), the OnLimitReached mark, if hook is set; else 0
	shift  uint8  // 2·cb, plus 1 if hook is set: rel's position
	cb     uint8  // bits per count
	divW   recip  // divides by window without a hardware division

	// forgot is what a window the word no longer knows (the one before its
	// previous window) is judged to hold at a stale instant (decideStale):
	// the Limit, which no window holds more of, or, in a private copy that
	// Reconfigure makes when it lowers the Limit, the most an earlier
	// Config let a window hold (see forgotFrom). In [limit, mask].
	forgot uint64
}

// interned holds the parameters NewCounter shares between Counters of equal
// Configs.
var interned cell.Interner[cell.Key, counterParams]

// keyOf is cfg's key in interned and internedLogs.
func keyOf(c Config) cell.Key {
	return cell.Key{Limit: c.Limit, Window: c.Window, Name: c.Name, Clock: c.Clock, Hook: cell.HookOf(c.OnLimitReached)}
}

// shared returns the interned parameters of cfg, a Config that may be
// invalid, making them if there are none, or if cfg.Clock now reads a time
// more than half their range from their epoch (see near). Their epoch is
// cfg.Clock's time at their making: the instants of every Counter of the
// Config are measured from there, and stay exact for 73 years either side
// of it, so a Counter on a mock clock set to 2200 is as exact as one on the
// real clock.
func shared(cfg Config) (*counterParams, error) {
	return sharedAt(cfg, core.Clock(cfg.Clock).Now())
}

// sharedAt is shared with cfg.Clock read already, as now.
func sharedAt(cfg Config, now time.Time) (*counterParams, error) {
	return interned.Get(keyOf(cfg), func(p *counterParams) bool { return p.near(now) }, func() (*counterParams, error) {
		if err := cfg.validateCounter(); err != nil {
			return nil, err
		}
		return newCounterParams(cfg, epochAt(now)), nil
	})
}

// near reports whether now is within half p's range of its epoch, so that
// a Counter made now with p still has 36 years of exact instants either
// way.
func (p *counterParams) near(now time.Time) bool {
	x := p.since(now)
	return x > minTime/2 && x < maxTime/2
}

// NewCounter returns an approximate sliding counter, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate; a
// Counter's Limit must also be at most MaxCounterLimit(cfg.Window)).
// Counters of equal Configs (Clock compared as an interface value,
// OnLimitReached as the same function value) share their parameters, so
// NewCounter is the way to make a Counter per key.
func NewCounter(cfg Config) (*Counter, error) {
	p, err := shared(cfg)
	if err != nil {
		return nil, err
	}
	c := &Counter{}
	c.c.Init(p, int64(p.pack(0, 0, 0)), 0)
	return c, nil
}

// newCounterParams returns the parameters of cfg, a valid Counter Config,
// with the given epoch.
func newCounterParams(cfg Config, epoch time.Time) *counterParams {
	hook := cfg.OnLimitReached != nil
	cb := uint8(countBits(int64(cfg.Window), hook)) // see counterParams; MaxCounterLimit is 1<<cb - 1
	shift := 2 * cb
	var fbit uint64
	if hook {
		fbit = 1 << shift
		shift++
	}
	epochUnix := unixOf(epoch)
	base := floorDiv(epochUnix+minTime, int64(cfg.Window))
	return &counterParams{
		epoch:     epoch,
		epochUnix: epochUnix,
		wall:      cell.EpochOf(epoch),
		limit:     cfg.Limit,
		window:    int64(cfg.Window),
		name:      cfg.Name,
		clock:     core.Clock(cfg.Clock),
		hook:      cfg.OnLimitReached,
		base:      base,
		start0:    base*int64(cfg.Window) - epochUnix,
		fbit:      fbit,
		shift:     shift,
		cb:        cb,
		mask:      1<<cb - 1,
		flip:      (1<<63 - 1) >> shift << shift,
		divW:      newRecip(uint64(cfg.Window)),
		forgot:    uint64(cfg.Limit),
	}
}

// CounterTemplate makes fresh Counters of one Config validated once, so
// that its New cannot fail. Its Counters are exactly NewCounter's: they
// share the parameters of every Counter of the Config, and cost no less
// and no more.
//
// Deprecated: call NewCounter in the ratekit.Keyed factory: Counters of
// equal Configs share their parameters, so NewCounter per key costs what a
// CounterTemplate's New did.
type CounterTemplate struct {
	cfg Config
}

// NewCounterTemplate returns a CounterTemplate of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid for a Counter (as NewCounter
// would).
//
// Deprecated: call NewCounter (see CounterTemplate).
func NewCounterTemplate(cfg Config) (*CounterTemplate, error) {
	if _, err := shared(cfg); err != nil {
		return nil, err
	}
	return &CounterTemplate{cfg: cfg}, nil
}

// New returns NewCounter of the template's Config. It cannot fail.
//
// Deprecated: call NewCounter (see CounterTemplate).
func (t *CounterTemplate) New() *Counter {
	return core.Must(NewCounter(t.cfg))
}

// Config returns the configuration of the template's Counters, as their
// Config method does (Clock is the real clock if the Config had none).
//
// Deprecated: call NewCounter (see CounterTemplate), and the Counter's
// Config.
func (t *CounterTemplate) Config() Config { return t.cfg.withClock() }

// config returns the Config these parameters were made from, with the
// Clock that Allow reads.
func (p *counterParams) config() Config {
	return Config{Limit: p.limit, Window: time.Duration(p.window), Name: p.name, Clock: p.clock, OnLimitReached: p.hook}
}

// floorDiv is a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// pack returns the word of window rel with the counts cur and prev.
//
// The word must never be cell.Sealed, the bit pattern 1<<63, which marks a
// retired block; a plain packing can be: when 64-indexBits is even (a day's
// Window), rel's field is exactly indexBits wide and its top bit, bit 63,
// is set for the later windows, so window 1<<(indexBits-1) with nothing
// counted would be 1<<63. So the word is the packing XOR flip, which
// inverts rel's field below its top bit: the word is 1<<63 only for the
// field's all-ones value, the index 2^(64-2·cb)-1, which no window has
// (indexBits keeps the largest index of its width free, and when rel's
// field is wider than indexBits its top bit is never set). The XOR costs
// one instruction each way and keeps every bound (MaxCounterLimit) as it
// was; keeping rel's top bit clear instead would halve a day's Limit.
func (p *counterParams) pack(rel, cur, prev uint64) uint64 {
	return (rel<<p.shift | cur<<p.cb | prev) ^ p.flip
}

func (p *counterParams) unpack(w uint64) (rel, cur, prev uint64) {
	w ^= p.flip
	return w >> p.shift, w >> p.cb & p.mask, w & p.mask
}

// maxRel is the largest rel: the window of maxTime.
func (p *counterParams) maxRel() uint64 {
	return uint64(floorDiv(p.epochUnix+maxTime, p.window) - p.base)
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
// start0 + rel·window, lies in [minTime-window, maxTime], well inside int64.
func (p *counterParams) at(w uint64, x int64) (v view) {
	rel, cur, prev := p.unpack(w)
	start := p.start0 + int64(rel)*p.window
	switch d := x - start; {
	case d < 0:
		// A stale instant, before the word's window: the word as it is,
		// for decideStale to judge x by x's own window.
		v = view{rel: rel, start: start, cur: cur, prev: prev, stale: true}
	case d < p.window:
		v = view{rel: rel, start: start, e: d, cur: cur, prev: prev}
	case d < 2*p.window:
		// The next window: the word's current count is now the previous.
		v = view{rel: rel + 1, start: start + p.window, e: d - p.window, prev: cur}
	default:
		// Two or more windows on: nothing counts. x's window is
		// floor((x - start0)/window), x - start0 being in [0, 2^62.6).
		k := p.divW.div(uint64(x - p.start0))
		ks := p.start0 + int64(k)*p.window
		v = view{rel: k, start: ks, e: x - ks}
	}
	return v
}

// mulLE reports whether a·b <= c·d, in 128 bits.
func mulLE(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || h1 == h2 && l1 <= l2
}

// mulDiv returns floor(a·b/c), for a denial's RetryAfter. The caller
// guarantees a·b < c·2^64 (so the quotient fits): here a·b < c·window.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// weighted returns the previous window's weight at offset e,
// prev·(window-e)/window, rounded up (towards fewer admissions): the units
// it takes from what remains. prev < 2^31 and window-e <= window < 2^59, so
// the product and the quotient (at most prev) fit divmod.
func (p *counterParams) weighted(prev uint64, e int64) uint64 {
	if prev == 0 {
		return 0
	}
	hi, lo := bits.Mul64(prev, uint64(p.window-e))
	q, r := p.divW.divmod(hi, lo)
	if r != 0 {
		q++
	}
	return q
}

// verdict is cell.Verdict, which fill makes the caller's Decision.
type verdict = cell.Verdict

// fill is core.Fill with the parameters' Limit, Window and Name.
func (p *counterParams) fill(d *ratekit.Decision, v verdict) {
	core.Fill(d, p.limit, time.Duration(p.window), p.name, v)
}

// decide is what Take(now, n) decides from word w, with x the instant of
// now: the word to store and whether to store it (an admitted Take of
// n > 0), and the verdict. It is pure.
//
// The estimate at e is cur + prev·(W-e)/W, and n units are admitted iff
// cur + n + prev·(W-e)/W <= L: cur, n and L being integers, iff
// cur + n + ceil(prev·(W-e)/W) <= L, the weight rounded up (weighted).
// Remaining is the largest m admitted next, L - cur - that weight. Every
// sum is below 2^33: counts are below 2^31, the weight at most prev.
func (p *counterParams) decide(w uint64, x int64, n int) (next uint64, store bool, v verdict) {
	vw := p.at(w, x)
	if vw.stale {
		return p.decideStale(&vw, x, n)
	}
	wp := p.weighted(vw.prev, vw.e)
	if uint(n) > uint(p.limit) { // n < 0 or n > Limit
		return 0, false, verdict{Remaining: p.left(vw.cur, wp), Reset: p.reset(&vw, vw.cur, x), Retry: ratekit.Never}
	}
	un, lim := uint64(n), uint64(p.limit)
	if cur := vw.cur + un; cur+wp <= lim {
		return p.pack(vw.rel, cur, vw.prev), n > 0,
			verdict{OK: true, Remaining: int(lim - cur - wp), Reset: p.reset(&vw, cur, x)}
	}
	if n == 0 {
		// A window over-full since Reconfigure lowered the Limit: a Take
		// of nothing is allowed there too, as everywhere, and nothing
		// remains.
		return 0, false, verdict{OK: true, Reset: p.reset(&vw, vw.cur, x)}
	}
	// Denied because the limit is reached. The first such denial of a run
	// marks the word, by CAS; no other denial writes (see
	// Config.OnLimitReached).
	return w | p.fbit, w&p.fbit == 0 && p.fbit != 0,
		verdict{Remaining: p.left(vw.cur, wp), Reset: p.reset(&vw, vw.cur, x),
			Retry: time.Duration(p.admitAt(&vw, un) - x)}
}

// left is how many units would be admitted with cur units in the current
// window and the previous window's weight wp: L - cur - wp, or 0.
func (p *counterParams) left(cur, wp uint64) int {
	if lim := uint64(p.limit); cur+wp < lim {
		return int(lim - cur - wp)
	}
	return 0
}

// decideStale is decide for an instant x before the word's window (v, which
// at returned for x: the word's window, cur and prev as they are). A stale
// time is judged by its own fixed window, not by the word's, so that how
// far other Takes have moved the word ahead (a Take that was refunded, say)
// cannot make it admit more:
//
//   - x in the window before the word's (the word's prev window): the units
//     of both the word's windows count in full (those of the word's window
//     were admitted after x, and would count at x were they stamped at
//     it), and the window before that, which the word no longer knows,
//     counts as full, Limit units (forgot: more, after Reconfigure lowered
//     the Limit), weighted as the previous window is:
//     cur + prev + Limit·(W-e)/W, e being x's offset into its window.
//   - x earlier still, in windows the word knows nothing of: judged as the
//     start of the word's prev window, where that estimate is cur + prev +
//     Limit, so every n > 0 is denied.
//
// That is never less than what the word's window start counts (cur + prev,
// where today's stale times were judged), and tends to it as x nears that
// start. n == 0 is allowed and takes nothing, as everywhere. An admitted
// stale Take is counted in the word's window, as before: its units count
// no sooner than a fresh Take's.
func (p *counterParams) decideStale(v *view, x int64, n int) (next uint64, store bool, vd verdict) {
	lim := uint64(p.limit)
	wv := view{rel: v.rel, start: v.start, cur: v.cur, prev: v.prev} // the word's window, at its start
	sv := view{rel: v.rel - 1, start: v.start - p.window, cur: v.cur + v.prev, prev: p.forgot, stale: true}
	if e := x - sv.start; e > 0 {
		sv.e = e // in (0, window): x is before v.start
	}
	wp := p.weighted(sv.prev, sv.e)
	if uint(n) > uint(p.limit) {
		return 0, false, verdict{Remaining: p.left(sv.cur, wp), Reset: p.staleReset(&wv, v.cur, x), Retry: ratekit.Never}
	}
	un := uint64(n)
	switch {
	case n == 0:
		vd.OK = true
	case sv.cur+un+wp <= lim:
		vd.OK, next, store = true, p.pack(v.rel, v.cur+un, v.prev), true
	default:
		vd.Retry = time.Duration(p.staleAdmitAt(&sv, &wv, un) - x)
	}
	cur := v.cur
	if vd.OK {
		cur += un
	}
	vd.Remaining = p.left(sv.cur+cur-v.cur, wp)
	vd.Reset = p.staleReset(&wv, cur, x)
	return next, store, vd
}

// staleAdmitAt is admitAt for a stale view sv (see decideStale) whose word's
// window, seen from its start, is wv: the first instant at which n units
// pass. In sv's window they pass at e' >= W - floor(r·W/F), r =
// Limit-cur-n and F = sv.prev (forgot), if that is before its end;
// otherwise from the word's window on, as admitAt finds for wv (at its
// start if they pass there).
func (p *counterParams) staleAdmitAt(sv, wv *view, n uint64) int64 {
	lim, w := uint64(p.limit), uint64(p.window)
	if sv.cur+n <= lim {
		if m := mulDiv(lim-sv.cur-n, w, sv.prev); m > 0 {
			return sv.start + int64(w-m)
		}
	}
	if wv.cur+n <= lim && mulLE(wv.prev, w, lim-wv.cur-n, w) {
		return wv.start
	}
	return p.admitAt(wv, n)
}

// staleReset is reset for a stale instant x: from x until the estimate is
// zero, which is no sooner than the start of the word's window (wv),
// since until then the unknown window before counts.
func (p *counterParams) staleReset(wv *view, cur uint64, x int64) time.Duration {
	return max(p.reset(wv, cur, x), time.Duration(wv.start-x))
}

// reset is how long from x until the estimate is zero if nothing more is
// taken: until the window after next if the current window holds units (they
// weigh on the next one), until the next window if only the previous does.
func (p *counterParams) reset(v *view, cur uint64, x int64) time.Duration {
	switch {
	case cur > 0:
		return time.Duration(v.start + 2*p.window - x)
	case v.prev > 0:
		return time.Duration(v.start + p.window - x)
	}
	return 0
}

// admitAt returns the first instant at which n units (0 <= n <= limit)
// would be admitted if nothing more were taken, for a view at which they
// are not.
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
func (p *counterParams) admitAt(v *view, n uint64) int64 {
	lim, w := uint64(p.limit), uint64(p.window)
	if v.cur+n <= lim && v.prev > 0 { // denied with cur+n <= L means prev > 0
		if m := mulDiv(lim-v.cur-n, w, v.prev); m > 0 {
			return v.start + int64(w-m)
		}
	}
	if v.cur <= lim-n {
		return v.start + p.window
	}
	if m := mulDiv(lim-n, w, v.cur); m > 0 {
		return v.start + 2*p.window - int64(m)
	}
	return v.start + 2*p.window
}

// since returns now as a clamped instant of these parameters.
func (p *counterParams) since(now time.Time) int64 { return since(now, p.epoch) }

// Take admits n units iff the estimated sliding count plus n is at most
// Limit (see Counter). A now before the Counter's fixed window is judged by
// its own window, the Counter's units in full and older windows it no
// longer knows as full, and admitted units count in the Counter's window
// (see Concurrency in the Counter documentation). A denial's RetryAfter is
// the exact wait until the estimate admits n, if nothing more is taken.
func (c *Counter) Take(now time.Time, n int) (d ratekit.Decision) {
	for {
		// The hot path of internal/cell, spelled out, with the zero
		// Counter's nil block.
		b := c.c.Cur()
		if b == nil {
			return zeroDecision(n)
		}
		w := b.W.Load()
		if w == cell.Sealed {
			b, w = c.c.Wait()
		}
		p := b.P
		x := p.since(now)
		// The common cases, spelled out: 1 <= n <= Limit at an instant in
		// the word's own window (decide reaches the same results through
		// at and weighted, with more branches and copies).
		rel, cur, prev := p.unpack(uint64(w))
		start := p.start0 + int64(rel)*p.window
		if e := x - start; uint64(e) < uint64(p.window) && uint(n)-1 < uint(p.limit) {
			// The previous window's weight, weighted(prev, e), computed as
			// prev - floor(prev·e/W) (the same integer, since prev is one)
			// with a quotient-only division that inlines. e < W, so e
			// shifted by the divisor's shift still fits 64 bits, and the
			// product is the dividend divW divides, already normalised.
			hi, lo := bits.Mul64(prev, uint64(e)<<p.divW.s)
			lim, wp, un := uint64(p.limit), prev-p.divW.quo(hi, lo), uint64(n)
			if cur+un+wp <= lim {
				if !b.W.CompareAndSwap(w, int64(p.pack(rel, cur+un, prev))) {
					continue
				}
				// cur+un > 0: the estimate is zero two windows on.
				p.fill(&d, verdict{OK: true, Remaining: int(lim - cur - un - wp), Reset: time.Duration(start + 2*p.window - x)})
				return d
			}
			// Denied because the limit is reached: decide's verdict, from
			// the view it would make.
			vw := view{rel: rel, start: start, e: e, cur: cur, prev: prev}
			v := verdict{Remaining: p.left(cur, wp), Reset: p.reset(&vw, cur, x), Retry: time.Duration(p.admitAt(&vw, un) - x)}
			if mark := uint64(w) | p.fbit; mark != uint64(w) {
				// The first denial of a run, with OnLimitReached set.
				if !b.W.CompareAndSwap(w, int64(mark)) {
					continue
				}
				p.fill(&d, v)
				p.hook(d)
				return d
			}
			p.fill(&d, v)
			return d
		}
		next, store, v := p.decide(uint64(w), x, n)
		if store && !b.W.CompareAndSwap(w, int64(next)) {
			continue
		}
		p.fill(&d, v)
		if store && !v.OK {
			// This Take marked the word: the first denial of a run.
			p.hook(d)
		}
		return d
	}
}

// Peek is ratekit.Limiter's Peek. It never writes.
func (c *Counter) Peek(now time.Time, n int) (d ratekit.Decision) {
	if c.c.Cur() == nil {
		return zeroDecision(n)
	}
	b, w := c.c.Load()
	p := b.P
	_, _, v := p.decide(uint64(w), p.since(now), n)
	p.fill(&d, v)
	return d
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
//
// What it gives back counts at every time in and after the Counter's
// previous window. At a time before the Counter's window, judged with both
// windows' units in full and the forgotten window before them as full (see
// Take), a refund gives back the units themselves, never the forgotten
// window's: when the refunded Take moved the Counter's window ahead, the
// counts it dropped stay counted as full at those stale times, so no time
// admits more than it would had the refunded Take never happened.
func (c *Counter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	for {
		b, w := c.load()
		a := b.P.since(at)
		if m := b.Aux.Load(); m != 0 && a < b.P.start0+m*b.P.window {
			return // restored since: see UnmarshalBinary
		}
		next, ok := b.P.refund(uint64(w), a, uint64(n))
		if !ok || b.W.CompareAndSwap(w, int64(next)) {
			return
		}
	}
}

// refund is Refund's pure step: the word that giving back n units taken at
// instant a leaves, and whether there is anything to give back.
func (p *counterParams) refund(w uint64, a int64, n uint64) (uint64, bool) {
	rel, cur, prev := p.unpack(w)
	switch d := a - (p.start0 + int64(rel)*p.window); {
	case d >= 0 && d < p.window && cur > 0:
		cur -= min(cur, n)
	case d < 0 && d >= -p.window && prev > 0:
		prev -= min(prev, n)
	default:
		return w, false // nothing counted there
	}
	return p.pack(rel, cur, prev), true
}

// Idle reports whether the Counter is as good as a fresh one from now on:
// now is not before its current fixed window, and the estimate at now is
// zero (no unit in now's window or the one before), and now's fixed window
// is after the restore mark's (a Counter restored by UnmarshalBinary over
// counted Takes gives nothing back for a refund stamped in the marked
// window or earlier, which a fresh Counter in its place would give back:
// see Refund). Dropping an idle Counter and making a fresh one changes no
// decision at now or later.
func (c *Counter) Idle(now time.Time) bool {
	b, w := c.load()
	x := b.P.since(now)
	if m := b.Aux.Load(); m != 0 && x < b.P.start0+m*b.P.window {
		return false // a refund stamped at now would find the mark
	}
	return b.P.idle(uint64(w), x)
}

// idle is Idle's pure step.
func (p *counterParams) idle(w uint64, x int64) bool {
	v := p.at(w, x)
	return !v.stale && v.cur == 0 && v.prev == 0
}

// Allow is shorthand for AllowN(1).
func (c *Counter) Allow() bool { return c.AllowN(1) }

// AllowN is shorthand for Take(clock.Now(), n).Allowed, with Config.Clock.
func (c *Counter) AllowN(n int) bool {
	b, _ := c.load()
	return c.Take(b.P.clock.Now(), n).Allowed
}

// Wait is ratekit.Wait(ctx, clock, c, n) with Config.Clock.
func (c *Counter) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	b, _ := c.load()
	return ratekit.Wait(ctx, b.P.clock, c, n)
}

// Config returns the configuration in effect.
func (c *Counter) Config() Config {
	b := c.c.Cur()
	if b == nil {
		return Config{}
	}
	return b.P.config()
}

// Reconfigure changes the configuration at once, keeping the counts, or
// returns an error wrapping ratekit.ErrInvalidConfig and changes nothing.
// The Counter takes the parameters of its new Config, shared with every
// Counter of that Config; those it shared before, and the Counters sharing
// them, are unchanged.
//
// Units taken stay counted whatever limits come and go: counts above a
// lowered Limit are kept, and the Counter admits nothing until they weigh
// less than it; raising the Limit again gives none back. If the Window
// changes, the old windows do not map onto the new ones: the units of the
// old current and previous windows are all counted in the new window that
// holds the last instant of the old current one, where they count at least
// as long as they did (capped at MaxCounterLimit of the new Window, which
// keeps that window full under any Limit it allows). At a stale time, a
// window the Counter no longer knows counts as the most any earlier Limit
// let it hold, not the lowered one, nor less than the units a change of
// Window carried into one window (a Counter reconfigured so keeps
// parameters of its own). The last window a Counter's parameters hold, 73
// years past their epoch, never ends (every later instant falls in it, as
// a clock glitch of a century does): if the instant of the change
// (cfg.Clock's reading) is past its nominal end, its units count for the
// new Window from that instant, in the new window that holds its last
// nanosecond. Concurrent calls wait
// (yielding the thread) for the few instructions the swap takes, then
// carry on under the new configuration.
func (c *Counter) Reconfigure(cfg Config) error {
	now := core.Clock(cfg.Clock).Now()
	np, err := sharedAt(cfg, now)
	if err != nil {
		return err
	}
	for {
		if c.c.Cur() == nil {
			// The zero Counter, configured for the first time: fresh, as
			// NewCounter makes it. zeroCounter is never written, so there
			// is nothing to seal; the CAS in Adopt orders racing first
			// configurations.
			if c.c.Adopt(np, int64(np.pack(0, 0, 0)), 0) {
				return nil
			}
			continue
		}
		b, _ := c.c.Load()
		mp := np
		if f := np.forgotFrom(b.P); f > np.forgot {
			cp := *np
			cp.forgot = f
			mp = &cp
		}
		nowUnix := mp.epochUnix + mp.since(now) // within ±2^62.6: no overflow
		if c.c.Replace(b, func(w, aux int64) (*counterParams, int64, int64) {
			next := mp.carry(uint64(w), b.P, nowUnix)
			if _, cur, _ := mp.unpack(next); cur > mp.forgot {
				// The carry put more in one window than mp judges a
				// forgotten window to hold (see forgotFrom).
				cp := *mp
				cp.forgot = cur
				return &cp, int64(next), cp.carryMark(aux, b.P, nowUnix)
			}
			return mp, int64(next), mp.carryMark(aux, b.P, nowUnix)
		}) {
			return nil
		}
	}
}

// forgotFrom is p's forgot for a Counter reconfigured from old: the most a
// window before the word's previous one may hold, in p's windows. Each
// window of old held at most old.forgot units (at most its Limit when it
// was the word's window, or an earlier Config's), and a window of p meets
// at most ceil(p.window/old.window) of them; capped at p's field. When that
// is above p's Limit (the Limit was lowered), judging such a window at a
// stale time as p's Limit would count less than it may have held: a Take
// that moved the word ahead and was then refunded would leave stale times
// admitting more than had it never happened (conformance's
// RefundAcrossReconfigure: 21 of a day's 500 admitted where the twin
// admits 0).
//
// A carry to another Window also puts both of old's windows' units, up to
// twice what one held, in one window of p (see carry), which a shorter
// Window's ceil is 1 for: Reconfigure and UnmarshalBinary raise forgot to
// the count carried as well, as redisstore's sccarry does, or a Take that
// moved the word past that window, refunded, left the window after it
// counting it as less (Limit 5, 3s -> 1s: 1, 2 and 3 admitted where the
// twin that never took it admits 0, 0 and 2; conformance's
// RefundThenShorterWindow).
func (p *counterParams) forgotFrom(old *counterParams) uint64 {
	return max(forgotOver(old.forgot, uint64(old.window), p), p.forgot)
}

// carry converts the word w of old into a word of p at the instant now
// (Unix nanoseconds; see Reconfigure). Windows are aligned to Unix time, so
// a window is the same whatever the epoch its index counts from; but old's
// last window never ends (see lastEnd).
func (p *counterParams) carry(w uint64, old *counterParams, now int64) uint64 {
	rel, cur, prev := old.unpack(w)
	k := old.base + int64(rel) // the Unix index of old's current window
	end, last := old.lastEnd(rel, now, p.window)
	if p.window == old.window && !last {
		// Same windows: the counts carry over, to the same window counted
		// from p's base (capped at p's field, still above any Limit p
		// allows, if p keeps a bit for the hook that old did not).
		if r := k - p.base; r >= 0 && uint64(r) <= p.maxRel() {
			return p.pack(uint64(r), p.capped(cur, old), p.capped(prev, old))
		}
	}
	if w == old.pack(0, 0, 0) {
		return p.pack(0, 0, 0) // fresh
	}
	// A word with nothing counted but moved ahead (its Takes refunded)
	// keeps its place: stale times before it judge the windows it forgot
	// as full, as they did before the change (see decideStale).
	sum := min(cur+prev, p.mask)
	if old.full(cur) || old.full(prev) {
		sum = p.mask
	}
	return p.pack(p.relOf(end), sum, 0)
}

// relOf is the rel of p's window that holds the instant of Unix
// nanoseconds unix, clamped to p's windows.
func (p *counterParams) relOf(unix int64) uint64 {
	return uint64(min(max(floorDiv(unix, p.window)-p.base, 0), int64(p.maxRel())))
}

// capped is count, a count of old's field, in p's field: capped at p's
// field, or the whole field if count may stand for more (see full).
func (p *counterParams) capped(count uint64, old *counterParams) uint64 {
	if old.full(count) {
		return p.mask
	}
	return min(count, p.mask)
}

// full reports whether count, in p's field, may stand for more than it
// says: it fills the field and is above the Limit, as a count capped by a
// carry into a narrower field is (a Config with OnLimitReached keeps a
// bit for its mark, and halves a day's field). Read as itself in a wider
// field, the units above the cap would be admitted again (reconfigured
// through such a Config and back, a Counter admitted them twice); read as
// the whole wider field, it counts every unit, and a count that was exact
// counts more than it was until its window passes: fewer admitted, never
// more.
func (p *counterParams) full(count uint64) bool {
	return count >= p.mask && count > uint64(p.limit)
}

// carryMark converts old's restore mark (see UnmarshalBinary) to p's: the
// window of p that holds the last instant of old's marked window.
func (p *counterParams) carryMark(aux int64, old *counterParams, now int64) int64 {
	if aux == 0 {
		return 0
	}
	end, _ := old.lastEnd(uint64(aux-1), now, p.window)
	return int64(p.relOf(end)) + 1
}

// lastEnd returns the last instant (Unix nanoseconds) of p's window rel as
// a carry at now (Unix nanoseconds) into windows of w counts it, and
// whether rel is p's last window with now past its nominal end. Every
// instant from the start of the last window (maxRel, the window of
// maxTime) on falls in it, since reads clamp there: it never ends, and the
// Takes it counts may be stamped at any instant up to now, so they count
// for a new Window from now on (see Reconfigure in the ratekit package
// documentation): the carry's window is the one that holds now + w - 1.
func (p *counterParams) lastEnd(rel uint64, now, w int64) (int64, bool) {
	end := (p.base+int64(rel)+1)*p.window - 1
	if rel == p.maxRel() && now > end {
		return now + w - 1, true // now <= 2^62 + 2^61, w <= MaxWindow: no overflow
	}
	return end, false
}

// counterFormat is the version of the Counter's MarshalBinary format;
// counterCutFormat (2) is written only for a state with a cut count (see
// full), which version 1 cannot carry, and counterForgotFormat (3) only
// for a Counter whose Limit went down (forgot above it), which neither
// can.
const (
	counterFormat       = 1
	counterCutFormat    = 2
	counterForgotFormat = 3
)

// The bits of a version 2 state's cut flags: which counts are cut, and
// whether the window is the last one its Counter's parameters hold, which
// never ends (see lastEnd).
const (
	cutCur  = 1 << 0
	cutPrev = 1 << 1
	cutLast = 1 << 2
)

// MarshalBinary returns the Counter's state in wall-clock terms. The format,
// after the 4-byte ratekit header, is: uvarint Window in nanoseconds, varint
// start of the current fixed window in Unix nanoseconds, uvarint units
// counted in it, uvarint units counted in the window before. int64 Unix
// nanoseconds hold every window start a Counter records, whatever year its
// Config.Clock reads (its epoch is within 146 years of 1970, its windows
// within 73 years of the epoch), so one format suffices.
//
// A count that a Reconfigure cut to a narrower field (a Config with
// OnLimitReached keeps a bit for its mark, and halves a day's field) may
// stand for more than it says; version 1 would give a restore into a wider
// field the units above the cut back. Such a state is version 2: version
// 1's fields followed by a uvarint of cut flags (1: the current window's
// count is cut, 2: the previous one's). A cut count restores as a full
// field, as Reconfigure carries it.
//
// The last window a Counter's parameters hold (73 years past their epoch:
// a clock glitch of a century) never ends, since every later instant
// falls in it. Such a state is version 2 with flag 4, which builds before
// it refuse (a clear error); restored into a Counter whose clock reads past
// the window's end, its units count for a Window from that reading on, as
// Reconfigure carries them, rather than ending with the window saved.
//
// A Counter whose Limit went down judges a window it no longer knows, at a
// stale time, as holding the most an earlier Limit let it hold (see
// Reconfigure); a Counter of the lowered Config restored from version 1
// would judge it as its own Limit, and admit more there than the Counter
// it was saved from. Such a state is version 3: version 2's fields (cut
// flags 0 if no count is cut) followed by a uvarint of that most. Every
// other state is version 1 or 2, as before version 3 existed, which builds
// before it read.
func (c *Counter) MarshalBinary() ([]byte, error) {
	b, w := c.load()
	return b.P.marshal(uint64(w)), nil
}

// marshal is MarshalBinary's pure step.
func (p *counterParams) marshal(w uint64) []byte {
	rel, cur, prev := p.unpack(w)
	var cut uint64
	if p.full(cur) {
		cut |= cutCur
	}
	if p.full(prev) {
		cut |= cutPrev
	}
	if rel == p.maxRel() && cur+prev > 0 {
		cut |= cutLast
	}
	version := byte(counterFormat)
	switch {
	case p.forgot > uint64(p.limit):
		version = counterForgotFormat
	case cut != 0:
		version = counterCutFormat
	}
	b := core.AppendHeader(make([]byte, 0, 32), core.SlidingCounter, version)
	b = binary.AppendUvarint(b, uint64(p.window))
	b = binary.AppendVarint(b, (p.base+int64(rel))*p.window)
	b = binary.AppendUvarint(b, cur)
	b = binary.AppendUvarint(b, prev)
	if version >= counterCutFormat {
		b = binary.AppendUvarint(b, cut)
	}
	if version == counterForgotFormat {
		b = binary.AppendUvarint(b, p.forgot)
	}
	return b
}

// UnmarshalBinary replaces the Counter's state with one from MarshalBinary,
// so that the time between the two counts as elapsed. It returns an error
// wrapping ratekit.ErrInvalidState, and leaves the Counter unchanged, if b is
// truncated, corrupt, of another algorithm or version, holds a count above
// MaxCounterLimit of its Window, or a window more than 73 years after the
// epoch of the Counter's parameters (the making of the first Counter of its
// Config), but for a window that never ends (see MarshalBinary), which
// restores as this Counter's last. A window more than 73 years before it
// restores as a fresh state:
// nothing in it can count any more. A state saved with another Window is
// carried as Reconfigure carries the Counter's windows to a new Window,
// into the window that holds the last instant of the saved one. The Counter
// keeps its parameters, shared or not, unless the state is of a Counter
// whose Limit went down and judges a forgotten window as holding more than
// this one does (version 3), or of another Window and carries more units
// into one window than this one's Limit: then the Counter takes a private
// copy of its parameters that judges a forgotten window as holding that
// many (capped at MaxCounterLimit(Window)), as Reconfigure does, and the
// restore allocates it.
//
// From then on, unless the Counter had never counted, a Refund stamped in
// the restored fixed window or the one the Counter counted in before the
// restore, or earlier, gives nothing back: the Take it refunds may have
// been counted in the replaced state, not the restored one. The restore
// records that window in the Aux of the Counter's block (see
// internal/cell), which only Refund reads, and stores the word in place
// with one CAS: it allocates nothing.
func (c *Counter) UnmarshalBinary(b []byte) error {
	// Versions 1 and 2 first: a version 1 restore allocates nothing (a
	// refused version builds an error).
	payload, cutFormat, err := core.ParseHeaders(b, core.SlidingCounter, counterFormat, counterCutFormat)
	forgotFormat := false
	if err != nil {
		var err3 error
		if payload, err3 = core.ParseHeader(b, core.SlidingCounter, counterForgotFormat); err3 != nil {
			if len(b) < core.HeaderLen {
				return err
			}
			if _, other := core.ParseHeader(b, core.SlidingCounter, b[3]); other == nil {
				return badCounterState("format version %d, this build reads 1, 2 and 3", b[3])
			}
			return err
		}
		forgotFormat = true
	}
	r := core.NewReader(core.SlidingCounter, payload)
	window, start, cur, prev := r.Uint64(), r.Int64(), r.Uint64(), r.Uint64()
	var cut, forgot uint64
	if cutFormat || forgotFormat {
		// Version 3 has the field whatever is cut; version 2 only if some
		// count is.
		if cut = r.Uint64(); cut == 0 && cutFormat || cut&^(cutCur|cutPrev|cutLast) != 0 {
			r.Fail("cut flags %#x", cut)
		}
	}
	if forgotFormat {
		if forgot = r.Uint64(); forgot == 0 {
			r.Fail("a forgotten window's most of 0")
		}
	}
	if window == 0 || window > uint64(MaxWindow) {
		r.Fail("Window of %d ns", window)
	} else if m := uint64(MaxCounterLimit(time.Duration(window))); cur > m || prev > m {
		r.Fail("counts %d and %d exceed %d, the most a Counter of a %v Window counts", cur, prev, m, time.Duration(window))
	}
	if err := r.Err(); err != nil {
		return err
	}
	if c.c.Cur() == nil {
		return core.InvalidState(pkg, "the zero Counter has no configuration to restore a state into; create it with NewCounter")
	}
	for {
		blk, w := c.c.Load()
		p := blk.P
		if window != uint64(p.window) {
			// Each window of the saved Counter held at most forgot, and
			// one of p's meets at most ceil(p.window/window) of them.
			forgot = forgotOver(forgot, window, p)
		}
		next, err := p.restore(window, start, p.uncut(cur, cut&cutCur != 0), p.uncut(prev, cut&cutPrev != 0), cut&cutLast != 0)
		if err != nil {
			return err
		}
		if window != uint64(p.window) || cut&cutLast != 0 {
			// Both saved windows' units in one of p's (see restoreOther):
			// a forgotten window may hold that many (see forgotFrom).
			_, sum, _ := p.unpack(next)
			forgot = max(forgot, sum)
		}
		if f := min(forgot, p.mask); f > p.forgot {
			// Private parameters that judge a forgotten window as the
			// saved Counter did, in a new block (the word's layout is
			// p's: the Window was checked by restore).
			cp := *p
			cp.forgot = f
			if c.c.Replace(blk, func(w, aux int64) (*counterParams, int64, int64) {
				return &cp, int64(next), p.restoreAux(uint64(w), aux, next)
			}) {
				return nil
			}
			continue
		}
		if aux := blk.Aux.Load(); aux != 0 || uint64(w) != p.pack(0, 0, 0) {
			// Counted (or restored before): mark the replaced window and
			// the restored one, in the Aux of the block in force, before
			// the word changes. Refund reads the Aux after the word, so
			// one that finds the restored word finds the mark; one that
			// finds the old word and no mark refunds into the old state
			// with a CAS that fails if the restore got in first. A mark
			// raised for a CAS that then fails only gives back less.
			oldRel, _, _ := p.unpack(uint64(w))
			newRel, _, _ := p.unpack(next)
			cell.Raise(&blk.Aux, max(int64(oldRel), int64(newRel))+1)
		}
		// One CAS in place, as a Take stores: the Counter keeps its block.
		// One that fails lost to a Take, a Refund or a replacement: start
		// again.
		if blk.W.CompareAndSwap(w, int64(next)) {
			return nil
		}
	}
}

// restoreAux is the Aux of a block whose word w (with Aux aux) a restore
// replaces by next: the restore mark (see UnmarshalBinary), raised to the
// later of the two words' windows unless the Counter never counted.
func (p *counterParams) restoreAux(w uint64, aux int64, next uint64) int64 {
	if aux == 0 && w == p.pack(0, 0, 0) {
		return 0
	}
	oldRel, _, _ := p.unpack(w)
	newRel, _, _ := p.unpack(next)
	return max(aux, max(int64(oldRel), int64(newRel))+1)
}

// uncut is a saved count as restore reads it: a cut count (version 2) as
// the whole of p's field, since it may stand for more than it says and
// than p's field holds; any other as itself.
func (p *counterParams) uncut(count uint64, cut bool) uint64 {
	if cut {
		return p.mask
	}
	return count
}

func badCounterState(format string, args ...any) error {
	return core.InvalidState(core.SlidingCounter.String(), format, args...)
}

// restore returns the word of a state saved by MarshalBinary, if p can hold
// it (see UnmarshalBinary); last: the saved window never ends (cutLast).
func (p *counterParams) restore(window uint64, start int64, cur, prev uint64, last bool) (uint64, error) {
	if last {
		return p.restoreLast(int64(window), start, cur, prev)
	}
	if window != uint64(p.window) {
		return p.restoreOther(int64(window), start, cur, prev)
	}
	switch {
	case start%p.window != 0:
		return 0, badCounterState("window start %d is not a multiple of the Window", start)
	case cur > p.mask || prev > p.mask:
		// Counts above the Limit are a state saved after Reconfigure
		// lowered it: restored whole. Above the layout's bound, corrupt.
		return 0, badCounterState("counts %d and %d exceed %d, the most a Counter of a %v Window counts", cur, prev, p.mask, time.Duration(p.window))
	}
	rel := start/p.window - p.base
	if rel > int64(p.maxRel()) {
		return 0, badCounterState("window start %d is too far in the future", start)
	}
	if rel < 0 {
		return p.pack(0, 0, 0), nil
	}
	return p.pack(uint64(rel), cur, prev), nil
}

// restoreOther is restore of a state saved with another Window (window ns,
// checked by UnmarshalBinary, as are the counts), carried as Reconfigure
// carries a Counter's word to a new Window (see carry): the units of the
// saved current and previous windows all count in p's window that holds
// the last instant of the saved current one, capped at p's field.
func (p *counterParams) restoreOther(window, start int64, cur, prev uint64) (uint64, error) {
	switch {
	case start%window != 0:
		return 0, badCounterState("window start %d is not a multiple of the Window", start)
	case start > math.MaxInt64-window:
		return 0, badCounterState("window start %d is too far in the future", start)
	}
	end := start + window - 1 // an empty window keeps its place too (see carry)
	r := floorDiv(end, p.window) - p.base
	if r > int64(p.maxRel()) {
		return 0, badCounterState("window start %d is too far in the future", start)
	}
	if r < 0 {
		return p.pack(0, 0, 0), nil
	}
	return p.pack(uint64(r), min(cur+prev, p.mask), 0), nil
}

// restoreLast is restore of a saved window that never ends (cutLast; see
// lastEnd): if p's clock reads past its nominal end, the units count for
// p's Window from that reading, in the window of p that holds its last
// nanosecond; else in the window that holds the saved one's end, as
// restoreOther places it. A window past p's range is p's last, which
// never ends either, rather than an error.
func (p *counterParams) restoreLast(window, start int64, cur, prev uint64) (uint64, error) {
	switch {
	case start%window != 0:
		return 0, badCounterState("window start %d is not a multiple of the Window", start)
	case start > math.MaxInt64-window:
		return 0, badCounterState("window start %d is too far in the future", start)
	case cur+prev == 0:
		return 0, badCounterState("a last window with nothing counted")
	}
	end := start + window - 1
	if now := p.epochUnix + p.since(p.clock.Now()); now > end {
		end = now + p.window - 1 // within ±2^62.6: no overflow
	}
	r := min(max(floorDiv(end, p.window)-p.base, 0), int64(p.maxRel()))
	return p.pack(uint64(r), min(cur+prev, p.mask), 0), nil
}

// forgotOver is the most a window of p before the word's previous one may
// hold after windows of window ns whose forgotten windows held at most
// forgot (see forgotFrom; 0: a restored state has no such field, and p's
// own judgement stands).
func forgotOver(forgot, window uint64, p *counterParams) uint64 {
	if forgot == 0 {
		return 0
	}
	k := (uint64(p.window) + window - 1) / window
	hi, f := bits.Mul64(forgot, k)
	if hi != 0 || f > p.mask {
		f = p.mask
	}
	return f
}
