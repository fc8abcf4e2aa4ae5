package fixedwindow

import (
	"context"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/core"
)

// Limiter admits at most Limit units per window, in windows aligned to the
// clock. Create it with New; the zero Limiter has Limit 0 until Reconfigure
// (see The zero value at ratekit.Limiter). Its state is
// one word, inline (see Concurrency and Many keys in the package
// documentation).
type Limiter struct {
	// c is the state in force: the parameters and the word packed with
	// them (see params). A zero Limiter's c has no block; it reads as
	// zeroBlock until Reconfigure adopts one.
	c cell.Ref[params]
}

var _ ratekit.Limiter = (*Limiter)(nil)

// block is a state: parameters and the word packed with them; Aux is the
// restore mark Refund reads (see replace).
type block = cell.Block[params]

// New returns a Limiter for cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg.Validate rejects it. Limiters of equal
// Configs (Clock compared as an interface value, OnLimitReached as the same
// function value: one closure, not two closures of the same code) share
// their parameters (see Many keys in the package documentation). New reads
// cfg.Clock once, to keep the shared parameters' span of windows (see
// MinSpan) around the present.
func New(cfg Config) (*Limiter, error) {
	p, err := shared(cfg)
	if err != nil {
		return nil, err
	}
	l := &Limiter{}
	l.c.Init(p, fresh, 0)
	return l, nil
}

// Template makes Limiters of one Config validated once, so that its New
// cannot fail. Its limiters are exactly New's: they share the parameters of
// every limiter of the Config, and cost no less and no more.
//
// Deprecated: call New in the ratekit.Keyed factory: limiters of equal
// Configs share their parameters, so New per key costs what a Template's
// New did. Validate the Config once beforehand (Config.Validate) if the
// factory must not handle an error.
type Template struct {
	cfg Config
}

// NewTemplate returns a Template of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg.Validate rejects it.
//
// Deprecated: call New (see Template).
func NewTemplate(cfg Config) (*Template, error) {
	if _, err := shared(cfg); err != nil {
		return nil, err
	}
	return &Template{cfg: cfg}, nil
}

// New returns New(cfg) of the Template's Config: a fresh Limiter, nothing
// counted in any window. It cannot fail.
//
// Deprecated: call New (see Template).
func (t *Template) New() *Limiter {
	return core.Must(New(t.cfg))
}

// Config returns the Template's configuration, as given to NewTemplate.
//
// Deprecated: call New (see Template), and the Limiter's Config.
func (t *Template) Config() Config { return t.cfg }

// The state word, from the high bits down:
//
//	index (63-cbits bits) | flag (1 bit) | count+1 (cbits bits)
//
// count is the units taken in the state's window; flag records that
// OnLimitReached has been called for that window; index is the window's
// number relative to the epoch window, plus bias, so that windows before
// the epoch are representable in an unsigned field.
//
// The low field holds count+1, in [1, maxc+1], never 0, and that is why no
// state is cell.Sealed, whose bit pattern is 1<<63: its low field is 0.
// (The index field takes the top bit, and every index is in use: MinSpan
// needs all 63-cbits bits, so the top bit cannot be kept clear instead.)
// An admission in the state's window is then the word plus n.
//
// The fresh state, fresh, is index 0, the lowest window, never later than
// a request's, with count 0: it decides as if nothing had been taken.
const fresh = 1

// params is one immutable parameter set, shared by every Limiter of an
// equal Config (see shared); Reconfigure and UnmarshalBinary give a limiter
// parameters of its own only when a carried count needs a wider field.
type params struct {
	cfg   Config
	clk   clock.Clock // cfg.Clock, or the real clock
	limit uint64      // cfg.Limit
	lim1  uint64      // limit+1: the highest low field an admission may leave
	w     int64       // cfg.Window in nanoseconds, >= 1
	divW  core.Divider
	hook  bool // cfg.OnLimitReached != nil

	// epoch is the start of the window containing center, and esec, ensec
	// its Unix seconds and nanoseconds. Windows are measured from it in
	// wall-clock time, which is what aligned windows are aligned to: with
	// the monotonic reading that now.Sub(epoch) would use when both carry
	// one, a per-minute window would drift away from :00 after the system
	// clock is stepped.
	epoch       time.Time
	esec, ensec int64

	// center is the wall-clock instant whose window is the epoch window:
	// the instant New (or Reconfigure) read from the Config's clock when it
	// made these parameters. The span of distinct windows is centred on it
	// (MinSpan).
	center time.Time

	cbits  uint   // width of the low field
	cmask  uint64 // 1<<cbits - 1
	flag   uint64 // 1<<cbits, the OnLimitReached flag
	ishift uint   // cbits+1, the shift of the index field
	maxc   uint64 // largest count the field may hold: 1<<cbits - 2

	// bias is added to a window's number relative to the epoch window (q) to
	// make its index: half the index range lies before the epoch, half
	// after. Windows at or below loQ = -bias merge into one, as do windows
	// at or above hiQ = bias-1 (see MinSpan). slack is how far from the
	// epoch window the present may be for the parameters to still cover
	// MinSpan either side of it (see near).
	bias     int64
	loQ, hiQ int64
	slack    int64
}

// newParams returns the parameters of cfg (valid) for a limiter centred on
// center, whose count field holds carry, a count carried over from other
// parameters (see countField).
func newParams(center time.Time, cfg Config, carry uint64) *params {
	p := &params{cfg: cfg, center: center}
	p.clk = core.Clock(cfg.Clock)
	p.limit = uint64(cfg.Limit)
	p.lim1 = p.limit + 1
	p.w = int64(cfg.Window)
	p.divW = core.NewDivider(uint64(p.w))
	p.hook = cfg.OnLimitReached != nil
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
	// bias*w >= MinSpan (Validate), so slack >= 0; the zero Limiter's
	// parameters (a 1ns window) have none to spare and get 0.
	p.slack = max(p.bias-(int64(MinSpan)+p.w-1)/p.w, 0)
	return p
}

// near reports whether p, made at another instant, serves a limiter made
// at now as well as parameters centred on now would: now's window is
// within slack windows of the epoch window, so the span still reaches
// MinSpan either side of now.
func (p *params) near(now time.Time) bool {
	idx, _ := p.locate(now)
	return uint64(int64(idx)-p.bias+p.slack) <= uint64(2*p.slack)
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

// interned holds the parameters New shares between limiters of equal
// Configs.
var interned cell.Interner[cell.Key, params]

// shared returns the interned parameters of cfg, making them (centred on
// cfg.Clock's time) if there are none, or if their span no longer reaches
// MinSpan either side of that time (see near): the first New of a Config
// centres the span for every limiter of it made in the next decades. It
// returns an error wrapping ratekit.ErrInvalidConfig for an invalid cfg.
func shared(cfg Config) (*params, error) {
	return interned.Get(cell.Key{Limit: cfg.Limit, Window: cfg.Window, Offset: cfg.Offset, Name: cfg.Name, Clock: cfg.Clock,
		Hook: cell.HookOf(cfg.OnLimitReached)}, func(p *params) bool { return p.near(p.clk.Now()) }, func() (*params, error) {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return newParams(core.Clock(cfg.Clock).Now().Round(0), cfg, 0), nil
	})
}

// locate returns the index of now's window and the time from now to that
// window's end.
//
// It computes q = floor((now - epoch) / w), the window's number relative to
// the epoch window, from Unix seconds and nanoseconds: within 2^33 seconds
// (272 years) of the epoch the difference fits int64 nanoseconds, and after
// the epoch (the common case) it is divided by multiplying (core.Divider);
// before it, it is divided in hardware, and beyond 272 years, far works q
// out exactly in 128 bits, so the zero time.Time and the year 9999 land in
// their true windows. (This is also cheaper than now.Sub(epoch), whose
// overflow check costs an Add and an Equal.) Windows beyond the span merge
// into its first or last window (see MinSpan), the only windows whose end
// is not simply w - (d mod w) away.
func (p *params) locate(now time.Time) (idx uint64, toEnd time.Duration) {
	a := now.Unix()
	sec := a - p.esec
	var q, r int64
	// The subtraction overflowed iff a and esec differ in sign and sec's
	// sign differs from a's.
	if (a^p.esec)&(a^sec) >= 0 && sec > -1<<33 && sec < 1<<33 {
		d := sec*1e9 + int64(now.Nanosecond()) - p.ensec
		if d >= 0 {
			q = int64(p.divW.Div(uint64(d))) // d < 2^63
			r = d - q*p.w
		} else {
			q, r = d/p.w, d%p.w // Go truncates toward zero; make it a floor
			if r < 0 {
				q, r = q-1, r+p.w
			}
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

// verdict is cell.Verdict, which fill makes the caller's Decision.
type verdict = cell.Verdict

// fill is core.Fill with the parameters' Limit, Window and Name.
func (p *params) fill(dec *ratekit.Decision, v verdict) {
	core.Fill(dec, p.cfg.Limit, p.cfg.Window, p.cfg.Name, v)
}

// decide is a pure function of the parameters, the state word s, the
// window idx of the request (which ends toEnd from now) and n: the word to
// store, whether a store is needed, and the verdict. Peek ignores the
// store, which is what makes Peek report exactly what Take would. A store
// with a denial is the first denial of a full window setting the flag: the
// Take that stores it calls OnLimitReached.
func (p *params) decide(s, idx uint64, toEnd time.Duration, n int) (next uint64, store bool, v verdict) {
	sidx := s >> p.ishift
	if idx < sidx {
		return 0, false, p.stale(s, sidx-idx, toEnd, n)
	}
	// In the state's window the count stands (f is count+1); in a later
	// window nothing has been taken yet, and its flag is clear.
	base, f := s, s&p.cmask
	if idx != sidx {
		base, f = idx<<p.ishift|1, 1
	}
	if uint64(n)-1 < p.limit { // 1 <= n <= Limit
		// f <= maxc+1 < 2^62 and n <= limit < 2^62: the sum cannot wrap,
		// and an admitted one stays within the field (lim1 <= cmask).
		if f+uint64(n) <= p.lim1 {
			return base + uint64(n), true, verdict{OK: true, Remaining: int(p.lim1 - f - uint64(n)), Reset: toEnd}
		}
		// Denied because the window's quota is used up. f > 1 here (n <=
		// limit), so idx == sidx and the window is the state's own. The
		// first such denial sets the flag, by CAS; no other denial writes.
		v = verdict{Remaining: p.left(f), Reset: toEnd, Retry: toEnd}
		return base | p.flag, p.hook && base&p.flag == 0, v
	}
	v = verdict{OK: n == 0, Remaining: p.left(f)}
	if f > 1 {
		v.Reset = toEnd // else nothing taken in this window: full capacity now
	}
	if n != 0 {
		v.Retry = ratekit.Never
	}
	return 0, false, v
}

// left is Remaining for a low field of f: Limit minus the count, or 0.
func (p *params) left(f uint64) int {
	if f < p.lim1 {
		return int(p.lim1 - f)
	}
	return 0
}

// stale decides a request stamped `ahead` (>= 1) windows before the
// state's window: a Take whose clock reading is older than one already
// counted. That earlier window's count is gone, so nothing can be admitted
// in it without risking admitting more than Limit; the request is denied
// (n == 0 is still allowed), with RetryAfter the time until the state's
// window begins, or until it ends if the state's window cannot take n
// either. Remaining is 0: nothing can be admitted at that instant.
func (p *params) stale(s, ahead uint64, toEnd time.Duration, n int) verdict {
	untilStart := satAdd(toEnd, satMul(ahead-1, p.w))
	count := s&p.cmask - 1
	v := verdict{Reset: untilStart}
	if count > 0 {
		v.Reset = satAdd(untilStart, p.w)
	}
	switch {
	case n < 0 || n > p.cfg.Limit:
		v.Retry = ratekit.Never
	case n == 0:
		v.OK = true
	case count+uint64(n) > p.limit:
		v.Retry = satAdd(untilStart, p.w)
	default:
		v.Retry = untilStart
	}
	return v
}

// refund is Refund's pure step: the word after giving back n (> 0) units
// taken in window idx, and whether that differs from s. The count never
// goes below zero; the flag stays, since OnLimitReached has been called
// for this window whatever the count becomes.
func (p *params) refund(s, idx uint64, n int) (uint64, bool) {
	f := s & p.cmask
	if s>>p.ishift != idx || f <= 1 {
		return s, false
	}
	return s - min(uint64(n), f-1), true
}

// idle is Idle's pure step: whether the state in s decides as a fresh one
// would from window idx on.
func (p *params) idle(s, idx uint64) bool {
	sidx := s >> p.ishift
	return sidx < idx || sidx == idx && s&(p.cmask|p.flag) == 1
}

// load returns the block in force and its word, waiting out a replacement
// in progress; the zero Limiter's is zeroBlock.
func (l *Limiter) load() (*block, int64) {
	b := l.c.Cur()
	if b == nil {
		return zeroBlock, fresh
	}
	if w := b.W.Load(); w != cell.Sealed {
		return b, w
	}
	return l.c.Wait()
}

// Take admits n units if the count of now's window plus n is at most Limit.
// The Decision's Remaining is Limit minus the count after this Take;
// ResetAfter and, on a denial, RetryAfter are the time until now's window
// ends (ResetAfter is 0 when nothing is taken in the window). A Take
// stamped in a window earlier than one the limiter has already counted in
// is denied (see the package documentation on time).
//
// The first Take of a window that is denied because the window is full
// calls Config.OnLimitReached, on the calling goroutine, before returning.
func (l *Limiter) Take(now time.Time, n int) (dec ratekit.Decision) {
	// The hot path of internal/cell, spelled out, with the zero Limiter's
	// nil block.
	b := l.c.Cur()
	if b == nil {
		b = zeroBlock
	}
	w := b.W.Load()
	if w == cell.Sealed {
		b, w = l.c.Wait()
	}
	for {
		p := b.P
		idx, toEnd := p.locate(now)
		for {
			next, store, v := p.decide(uint64(w), idx, toEnd, n)
			// A successful CAS is the Take's linearisation point: the count
			// it checked is the count it replaced.
			if !store || b.W.CompareAndSwap(w, int64(next)) {
				p.fill(&dec, v)
				if store && !v.OK {
					// After the write: the flag, in this limiter's own word,
					// is set, so no other Take of this window can notify,
					// and a callback that calls into the limiter finds it
					// consistent.
					p.cfg.OnLimitReached(dec)
				}
				return dec
			}
			// Another call changed the word: decide again on what it wrote,
			// in the same window, unless a replacement sealed the block.
			if w = b.W.Load(); w == cell.Sealed {
				break
			}
		}
		b, w = l.c.Wait()
	}
}

// Peek is ratekit.Limiter's Peek. It never calls OnLimitReached and never
// writes.
func (l *Limiter) Peek(now time.Time, n int) (dec ratekit.Decision) {
	b, w := l.load()
	p := b.P
	idx, toEnd := p.locate(now)
	_, _, v := p.decide(uint64(w), idx, toEnd, n)
	p.fill(&dec, v)
	return dec
}

// Refund gives back n units that an allowed Take at `at` took, for work that
// did not happen. It gives them back only if at's window is the limiter's
// current window: units taken in a window that has ended are not given to
// another one. The count never goes below zero, so refunding what was never
// taken cannot raise capacity above Limit. n <= 0 does nothing.
//
// After UnmarshalBinary into a limiter that had counted, a refund stamped
// in the restored window or earlier, or in the window the limiter had
// counted in before the restore, gives nothing back: the Take it refunds may have been counted in the
// replaced state, not the restored one. Takes in later windows are
// refunded as usual.
func (l *Limiter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	b, w := l.load()
	for {
		p := b.P
		idx, _ := p.locate(at)
		if m := uint64(b.Aux.Load()); idx < m {
			return // restored since (see replace)
		}
		for {
			next, ok := p.refund(uint64(w), idx, n)
			if !ok || b.W.CompareAndSwap(w, int64(next)) {
				return
			}
			if w = b.W.Load(); w == cell.Sealed {
				break
			}
		}
		b, w = l.c.Wait()
	}
}

// Idle reports whether the limiter, at now, decides as a fresh one would,
// so that dropping it (as ratekit's keyed limiters do) changes no decision
// at now or later: nothing is counted in now's window and OnLimitReached
// has not been called for it, or the limiter's window ended before now's.
// A limiter that has counted in a window after now's is not Idle, nor is
// one restored (UnmarshalBinary) over counted Takes until its restore mark's
// window is over: a fresh limiter in its place would give a refund of
// such a Take back (see Refund).
func (l *Limiter) Idle(now time.Time) bool {
	b, w := l.load()
	idx, _ := b.P.locate(now)
	if idx < uint64(b.Aux.Load()) {
		return false // a refund stamped in now's window gives nothing back
	}
	return b.P.idle(uint64(w), idx)
}

// Allow is shorthand for AllowN(1).
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN is shorthand for Take(clock.Now(), n).Allowed, with the Config's
// clock.
func (l *Limiter) AllowN(n int) bool {
	return l.Take(l.clock().Now(), n).Allowed
}

// Wait is ratekit.Wait(ctx, clock, l, n) with the Config's Clock: waiters
// are not queued; all of them wake when the window ends, and the first to
// Take wins.
func (l *Limiter) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	return ratekit.Wait(ctx, l.clock(), l, n)
}

// Config returns the limiter's current configuration, as given to New or
// the last successful Reconfigure.
func (l *Limiter) Config() Config {
	b, _ := l.load()
	return b.P.cfg
}

func (l *Limiter) clock() clock.Clock {
	b, _ := l.load()
	return b.P.clk
}

// zeroBlock is the state of the zero Limiter: Limit 0, so that every Take
// of n > 0 is impossible and nothing is ever written to it, which is what
// lets every zero Limiter share it. Its Config is the zero Config; its
// arithmetic uses a 1ns window.
var zeroBlock = func() *block {
	p := newParams(time.Time{}, Config{Window: 1}, 0)
	p.cfg = Config{}
	b := &block{P: p}
	b.W.Store(fresh)
	return b
}()
