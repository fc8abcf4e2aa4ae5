// Package tokenbucket is a token bucket limiter: Limit units refill evenly
// over Window, and at most Burst are available at once. It implements the
// generic cell rate algorithm (GCRA), which keeps the whole bucket in one
// number, the theoretical arrival time (TAT): the instant at which the bucket
// will be full again if nothing more is taken.
//
// # Basics
//
// A bucket of Burst 10 refilling 60 per minute admits 10 requests at once,
// then one a second:
//
//	l, err := tokenbucket.New(tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 10, Name: "api"})
//	d := l.Take(time.Now(), 1)
//	if !d.Allowed {
//		// d.RetryAfter is exactly how long until one unit is available.
//	}
//
// Take, Peek and Refund take the time explicitly and are lock-free: two
// atomic loads (the state in force, its TAT) and, when a Take is admitted,
// one compare-and-swap, after raising the latest stamp seen (another load,
// and a compare-and-swap when the stamp is new; Refund reads it). A denial
// writes nothing. They allocate nothing.
// Allow, AllowN and Wait read the Config's Clock.
//
// # Many keys
//
// For a bucket per user, token or IP address (ratekit.Keyed), make the
// limiters with a Template: its limiters share one immutable parameter set,
// so each is 32 bytes, where New's carry about 350 bytes of their own.
//
// # Exact arithmetic
//
// The emission interval Window/Limit is rarely a whole number of nanoseconds
// (7 per 10 seconds is one every 1428571428.57... ns). Rounding it would
// drift: rounded up, a 30-day quota admits fewer than Limit; rounded down,
// more. Instead the limiter reduces the fraction Window/Limit to p/q and
// measures time in units of 1/q ns, where the interval is exactly p units.
// Every quantity in the state and the arithmetic is an integer in those
// units, so the limiter admits exactly Limit per Window in the long run. The
// durations it reports (RetryAfter, ResetAfter, Window) are rounded up to
// whole nanoseconds: waiting that long is always enough and never more than
// a nanosecond too much.
//
// # Bounds
//
// The state is one int64, so the units bound what a Config may ask for. New
// and Reconfigure reject (with an error wrapping ratekit.ErrInvalidConfig
// that names the bound):
//   - a time scale q above 2^32, that is a Limit sharing so few factors with
//     Window that 1/q ns would be finer than 2^-32 ns;
//   - Burst*p above 2^60 units: refilling Burst from empty must take at most
//     2^60/q ns, about 36 years at q = 1. 1<<40 units at 1e9 per second fit;
//     1<<40 units at 1 per 30 days (a refill of 9e10 years) do not.
//
// Rates from 1 per 30 days to 1e9 per second and beyond, and bursts up to
// 1<<40 at rates that refill them in under 36 years, are exact. Nothing
// overflows for any time, n or state: sums are bounded as the comments in
// the code show, and the rare products that could exceed 64 bits use
// math/bits or math/big.
//
// # Time
//
// The limiter measures time from an epoch, the instant it was created (read
// on the Config's Clock), with time.Time.Sub: the monotonic clock when both
// times carry a reading, the wall clock otherwise. It keeps |now - epoch| * q
// within 2^60 units on its fast path. When a Take arrives later than that
// (after 36 years at q = 1; after 1.15 s at q = 999999937, whose interval is
// 1.00000006 ns), the limiter moves its epoch forward, sealing its state
// while it does (other calls wait for it) and allocating new parameters;
// decisions are unchanged by it.
//
// Times passed in may be stale, go backwards, or be the zero time.Time. A
// time earlier than the TAT finds the bucket emptier, not fuller, and an
// admitted Take moves the TAT forward from the TAT, never from the time, so
// no ordering of stale times admits more than Burst plus what refilled up
// to the latest time seen (the bug behind golang/go#71360 in x/time/rate
// cannot occur). A time more than 2^60/q ns before the epoch is decided as at
// that bound, so it is admitted at most what the bucket held then;
// RetryAfter and ResetAfter are still measured from the time passed in.
//
// # Waiting
//
// Wait reserves: it claims the next n units even if they exist only in the
// future and sleeps until they do, so waiters are served in the order they
// arrive, each at the exact instant its units refill; a cancelled Wait gives
// back what no later caller built on. See Limiter.Wait.
//
// # Caps
//
// A Config is refused (Validate says which bound and the largest Burst that
// fits) only when Window/Limit in lowest terms needs a time scale finer than
// 2^-32 ns, or refilling Burst from empty takes more than 2^60 time units:
// 10^9 a day and 10^9 per 30 days, with a Burst of the whole quota, fit.
package tokenbucket

import (
	"math"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

const pkg = "tokenbucket"

// Config configures a Limiter. The zero Config is invalid: Limit, Window and
// Burst must be set.
type Config struct {
	// Limit is how many units refill over Window, evenly spread: 60 per
	// minute is one unit a second. It must be positive.
	Limit int
	// Window is the time over which Limit units refill. It must be positive.
	Window time.Duration
	// Burst is the bucket's capacity: the most units admitted at one
	// instant, and the Decision's Limit. It must be positive.
	Burst int
	// Name is reported as the Decision's Policy.
	Name string
	// Clock is read by Allow, AllowN, Wait and Reconfigure and sleeps Wait;
	// nil is the real clock. Take, Peek and Refund never read it.
	Clock clock.Clock
}

// The bounds of the state and the arithmetic, in units of 1/q ns.
const (
	// maxScale bounds q, the units per nanosecond.
	maxScale = 1 << 32
	// fastBound bounds tau (the time to refill Burst) and |s| (the time
	// now, relative to the epoch) on the fast path. With both within 2^60,
	// an admitted TAT (s + at most tau) stays within 2^61.
	fastBound = 1 << 60
	// maxTAT bounds a stored TAT from above. Only Wait's reservations (and
	// a debt carried by Reconfigure) go past s + tau; they may reach maxTAT.
	// With s within [-2^60, 2^62] (clamp), a TAT difference d = TAT - s is
	// within [-2^63, 2^62 + 2^60] and only used once clamped to d >= 0, so
	// d + n*p and the dividends of divider.ceil stay below 2^62 + 2^61.
	maxTAT = 1 << 62
	// minTAT is the TAT of a bucket that has been full since forever: a new
	// limiter. Every stored TAT is minTAT or within [-fastBound, maxTAT]; a
	// TAT below -fastBound is replaced by minTAT, which decides the same
	// since no time is ever read as earlier than -fastBound.
	minTAT = -(1 << 62)
	// sealed marks the TAT word of a retired parameter set (see params). It
	// is below minTAT, so no real TAT is ever equal to it.
	sealed = math.MinInt64
)

// scale reduces Window/Limit to p/q and checks the bounds; tau = Burst*p.
func (c Config) scale() (q, p, tau int64, err error) {
	if c.Limit <= 0 {
		return 0, 0, 0, core.Invalid(pkg, "Limit must be positive, got %d", c.Limit)
	}
	if c.Window <= 0 {
		return 0, 0, 0, core.Invalid(pkg, "Window must be positive, got %v", c.Window)
	}
	if c.Burst <= 0 {
		return 0, 0, 0, core.Invalid(pkg, "Burst must be positive, got %d", c.Burst)
	}
	g := gcd(uint64(c.Limit), uint64(c.Window))
	uq, up := uint64(c.Limit)/g, uint64(c.Window)/g
	if uq > maxScale {
		return 0, 0, 0, core.Invalid(pkg,
			"%d per %v needs a time scale of 1/%d ns, finer than the 2^-32 ns the state can hold; "+
				"choose a Limit that shares more factors with Window", c.Limit, c.Window, uq)
	}
	if up > fastBound {
		return 0, 0, 0, core.Invalid(pkg,
			"%d per %v takes over 2^60/%d ns (%v), the bound on refilling Burst from empty, to refill one unit",
			c.Limit, c.Window, uq, time.Duration(fastBound/uq))
	}
	hi, lo := bits.Mul64(uint64(c.Burst), up)
	if hi != 0 || lo > fastBound {
		return 0, 0, 0, core.Invalid(pkg,
			"Burst %d at %d per %v takes too long to refill from empty: Burst*Window/Limit must be at most 2^60/%d ns (%v), "+
				"so Burst at most %d at this rate", c.Burst, c.Limit, c.Window, uq, time.Duration(fastBound/uq), fastBound/up)
	}
	return int64(uq), int64(up), int64(lo), nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Validate reports whether c can configure a Limiter: an error wrapping
// ratekit.ErrInvalidConfig that says what is wrong, or nil.
func (c Config) Validate() error {
	_, _, _, err := c.scale()
	return err
}

// Limiter is a GCRA token bucket. Create it with New, or with a Template's
// New; the zero Limiter is not usable (its methods panic). It is safe for
// concurrent use: Take, Peek and Refund are lock-free, and Reconfigure and
// UnmarshalBinary may run while other goroutines take.
//
// A Limiter made by a Template's New is 32 bytes, one allocation: the
// Template's limiters share their parameters. One made by New has about 200
// bytes of parameters of its own, and is 128 bytes, two cache lines: one
// read by every Take, written only when the parameters change, and one for
// the state's words, the target of every core's compare-and-swap when the
// limiter is shared by a whole process, so no other object's writes
// invalidate either.
type Limiter struct {
	s  atomic.Pointer[state]
	s0 state // the first state, inline: a new Limiter is one allocation (unused if padded)
}

var _ ratekit.Limiter = (*Limiter)(nil)

// state is a Limiter's TAT together with the parameters it is expressed in.
// Keeping them together is what makes changing the parameters safe without
// a lock on the hot path: the TAT's units (1/q ns) and origin (the epoch)
// belong to the parameters, so a TAT must never be read with one set and
// written back under another.
//
// To replace a state (Reconfigure, UnmarshalBinary, rebase), the replacer
// swaps the old state's TAT to sealed, which makes every compare-and-swap
// still in flight on it fail; converts the value it swapped out; and then
// publishes the new state with Limiter.s.Store. Sealing is also the lock
// between replacers: only the one whose swap returned a TAT rather than
// sealed may publish, and the others wait for it and start again. A
// goroutine that loads sealed reloads Limiter.s, yielding the processor
// until the new state is published. A sealed word is never unsealed, so an
// in-flight CAS can never succeed on a retired state (no ABA). Go's atomics
// are sequentially consistent, so a goroutine that observes sealed and then
// reloads Limiter.s sees a state published no earlier than the seal.
//
// The second word, seen, bounds the stamps of the Takes admitted so far: see
// Refund, which reads it. It is raised before the TAT a Take stores, so a
// Refund that loads a TAT and then seen sees every stamp that TAT reflects.
// It is not sealed: it is only ever raised, and a replacer copies it into
// the new state after the seal, when no Take can store on the old one.
type state struct {
	p    *params      // immutable, and shared by every Limiter of a Template
	tat  atomic.Int64 // the state's TAT: never shared, never reused
	seen atomic.Int64 // at least every admitted Take's time, in units; minTAT if none
}

// newState returns a state of p with the TAT tat and the stamp bound seen,
// compact if p is a Template's, else in a cache line of its own (see
// Limiter).
func newState(p *params, tat, seen int64) *state {
	var st *state
	if p.shared {
		st = &state{}
	} else {
		c := &struct {
			st state
			_  [64 - unsafe.Sizeof(state{})]byte
		}{}
		st = &c.st
	}
	st.p = p
	st.tat.Store(tat)
	st.seen.Store(seen)
	return st
}

// see raises st's bound on the stamps of admitted Takes to s, before a Take
// at s stores its TAT. It writes only when s is a new latest stamp.
func (st *state) see(s int64) {
	for {
		z := st.seen.Load()
		if s <= z || st.seen.CompareAndSwap(z, s) {
			return
		}
	}
}

// params is one immutable parameter set. The limiters of a Template share
// one; New, Reconfigure, rebase and UnmarshalBinary (when it moves the
// epoch) make one for a single limiter.
type params struct {
	epoch time.Time // time zero of the TAT; carries a monotonic reading if the clock gave one
	q     int64     // units per ns
	p     int64     // the emission interval: units per unit of capacity
	tau   int64     // Burst*p: the time to refill Burst from empty
	burst int64
	rng   int64 // fastBound/q: the ns either side of epoch on the fast path
	divP  divider
	divQ  divider

	limit  int           // Decision.Limit: Burst
	window time.Duration // Decision.Window: tau rounded up to ns
	name   string
	cfg    Config
	clk    clock.Clock
	real   bool // cfg.Clock is nil: Allow calls time.Now directly
	shared bool // a Template's: its limiters are compact, not padded
}

func newParams(cfg Config, epoch time.Time) (*params, error) {
	q, p, tau, err := cfg.scale()
	if err != nil {
		return nil, err
	}
	return &params{
		epoch: epoch,
		q:     q, p: p, tau: tau, burst: int64(cfg.Burst), rng: fastBound / q,
		divP: newDivider(uint64(p)), divQ: newDivider(uint64(q)),
		limit: cfg.Burst, window: time.Duration(newDivider(uint64(q)).ceil(tau)),
		name: cfg.Name, cfg: cfg, clk: core.Clock(cfg.Clock), real: cfg.Clock == nil,
	}, nil
}

// New returns a full token bucket configured by cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate). It reads
// cfg.Clock once, for the epoch from which it measures time. To make many
// limiters of one Config (one per key), make a Template once and use its
// New: its limiters share their parameters.
func New(cfg Config) (*Limiter, error) {
	p, err := newParams(cfg, core.Clock(cfg.Clock).Now())
	if err != nil {
		return nil, err
	}
	// Two cache lines (Go's 128-byte size class is line-aligned): the
	// Limiter, read by every Take, and the state, written by every admission.
	c := &struct {
		l  Limiter
		_  [64 - unsafe.Sizeof(Limiter{})]byte
		st state
		_  [64 - unsafe.Sizeof(state{})]byte
	}{}
	c.l.init(p, &c.st)
	return &c.l, nil
}

// init makes l a full Limiter with parameters p and its state in st.
func (l *Limiter) init(p *params, st *state) {
	st.p = p
	st.tat.Store(minTAT)
	st.seen.Store(minTAT)
	l.s.Store(st)
}

// Template makes full Limiters of one Config that share their parameters,
// so that each costs 32 bytes: for a ratekit.Keyed of a bucket per key
// (per user, per token, per IP), where New's 200 bytes of parameters per
// key would dominate. Validate the Config once, with NewTemplate, and the
// factory cannot fail:
//
//	t, err := tokenbucket.NewTemplate(cfg)
//	...
//	perIP := ratekit.NewKeyed(func(netip.Addr) *tokenbucket.Limiter { return t.New() }, ratekit.KeyedConfig{})
//
// A Limiter made by a Template is in every way a Limiter made by New with
// the Template's Config: Reconfigure, UnmarshalBinary and the rest act on
// that Limiter alone (Reconfigure gives it parameters of its own). A
// Template is safe for concurrent use.
type Template struct {
	cfg Config
	p   atomic.Pointer[params]
}

// NewTemplate returns a Template of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate). It reads
// cfg.Clock once, for the epoch its limiters measure time from.
func NewTemplate(cfg Config) (*Template, error) {
	p, err := newParams(cfg, core.Clock(cfg.Clock).Now())
	if err != nil {
		return nil, err
	}
	p.shared = true
	t := &Template{cfg: cfg}
	t.p.Store(p)
	return t, nil
}

// New returns a full Limiter of the Template's Config. It allocates only
// the 32-byte Limiter.
//
// Limiters measure time from an epoch, and keep their fast path within
// 2^60/q ns of it (see Bounds in the package documentation): 36 years at
// q = 1, the time scale of any rate whose interval is a whole number of
// nanoseconds. For a finer time scale, New reads the Config's Clock and,
// once the Template's epoch is over half that range behind, moves it to the
// present for the limiters made from then on, so that a long-lived
// Template's new limiters do not each need parameters of their own.
func (t *Template) New() *Limiter {
	p := t.p.Load()
	if p.q > 1 {
		if now := p.clk.Now(); p.since(now) > p.rng/2 {
			if np, err := newParams(t.cfg, now); err == nil { // cannot fail: cfg was validated
				np.shared = true
				t.p.CompareAndSwap(p, np)
			}
			p = t.p.Load()
		}
	}
	l := &Limiter{}
	l.init(p, &l.s0)
	return l
}

// Config returns the Template's configuration.
func (t *Template) Config() Config { return t.cfg }

// Config returns the configuration in force.
func (l *Limiter) Config() Config { return l.s.Load().p.cfg }

// clamp converts ns, a time relative to the epoch, to units. A time more than
// rng before the epoch is read as -rng, and behind is how far before that it
// was (0 otherwise); the caller adds behind to the durations it reports,
// which are then still measured from the time passed in. A time beyond +rng
// is computed exactly while it fits under maxTAT and saturates there: any
// later time sees every TAT, all being at most maxTAT, as past. Callers that
// would store a TAT computed from a time beyond rng rebase first.
func (p *params) clamp(ns int64) (s, behind int64) {
	switch {
	case ns < -p.rng:
		return -p.rng * p.q, -p.rng - ns // ns >= MinInt64 so this cannot overflow
	case ns <= maxTAT/p.q: // rng < maxTAT/q: the fast path is the first part of this case
		return ns * p.q, 0
	}
	return maxTAT, 0
}

// decide is GCRA. With d = max(TAT - s, 0), the part of the bucket that is
// empty, in units:
//
//   - the bucket holds floor((tau - d)/p) = Burst - ceil(d/p) units, or none
//     if d > tau (a stale time, or a queue of Wait reservations);
//   - n units fit if d + n*p <= tau, and the new TAT is s + d + n*p, which is
//     max(TAT, s) + n*p: a time earlier than the TAT moves it forward from
//     the TAT, never back, so a stale time cannot mint capacity;
//   - a denied request fits after ceil((d + n*p - tau)/q) ns (the time for
//     the excess to drain), and the bucket is full after ceil(d/q) ns.
//
// It fills in *dec and returns the TAT to store and whether a store is
// needed (an admitted Take of n > 0). (The Decision is 64 bytes: filling the
// caller's in place rather than returning it saves copies.) The bounds: d <= 2^62 + 2^60, n*p <= tau <= 2^60, so every
// sum below fits an int64 and every dividend passed to divider.ceil is below
// 2^63 minus the divisor.
func (p *params) decide(dec *ratekit.Decision, tat, ns int64, n int) (int64, bool) {
	s, behind := p.clamp(ns)
	d := tat - s
	if d < 0 {
		d = 0
	}
	// Every field is set on every path, one by one: a composite literal
	// here costs a zeroed template and two more copies of the 64 bytes.
	dec.Limit, dec.Window, dec.Policy = p.limit, p.window, p.name
	if n <= 0 || int64(n) > p.burst {
		dec.Allowed = n == 0
		dec.Remaining = p.holds(d)
		dec.ResetAfter = p.after(d, behind)
		dec.RetryAfter = 0
		if n != 0 {
			dec.RetryAfter = ratekit.Never
		}
		return tat, false
	}
	nd := d + int64(n)*p.p
	if nd <= p.tau {
		dec.Allowed = true
		dec.Remaining = int(p.burst - p.divP.ceil(nd))
		dec.ResetAfter = p.after(nd, behind)
		dec.RetryAfter = 0
		return s + nd, true
	}
	dec.Allowed = false
	dec.Remaining = p.holds(d)
	dec.ResetAfter = p.after(d, behind)
	dec.RetryAfter = p.after(nd-p.tau, behind)
	return tat, false
}

// holds is how many units the bucket holds when d units of it are empty.
func (p *params) holds(d int64) int {
	if d > p.tau {
		return 0
	}
	return int(p.burst - p.divP.ceil(d))
}

// after converts x units to whole ns, rounded up, plus behind; it saturates
// below Never, which is reserved for requests that can never be admitted.
func (p *params) after(x, behind int64) time.Duration {
	if x <= 0 {
		return 0
	}
	ns := p.divQ.ceil(x)
	if behind > math.MaxInt64-1-ns {
		return ratekit.Never - 1
	}
	return time.Duration(ns + behind)
}

// since returns now - epoch in ns; time.Time.Sub uses the monotonic reading
// when both carry one and saturates at ±292 years, so the zero time.Time is
// merely a time long ago.
func (p *params) since(now time.Time) int64 { return int64(now.Sub(p.epoch)) }

// load returns the state in force and its TAT, waiting out a replacement in
// progress. (Take and Peek spell its first four lines out: the compiler
// will not inline it, and the call is a tenth of a Take.)
func (l *Limiter) load() (*state, int64) {
	st := l.s.Load()
	if tat := st.tat.Load(); tat != sealed {
		return st, tat
	}
	return l.loadSealed()
}

// loadSealed is load after it found the TAT sealed.
func (l *Limiter) loadSealed() (*state, int64) {
	for {
		runtime.Gosched() // a replacement is between seal and publish
		st := l.s.Load()
		if tat := st.tat.Load(); tat != sealed {
			return st, tat
		}
	}
}

// Take admits n units at now and takes them, or takes nothing and denies.
// n == 0 is always allowed and takes nothing; n < 0 and n > Burst are denied
// with RetryAfter ratekit.Never. A denial reports in RetryAfter exactly how
// long until n units are available. now may be stale, go backwards or be the
// zero time: a time earlier than the last one seen finds the bucket no
// fuller than it was then, so it never admits more.
//
// Take is lock-free and does not allocate, except when now is more than
// 2^60/q ns past the epoch (see Bounds in the package documentation).
func (l *Limiter) Take(now time.Time, n int) (dec ratekit.Decision) {
	for {
		st := l.s.Load()
		tat := st.tat.Load()
		if tat == sealed {
			st, tat = l.loadSealed()
		}
		p := st.p
		ns := p.since(now)
		if p.fast(ns, n) {
			// The common cases, spelled out: decide reaches the same results
			// with more branches, and through a pointer.
			nd, next := p.admit(tat, ns, n)
			dec.Limit, dec.Window, dec.Policy = p.limit, p.window, p.name
			if nd <= p.tau {
				st.see(next - nd) // the time, s
				if !st.tat.CompareAndSwap(tat, next) {
					continue
				}
				dec.Allowed = true
				dec.Remaining = int(p.burst - p.divP.ceil(nd))
				dec.ResetAfter = time.Duration(p.divQ.ceil(nd))
				return dec
			}
			// Denied: nd = d + n*p > tau >= n*p, so the empty part d > 0.
			d := nd - int64(n)*p.p
			dec.Remaining = p.holds(d)
			dec.ResetAfter = time.Duration(p.divQ.ceil(d))
			dec.RetryAfter = time.Duration(p.divQ.ceil(nd - p.tau))
			return dec
		}
		if ns > p.rng && n > 0 && int64(n) <= p.burst {
			l.rebase(st, now, p.rng)
			continue
		}
		var slow ratekit.Decision
		next, store := p.decide(&slow, tat, ns, n)
		if !store {
			return slow
		}
		s, _ := p.clamp(ns)
		st.see(s)
		if st.tat.CompareAndSwap(tat, next) {
			return slow
		}
	}
}

// fast reports whether 1 <= n <= Burst and |ns| <= rng, the case in which
// admit needs no clamping and its results no checks for overflow. The
// unsigned comparisons fold each two-sided test into one: a value below the
// range wraps around to above it.
func (p *params) fast(ns int64, n int) bool {
	return uint64(int64(n)-1) < uint64(p.burst) && uint64(ns+p.rng) <= uint64(2*p.rng)
}

// admit is decide's admission test for the fast case: the new empty part
// nd = max(TAT - s, 0) + n*p (admitted if nd <= tau) and the TAT to store,
// s + nd. With |s| <= 2^60 and TAT <= 2^62, nd <= 2^62 + 2^61.
func (p *params) admit(tat, ns int64, n int) (nd, next int64) {
	s := ns * p.q
	nd = max(tat-s, 0) + int64(n)*p.p
	return nd, s + nd
}

// Peek reports exactly what Take(now, n) would decide, Remaining included,
// and takes nothing. It is lock-free and does not allocate.
func (l *Limiter) Peek(now time.Time, n int) ratekit.Decision {
	st := l.s.Load()
	tat := st.tat.Load()
	if tat == sealed {
		st, tat = l.loadSealed()
	}
	var dec ratekit.Decision
	st.p.decide(&dec, tat, st.p.since(now), n)
	return dec
}

// Refund gives back n units that an allowed Take at `at` took, for work that
// did not happen. n is capped at Burst, the most one Take can take; n <= 0
// does nothing. It is lock-free and does not allocate.
//
// What it gives back: with Z the latest time any admitted Take was stamped
// with (the Limiter keeps it), it moves the TAT back by n emission intervals
// less Z - at (if Z is later than at), never to before `at` (a refund cannot
// make the bucket fuller than full at `at`) and never forward. So:
//   - if no Take stamped later than `at` has been admitted, as when a Take
//     is refunded at once or TakeAll rolls back at one instant, it restores
//     exactly the bucket that Take found, from `at` on;
//   - else it gives back Z - at of refill time less: nothing once Z is n
//     intervals past `at`. It cannot tell whether the later-stamped Takes
//     came before or after the refunded one, nor what they left, so it gives
//     back only what no history of those stamps can have used (the proof is
//     below). A Take refunded promptly loses at most the time between its
//     stamp and the latest stamp seen.
//
// Refunding twice, or refunding what was never taken, stops at full at `at`.
//
// Why it never leaves the bucket able to admit more, at any time, than it
// would had the refunded Take never happened. Say that Take at s0 found the
// TAT T0 and left T1 = max(T0, s0) + n*p, and then Takes (s_i, m_i) were
// admitted; each maps the TAT x to f_i(x) = max(x, s_i) + m_i*p, so the
// composition is F(x) = max(x + M, B) with M = sum m_i*p and
// B = max_j (s_j + sum_{i>=j} m_i*p), the TAT those Takes alone would leave.
// The TAT is now T = F(T1) and would be F(T0) without the refunded Take.
// Every decision is monotone in the TAT (a later TAT never admits more at
// any query time, stale or not), so it suffices that the new TAT
// T' >= F(T0) = max(T0 + M, B). First, T0 + M <= T1 - n*p + M <= T - n*p.
// Second, B <= Z + M (each s_j <= Z), and M <= T - T1 <= T - s0 - n*p, so
// B <= T - n*p + (Z - s0). T' = max(T - n*p + max(Z - s0, 0), min(T, s0)),
// capped at T (and T >= F(T0), F being monotone), meets both. Z only ever
// grows (a Take raises it before it stores its TAT), so it bounds the
// stamps of the Takes after the refunded one, whichever they were. A plain
// floor at Z would not do: the Takes stamped Z also took units.
func (l *Limiter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	for {
		st, tat := l.load()
		p := st.p
		if tat == minTAT {
			return // full since forever: nothing was taken
		}
		k := min(int64(n), p.burst)
		s, _ := p.clamp(p.since(at))
		// Loaded after the TAT: it bounds the stamps of every Take that TAT
		// reflects. z - s is within [-2^63, 2^62 + 2^60], so max(z-s, 0)
		// and k*p - that (k*p <= 2^60) do not overflow.
		z := st.seen.Load()
		give := k*p.p - max(z-s, 0)
		if give <= 0 {
			return
		}
		// tat >= -2^60 and give <= 2^60, so no overflow; the result is at
		// least min(tat, s) >= -2^60, inside the stored range.
		next := max(tat-give, min(tat, s))
		if next >= tat || st.tat.CompareAndSwap(tat, next) {
			return
		}
	}
}

// Idle reports whether the bucket is full at now, so that dropping the
// limiter and creating a fresh one in its place would change no decision
// at now or later. It is lock-free and does not allocate.
func (l *Limiter) Idle(now time.Time) bool {
	st, tat := l.load()
	if tat == minTAT {
		return true
	}
	s, _ := st.p.clamp(st.p.since(now))
	return tat <= s
}

// Allow reports whether one unit is admitted now, reading the Config's
// Clock, and takes it if so; it is shorthand for Take(clock.Now(), 1).Allowed.
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN reports whether n units are admitted now, reading the Config's
// Clock, and takes them if so; it is shorthand for
// Take(clock.Now(), n).Allowed, and skips building the Decision.
func (l *Limiter) AllowN(n int) bool {
	for {
		st := l.s.Load()
		tat := st.tat.Load()
		if tat == sealed {
			st, tat = l.loadSealed()
		}
		p := st.p
		var ns int64
		if p.real {
			// time.Since(epoch) is time.Now().Sub(epoch), but when the epoch
			// carries a monotonic reading (it does, from time.Now) it reads
			// only the monotonic clock: half the cost of time.Now.
			ns = int64(time.Since(p.epoch))
		} else {
			ns = p.since(p.clk.Now())
		}
		if !p.fast(ns, n) {
			return l.Take(p.now(), n).Allowed
		}
		nd, next := p.admit(tat, ns, n)
		if nd > p.tau {
			return false
		}
		st.see(next - nd)
		if st.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// now reads the clock, calling time.Now directly for the real clock to save
// an interface call on Allow's path.
func (p *params) now() time.Time {
	if p.real {
		return time.Now()
	}
	return p.clk.Now()
}

// rebase moves the epoch of st forward to now, if now is more than over ns
// past it: for a Take at a time beyond the fast path's range (over = rng),
// or a Wait whose reservation does not fit under maxTAT (over = 0). It keeps
// every decision as it was: the TAT moves by exactly the epoch's shift,
// except that a TAT left below -fastBound becomes minTAT, which decides the
// same (see minTAT). If st has been replaced meanwhile it does nothing; the
// caller, which loops, then finds the new state.
func (l *Limiter) rebase(st *state, now time.Time, over int64) {
	p := st.p
	shift := p.since(now)
	if shift <= over {
		return
	}
	epoch := p.epoch.Add(time.Duration(shift))
	if shift == math.MaxInt64 {
		// now is more than 292 years on and Sub saturated: epoch.Add would
		// fall short of now and the caller would rebase again, 292 years at
		// a time. Start from now itself; the TAT, at least 2^63-1 ns behind,
		// becomes minTAT in shiftTAT.
		epoch = now
	}
	np, err := newParams(p.cfg, epoch)
	if err != nil {
		return // cannot happen: p.cfg was validated
	}
	old := st.tat.Swap(sealed)
	if old == sealed {
		l.loadSealed() // another replacement won; wait for it to publish
		return
	}
	l.s.Store(newState(np, shiftTAT(old, shift, p.q), shiftTAT(st.seen.Load(), shift, p.q)))
}

// shiftTAT expresses tat, in units of 1/q ns from an epoch, relative to an
// epoch shift ns later.
func shiftTAT(tat, shift, q int64) int64 {
	if tat == minTAT {
		return minTAT
	}
	hi, lo := bits.Mul64(uint64(shift), uint64(q))
	if hi != 0 || lo > maxTAT+fastBound {
		return minTAT // shifted below -fastBound: tat <= maxTAT
	}
	v := tat - int64(lo)
	if v < -fastBound {
		return minTAT
	}
	return v
}
