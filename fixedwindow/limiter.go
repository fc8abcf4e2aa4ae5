package fixedwindow

import (
	"context"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Limiter admits at most Limit units per window, in windows aligned to the
// clock. Create it with New, or with a Template's New. The zero Limiter has
// a Limit of 0: it admits only n == 0, denies everything else with
// RetryAfter ratekit.Never, and comes to life when Reconfigure gives it a
// configuration.
//
// Take, Peek and Refund are lock-free and allocate nothing; they never read
// the Config's clock. All methods are safe for concurrent use.
//
// A Limiter made by a Template's New is 24 bytes, one allocation: the
// Template's limiters share their parameters. One made by New has about 240
// bytes of parameters of its own, and is laid out in 128 bytes, two cache
// lines: one read by every Take and written only when the parameters
// change, and one for the state word, the target of every core's
// compare-and-swap when the limiter is shared by a whole process. So a
// Take's reads of the parameters do not wait for the contended line, and
// no other object's writes invalidate either.
type Limiter struct {
	// cur is the state in force: the parameters and the state word that
	// belongs to them. Reconfigure and UnmarshalBinary replace it whole, so
	// that a state word is only ever read with the parameters it was packed
	// with (see state). Nil in the zero Limiter, which reads as zeroState.
	cur atomic.Pointer[state]
	s0  state // the first state, inline: a new Limiter is one allocation
}

var _ ratekit.Limiter = (*Limiter)(nil)

// New returns a Limiter for cfg, or an error wrapping ratekit.ErrInvalidConfig
// if cfg.Validate rejects it. It reads cfg.Clock once, to place the
// limiter's epoch (see MinSpan). To make many limiters of one Config (one
// per key), make a Template once and use its New: its limiters share their
// parameters.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := newParams(core.Clock(cfg.Clock).Now().Round(0), cfg, 0)
	// 128 bytes, two cache lines (Go's 128-byte size class is
	// line-aligned), with the Limiter placed so that its first state's
	// word begins the second line: the first holds cur and the parameters'
	// pointer, read by every Take, and the second the word, written by
	// every admission.
	c := &struct {
		_ [64 - unsafe.Offsetof(Limiter{}.s0) - unsafe.Offsetof(state{}.word)]byte
		l Limiter
		_ [64 - unsafe.Sizeof(Limiter{}) + unsafe.Offsetof(Limiter{}.s0) + unsafe.Offsetof(state{}.word)]byte
	}{}
	c.l.init(p)
	return &c.l, nil
}

// init makes l a fresh Limiter with parameters p.
func (l *Limiter) init(p *params) {
	l.s0.p = p // s0.word is 0, the fresh state
	l.cur.Store(&l.s0)
}

// Template makes fresh Limiters of one Config that share their parameters,
// so that each costs 24 bytes (measured: 24 bytes and one allocation per
// New, against 368 bytes in two allocations for the package's New): for a
// ratekit.Keyed of a window per key (per user, per API key, per IP), where
// the parameters would otherwise dominate. Validate the Config once, with
// NewTemplate, and the factory cannot fail:
//
//	t, err := fixedwindow.NewTemplate(cfg)
//	...
//	perKey := ratekit.NewKeyed(func(string) *fixedwindow.Limiter { return t.New() }, ratekit.KeyedConfig{})
//
// A Limiter made by a Template is in every way a Limiter made by New with
// the Template's Config: its count and whether OnLimitReached has been
// called for its window are its own, and Reconfigure, UnmarshalBinary and
// the rest act on that Limiter alone (Reconfigure gives it parameters of
// its own; UnmarshalBinary keeps the shared ones unless the restored count
// is too wide for them). The one difference is where its span of windows is
// centred (see MinSpan): on the instant NewTemplate read from the Config's
// clock, rather than the instant of the limiter's New. So a Template's
// limiters tell windows apart for at least MinSpan, 30 years, after
// NewTemplate. A Template is safe for concurrent use; the zero Template is
// not usable.
type Template struct {
	p *params
}

// NewTemplate returns a Template of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg.Validate rejects it. It reads cfg.Clock
// once, to place the epoch of every limiter it makes (see MinSpan).
func NewTemplate(cfg Config) (*Template, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := newParams(core.Clock(cfg.Clock).Now().Round(0), cfg, 0)
	p.shared = true
	return &Template{p: p}, nil
}

// New returns a fresh Limiter of the Template's Config, nothing counted in
// any window. It reads no clock, cannot fail, and allocates only the
// 24-byte Limiter.
func (t *Template) New() *Limiter {
	l := &Limiter{}
	l.init(t.p)
	return l
}

// Config returns the Template's configuration, as given to NewTemplate.
func (t *Template) Config() Config { return t.p.cfg }

// sealed is the state word a replacement (Reconfigure, UnmarshalBinary)
// leaves in the state it replaces. Its count field is all ones, a count no
// parameter set can hold (see countBits), so no live state ever equals it: a
// CAS that expects a live state fails on it, and a reader that loads it
// waits for the replacement state.
const sealed = math.MaxUint64

// state is a limiter's state word together with the parameters it is
// packed with. Both are immutable but for the word; a replaced state is
// sealed and dropped.
//
// Keeping them together is what makes Reconfigure safe without a lock on
// the hot path. If a limiter's parameters could change under its word, a
// Take could read the old parameters, a Reconfigure could then repack the
// word, and the Take's CAS could still succeed whenever the repacked word
// happened to equal the old one bitwise (ABA), storing a state computed
// with the old window length into the new layout. A sealed word accepts no
// CAS at all, and is never unsealed: a replacement always brings a word of
// its own.
//
// To replace a state, the replacer swaps its word to sealed, which makes
// every CAS still in flight on it fail; converts the value it swapped out;
// and then publishes the new state with Limiter.cur.Store. Sealing is also
// the lock between replacers: only the one whose swap returned a live word
// may publish, and the others wait for it and start again. A goroutine
// that loads sealed reloads Limiter.cur, yielding the processor until the
// new state is published (see loadSlow). Go's atomics are sequentially
// consistent, so a goroutine that observes sealed and then reloads
// Limiter.cur sees a state published no earlier than the seal.
type state struct {
	p    *params       // immutable, and shared by every Limiter of a Template
	word atomic.Uint64 // the state's own word: never shared, never reused
}

// newState returns a state of p whose word holds s: compact (16 bytes) if
// p is a Template's, else placed in 128 bytes so that p and the word are on
// cache lines of their own (see Limiter and New).
func newState(p *params, s uint64) *state {
	var st *state
	if p.shared {
		st = &state{p: p}
	} else {
		c := &struct {
			_  [64 - unsafe.Offsetof(state{}.word)]byte
			st state
			_  [64 - unsafe.Sizeof(state{}) + unsafe.Offsetof(state{}.word)]byte
		}{}
		st = &c.st
		st.p = p
	}
	st.word.Store(s)
	return st
}

// params is one immutable parameter set. The limiters of a Template share
// one; New, Reconfigure and (when the restored count needs a wider field)
// UnmarshalBinary make one for a single limiter.
//
// The state word is laid out, from the high bits down, as
//
//	index (63-cbits bits) | flag (1 bit) | count (cbits bits)
//
// count is the units taken in the state's window; flag records that
// OnLimitReached has been called for that window; index is the window's
// number relative to the epoch window, plus bias, so that windows before
// the epoch are representable in an unsigned field. The fresh state is the
// word 0: index 0 is the lowest window, never later than a request's, with
// count 0, so it decides as if nothing had been taken.
type params struct {
	cfg   Config
	clk   clock.Clock // cfg.Clock, or the real clock
	limit uint64      // cfg.Limit
	w     int64       // cfg.Window in nanoseconds, >= 1

	// epoch is the start of the window containing center, and esec, ensec
	// its Unix seconds and nanoseconds. Windows are measured from it in
	// wall-clock time, which is what aligned windows are aligned to: with
	// the monotonic reading that now.Sub(epoch) would use when both carry
	// one, a per-minute window would drift away from :00 after the system
	// clock is stepped.
	epoch       time.Time
	esec, ensec int64

	// center is the wall-clock instant New (or NewTemplate) read from the
	// Config's clock. A limiter keeps it across Reconfigure, whose
	// parameters place their epoch at the start of their window that
	// contains center, so the span of representable windows stays centred
	// on it (MinSpan).
	center time.Time

	cbits  uint   // width of the count field
	cmask  uint64 // 1<<cbits - 1
	flag   uint64 // 1<<cbits, the OnLimitReached flag
	ishift uint   // cbits+1, the shift of the index field
	maxc   uint64 // largest count the field may hold: 1<<cbits - 2

	// bias is added to a window's number relative to the epoch window (q) to
	// make its index: half the index range lies before the epoch, half
	// after. Windows at or below loQ = -bias merge into one, as do windows
	// at or above hiQ = bias-1 (see MinSpan).
	bias     int64
	loQ, hiQ int64

	shared bool // a Template's: its limiters' states are compact, not padded
}

// newParams returns the parameters of cfg (valid) for a limiter centred on
// center, whose count field holds carry, a count carried over from other
// parameters (see countField).
func newParams(center time.Time, cfg Config, carry uint64) *params {
	p := &params{cfg: cfg, center: center}
	p.clk = core.Clock(cfg.Clock)
	p.limit = uint64(cfg.Limit)
	p.w = int64(cfg.Window)
	// Windows start where Unix time + Offset is a multiple of Window: at
	// the phase -Offset mod Window (see phase).
	p.epoch = alignDown(center, p.w, phase(cfg.Offset, p.w))
	p.esec, p.ensec = p.epoch.Unix(), int64(p.epoch.Nanosecond())

	p.cbits = countField(p.limit, p.w, carry)
	p.cmask = 1<<p.cbits - 1
	p.flag = 1 << p.cbits
	p.ishift = p.cbits + 1
	p.maxc = p.cmask - 1

	// With ib index bits, indexes run over [0, 2^ib); bias = 2^(ib-1) puts
	// q = 0 in the middle. ib = 63-cbits is at least 1 (Validate), so bias
	// is at most 2^62 and q+bias stays in int64 for every q in [loQ, hiQ].
	ib := 63 - p.cbits
	p.bias = 1 << (ib - 1)
	p.loQ, p.hiQ = -p.bias, p.bias-1
	return p
}

// countField returns the width of the count field of parameters with the
// given limit and window (w ns) that must also hold carry. The field must
// hold every count its state can see: up to the limit, or a larger count
// carried over from before a Reconfigure that lowered it, or restored by
// UnmarshalBinary (Takes never raise a count above the limit, so that bound
// holds for the parameters' life). Validate made room for the limit; a
// carried count that needs more bits than the span allows is saturated by
// restore, to maxc, which is still above the limit.
func countField(limit uint64, w int64, carry uint64) uint {
	return min(countBits(max(limit, carry)), maxCountBits(w))
}

// locate returns the index of now's window and the time from now to that
// window's end.
//
// It computes q = floor((now - epoch) / w), the window's number relative to
// the epoch window, from Unix seconds and nanoseconds: within 2^33 seconds
// (272 years) of the epoch the difference fits int64 nanoseconds, and
// beyond, far works q out exactly in 128 bits, so the zero time.Time and
// the year 9999 land in their true windows. (This is also cheaper than
// now.Sub(epoch), whose overflow check costs an Add and an Equal.) Windows
// beyond the span merge into its first or last window (see MinSpan), the
// only windows whose end is not simply w - (d mod w) away.
func (p *params) locate(now time.Time) (idx uint64, toEnd time.Duration) {
	a := now.Unix()
	sec := a - p.esec
	var q, r int64
	// The subtraction overflowed iff a and esec differ in sign and sec's
	// sign differs from a's.
	if (a^p.esec)&(a^sec) >= 0 && sec > -1<<33 && sec < 1<<33 {
		d := sec*1e9 + int64(now.Nanosecond()) - p.ensec
		q, r = d/p.w, d%p.w // Go truncates toward zero; make it a floor
		if r < 0 {
			q, r = q-1, r+p.w
		}
	} else {
		q, r = far(now, p.epoch, p.w)
	}
	switch {
	case q >= p.hiQ:
		// The last window merges every later one: it never ends.
		return uint64(p.hiQ + p.bias), ratekit.Never
	case q <= p.loQ:
		// The first window merges every earlier one and ends where window
		// loQ+1 starts: (loQ-q) windows and (w-r) from now. loQ-q is in
		// [0, 2^64), exact in uint64 however far q is.
		return 0, satAdd(time.Duration(p.w-r), satMul(uint64(p.loQ)-uint64(q), p.w))
	}
	return uint64(q + p.bias), time.Duration(p.w - r)
}

// eval decides a request for n units in the window idx (which ends toEnd
// from now) against the state word s, and writes the Decision to *d. If
// Take should write a new state it returns it with write set; Peek ignores
// it, which is what makes Peek report exactly what Take would. notify asks
// the caller to run OnLimitReached with *d once the new state is written.
// (The Decision goes through a pointer because it is nine words: returned
// by value through eval, Take and AllowN it was copied on the stack at each
// step, a measurable part of a Take.)
func (p *params) eval(d *ratekit.Decision, s, idx uint64, toEnd time.Duration, n int) (next uint64, write, notify bool) {
	sidx := s >> p.ishift
	if idx < sidx {
		p.stale(d, s, sidx-idx, toEnd, n)
		return 0, false, false
	}
	// In the state's window the count stands; in a later window nothing has
	// been taken yet, and its flag is clear.
	var base, flag uint64
	if idx == sidx {
		base, flag = s&p.cmask, s&p.flag
	}
	rem := 0
	if base < p.limit {
		rem = int(p.limit - base)
	}
	reset := time.Duration(0) // nothing taken in this window: full capacity now
	if base > 0 {
		reset = toEnd
	}
	if n < 0 || n > p.cfg.Limit {
		*d = core.Impossible(p.cfg.Limit, rem, p.cfg.Window, reset, p.cfg.Name)
		return 0, false, false
	}
	*d = ratekit.Decision{Limit: p.cfg.Limit, Remaining: rem, Window: p.cfg.Window, ResetAfter: reset, Policy: p.cfg.Name}
	switch {
	case n == 0:
		d.Allowed = true
		return 0, false, false
	case base+uint64(n) <= p.limit:
		// base <= maxc < 2^62 and n <= limit < 2^62: the sum cannot wrap.
		d.Allowed = true
		d.Remaining = rem - n
		d.ResetAfter = toEnd
		return idx<<p.ishift | flag | (base + uint64(n)), true, false
	}
	// Denied because the window's quota is used up. base > 0 here (n <=
	// limit), so idx == sidx and the window is the state's own. The first
	// such denial sets the flag, by CAS, and is the one that calls
	// OnLimitReached; no other denial writes.
	d.RetryAfter = toEnd
	d.ResetAfter = toEnd
	if flag == 0 && p.cfg.OnLimitReached != nil {
		return s | p.flag, true, true
	}
	return 0, false, false
}

// stale decides a request stamped `ahead` (>= 1) windows before the
// state's window: a Take whose clock reading is older than one already
// counted. That earlier window's count is gone, so nothing can be admitted
// in it without risking admitting more than Limit; the request is denied
// (n == 0 is still allowed), with RetryAfter the time until the state's
// window begins, or until it ends if the state's window cannot take n
// either. Remaining is 0: nothing can be admitted at that instant.
func (p *params) stale(d *ratekit.Decision, s, ahead uint64, toEnd time.Duration, n int) {
	untilStart := satAdd(toEnd, satMul(ahead-1, p.w))
	count := s & p.cmask
	reset := untilStart
	if count > 0 {
		reset = satAdd(untilStart, p.w)
	}
	if n < 0 || n > p.cfg.Limit {
		*d = core.Impossible(p.cfg.Limit, 0, p.cfg.Window, reset, p.cfg.Name)
		return
	}
	*d = ratekit.Decision{Limit: p.cfg.Limit, Window: p.cfg.Window, ResetAfter: reset, Policy: p.cfg.Name}
	switch {
	case n == 0:
		d.Allowed = true
	case count+uint64(n) > p.limit:
		d.RetryAfter = satAdd(untilStart, p.w)
	default:
		d.RetryAfter = untilStart
	}
}

// load returns the state in force and its word, waiting out a replacement
// in progress (see loadSlow). (Take, Peek and Refund spell it out: the
// compiler will not inline it, and the call is a tenth of a Take.)
func (l *Limiter) load() (*state, uint64) {
	st := l.cur.Load()
	if st == nil {
		st = zeroState // the zero Limiter's, never written, so never sealed
	}
	if s := st.word.Load(); s != sealed {
		return st, s
	}
	return l.loadSlow()
}

// loadSlow is load after it found the word sealed. It waits, the only wait
// on any path of the limiter, and only while a Reconfigure or
// UnmarshalBinary is between sealing the old state and publishing the new
// one: the time it takes to build a state, in which nothing blocks. It
// yields the processor rather than blocking on a channel, which would cost
// every state an allocation.
func (l *Limiter) loadSlow() (*state, uint64) {
	for {
		runtime.Gosched()
		// cur is not nil: only the zero Limiter's is, and zeroState is
		// never sealed. The successor may itself be sealed by the time we
		// look; loop.
		st := l.cur.Load()
		if s := st.word.Load(); s != sealed {
			return st, s
		}
	}
}

// Take admits n units at now and takes them, or takes nothing and denies.
//
// n is admitted if the count of now's window plus n is at most Limit. The
// Decision's Remaining is Limit minus the count after this Take; ResetAfter
// and, on a denial, RetryAfter are the time until now's window ends
// (ResetAfter is 0 when nothing is taken in the window). n == 0 is always
// allowed; n < 0 and n > Limit are denied with RetryAfter ratekit.Never.
// A Take stamped in a window earlier than one the limiter has already
// counted in is denied (see the package documentation on time).
//
// The first Take of a window that is denied because the window is full
// calls Config.OnLimitReached, on the calling goroutine, before returning.
func (l *Limiter) Take(now time.Time, n int) (d ratekit.Decision) {
	st := l.cur.Load()
	if st == nil {
		st = zeroState
	}
	s := st.word.Load()
	if s == sealed {
		st, s = l.loadSlow()
	}
	p := st.p
	idx, toEnd := p.locate(now)
	for {
		next, write, notify := p.eval(&d, s, idx, toEnd, n)
		if !write {
			return d
		}
		// A successful CAS is the Take's linearisation point: the count it
		// checked is the count it replaced. A failed one means another call
		// changed the state in between; decide again on what it wrote.
		if st.word.CompareAndSwap(s, next) {
			if notify {
				// Outside the loop and after the write: the flag, in this
				// limiter's own word, is already set, so no other Take of
				// this window can notify, and a callback that calls into
				// the limiter finds it consistent.
				p.cfg.OnLimitReached(d)
			}
			return d
		}
		if s = st.word.Load(); s == sealed {
			st, s = l.loadSlow()
			p = st.p
			idx, toEnd = p.locate(now)
		}
	}
}

// Peek reports exactly what Take(now, n) would decide, Remaining included,
// and takes nothing. It never calls OnLimitReached and never writes.
func (l *Limiter) Peek(now time.Time, n int) (d ratekit.Decision) {
	st := l.cur.Load()
	if st == nil {
		st = zeroState
	}
	s := st.word.Load()
	if s == sealed {
		st, s = l.loadSlow()
	}
	idx, toEnd := st.p.locate(now)
	st.p.eval(&d, s, idx, toEnd, n)
	return d
}

// Refund gives back n units that an allowed Take at `at` took, for work that
// did not happen. It gives them back only if at's window is the limiter's
// current window: units taken in a window that has ended are not given to
// another one. The count never goes below zero, so refunding what was never
// taken cannot raise capacity above Limit. n <= 0 does nothing.
func (l *Limiter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	st := l.cur.Load()
	if st == nil {
		st = zeroState
	}
	s := st.word.Load()
	if s == sealed {
		st, s = l.loadSlow()
	}
	p := st.p
	idx, _ := p.locate(at)
	for {
		count := s & p.cmask
		if s>>p.ishift != idx || count == 0 {
			return
		}
		// min(n, count) keeps the count at or above zero; the flag stays,
		// since OnLimitReached has been called for this window whatever
		// the count becomes.
		if st.word.CompareAndSwap(s, s-min(uint64(n), count)) {
			return
		}
		if s = st.word.Load(); s == sealed {
			st, s = l.loadSlow()
			p = st.p
			idx, _ = p.locate(at)
		}
	}
}

// Idle reports whether the limiter, at now, decides as a fresh one would,
// so that dropping it (as ratekit's keyed limiters do) changes no decision
// at now or later: nothing is counted in now's window and OnLimitReached
// has not been called for it, or the limiter's window ended before now's.
// A limiter that has counted in a window after now's is not Idle.
func (l *Limiter) Idle(now time.Time) bool {
	st, s := l.load()
	idx, _ := st.p.locate(now)
	sidx := s >> st.p.ishift
	return sidx < idx || sidx == idx && s&(st.p.cmask|st.p.flag) == 0
}

// Allow is shorthand for AllowN(1).
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN is shorthand for Take(clock.Now(), n).Allowed, with the Config's
// clock.
func (l *Limiter) AllowN(n int) bool {
	return l.Take(l.clock().Now(), n).Allowed
}

// Wait blocks until n units are admitted, and takes them, reading the time
// from the Config's clock. It is ratekit.Wait(ctx, clock, l, n): it returns
// ratekit.ErrExceedsLimit at once for n < 0 or n > Limit, an error for
// which errors.Is(err, context.DeadlineExceeded) holds at once if the window
// with room ends after ctx's deadline, and ctx.Err() if ctx is done first.
// Waiters are not queued: all of them wake when the window ends, and the
// first to Take wins.
func (l *Limiter) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	return ratekit.Wait(ctx, l.clock(), l, n)
}

// Config returns the limiter's current configuration, as given to New or
// the last successful Reconfigure.
func (l *Limiter) Config() Config {
	st, _ := l.load()
	return st.p.cfg
}

func (l *Limiter) clock() clock.Clock {
	st, _ := l.load()
	return st.p.clk
}

// zeroState is the state of the zero Limiter: Limit 0, so that every Take
// of n > 0 is impossible and nothing is ever written to it, which is what
// lets every zero Limiter share it. Its Config is the zero Config; its
// arithmetic uses a 1ns window.
var zeroState = func() *state {
	p := newParams(time.Time{}, Config{Window: 1}, 0)
	p.cfg = Config{}
	return newState(p, 0)
}()
