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
// writes nothing, unless the Take first found room and lost its
// compare-and-swap: its stamp then stays (see Limiter.Refund). They
// allocate nothing at times within the epoch's fast range (see Time).
// Allow, AllowN and Wait read the Config's Clock.
//
// # Many keys
//
// For a bucket per user, token or IP address (ratekit.Keyed), call New in
// the factory: limiters of equal Configs share one immutable parameter set,
// so each is 32 bytes, its state inline, one memory access from the table's
// slot. The factory still decides per key (live keys 600 a minute, test
// keys 60); each distinct Config costs one parameter set.
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
// The state is one int64, so the units bound what a Config may ask for.
// Besides a Limit, Window or Burst that is not positive, New, Reconfigure
// and Validate reject only these (with an error wrapping
// ratekit.ErrInvalidConfig that names the bound, and for the second the
// largest Burst that fits):
//   - a time scale q above 2^32, that is a Limit sharing so few factors with
//     Window that 1/q ns would be finer than 2^-32 ns;
//   - Burst*p above 2^60 units: refilling Burst from empty must take at most
//     2^60/q ns, about 36 years at q = 1. 1<<40 units at 1e9 per second fit;
//     1<<40 units at 1 per 30 days (a refill of 9e10 years) do not.
//
// Rates from 1 per 30 days to 1e9 per second and beyond, and bursts up to
// 1<<40 at rates that refill them in under 36 years, are exact: 10^9 a day
// and 10^9 per 30 days, with a Burst of the whole quota, fit. Nothing
// overflows for any time, n or state: sums are bounded as the comments in
// the code show, and the rare products that could exceed 64 bits use
// math/bits or math/big.
//
// # Time
//
// The limiter measures time from an epoch, the instant it was created (read
// on the Config's Clock), with time.Time.Sub: the monotonic clock when both
// times carry a reading, the wall clock otherwise. Its fast path covers
// the times within 2^60/q ns of the epoch, the fast range: 36 years either
// side at q = 1, 1.15 s at q = 999999937 (whose interval is 1.00000006
// ns). A time outside the range takes a slower path, which may allocate. A
// Take later than the range moves the epoch forward to it. A time before
// the range, in any year (where time.Time.Sub saturates, 292 years from
// the epoch, the wall clocks' Unix times are read), is decided exactly in
// math/big, and an admitted Take there moves the epoch back to it, unless
// the restore mark or the latest stamp would then lie more than 2^62/q ns
// after the epoch: the Take is then stored exactly where it is and the
// epoch stays, so such times keep the slower path until it can move. A
// move seals the state while it runs (other calls wait for it) and
// changes no decision: Takes stamped a second apart centuries before the
// epoch are a second apart, as they are to a limiter whose clock reads
// near them.
//
// Times passed in may be stale, go backwards, or be the zero time.Time. A
// time earlier than the TAT finds the bucket emptier, not fuller, and an
// admitted Take moves the TAT forward from the TAT, never from the time, so
// no ordering of stale times admits more than Burst plus what refilled up
// to the latest time seen (the bug behind golang/go#71360 in x/time/rate
// cannot occur). RetryAfter and ResetAfter are measured from the time
// passed in, and saturate one below ratekit.Never (centuries before the
// TAT).
//
// # Waiting
//
// Wait reserves: it claims the next n units even if they exist only in the
// future and sleeps until they do, so waiters are served in the order they
// arrive, each at the exact instant its units refill; a cancelled Wait gives
// back what no later caller built on. See Limiter.Wait.
package tokenbucket

import (
	"math"
	"math/big"
	"math/bits"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
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
	// Clock is read by Allow, AllowN, Wait and Reconfigure and sleeps Wait,
	// and New reads it for the epoch of the Config's first limiter (see
	// Time in the package documentation); nil is the real clock. Take, Peek
	// and Refund never read it.
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
	// d + n*p and the dividends of core.Divider.Ceil stay below 2^62 + 2^61.
	maxTAT = 1 << 62
	// minTAT is the TAT of a bucket that has been full since forever: a new
	// limiter. Every stored TAT is minTAT or within [-fastBound, maxTAT]; a
	// TAT below -fastBound is stored as minTAT, and kept exactly in the
	// parameters' past for the times before -fastBound, the only ones at
	// which the two differ (see far.go).
	minTAT = -(1 << 62)
	// (cell.Sealed, math.MinInt64, marks a retired block's TAT: it is below
	// minTAT, so no real TAT is ever equal to it.)
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

// Limiter is a GCRA token bucket. Create it with New; the zero Limiter has
// Burst 0 until Reconfigure (see The zero value at ratekit.Limiter). It is
// safe for concurrent use: Take, Peek
// and Refund are lock-free, and Reconfigure and UnmarshalBinary may run
// while other goroutines take.
//
// A Limiter is 32 bytes, one allocation, holding its state inline (see
// internal/cell): the limiters of equal Configs share one set of
// parameters, so a bucket per key costs 32 bytes a key however it is made.
type Limiter struct {
	c cell.Ref[params] // W: the TAT; Aux: the bound on stamps (see Refund); no block: zeroBlock
}

var _ ratekit.Limiter = (*Limiter)(nil)

// The state words, in the block's parameters' units (1/q ns from the
// epoch): W is the TAT, within [-fastBound, maxTAT] or minTAT, never
// cell.Sealed; Aux bounds the stamps of the Takes admitted so far, and of
// those that found a state admitting them and then lost their
// compare-and-swap (minTAT if none). A Take raises it before the TAT it
// stores, so a Refund that loads the TAT and then Aux sees every stamp that
// TAT reflects (see Refund).
type block = cell.Block[params]

// params is one immutable parameter set, shared by every Limiter of an
// equal Config (see intern) until one is reconfigured; a rebase or
// UnmarshalBinary that moves the epoch makes one for a single limiter.
type params struct {
	epoch time.Time  // time zero of the TAT; carries a monotonic reading if the clock gave one
	wall  cell.Epoch // epoch for Joint's count of a time without one (see cell.Wall)
	real  bool       // cfg.Clock is nil: Allow reads time.Since(epoch); beside epoch, in its cache line
	q     int64      // units per ns
	p     int64      // the emission interval: units per unit of capacity
	tau   int64      // Burst*p: the time to refill Burst from empty
	burst int64
	rng   int64 // fastBound/q: the ns either side of epoch on the fast path
	maxNs int64 // maxTAT/q: the latest ns clamp computes exactly
	divP  core.Divider
	divQ  core.Divider

	limit  int           // Decision.Limit: Burst
	window time.Duration // Decision.Window: tau rounded up to ns
	name   string
	cfg    Config
	clk    clock.Clock

	// mark is the restore mark: a Refund stamped at or before it (in
	// units from the epoch) gives nothing back, since the Takes it could
	// concern were counted in a state that an UnmarshalBinary replaced
	// (see withMark). minTAT, below every stamp, is none, or one before
	// the fast range (see pastMark): shared parameters never have one.
	mark int64
	// past is the TAT, in units from the epoch, for which the word holds
	// minTAT: one before the fast range (below -fastBound), which a move
	// of the epoch, a Reconfigure or a Refund left there, read only at
	// the times before that range (see far.go); nil, as in shared
	// parameters, is full since forever. At every time the fast range
	// reads, both decide as full. pastZ is the same for Aux, the bound on
	// stamps (nil: none). A replacement that stores minTAT sets them.
	past, pastZ *big.Int
	// pastMark is the restore mark when it is before the fast range
	// (mark is then minTAT), kept exactly, in units from the epoch, for
	// the Refunds and Idle at times before that range (see far.go); nil:
	// none. markEnd is pastMark + tau, the first time at which it no
	// longer keeps Idle false, or minTAT if that is before the range.
	// (Kept at the range's bound instead, a mark later than the Takes it
	// stands for made Refunds of Takes after them give nothing back:
	// TestFarPastMarkRefund.)
	pastMark *big.Int
	markEnd  int64
}

// withMark returns a private copy of p with the restore mark m (in p's
// units, at most maxTAT), or p itself if m is nil. A mark before the fast
// range is kept exactly in pastMark.
func (p *params) withMark(m *big.Int) *params {
	if m == nil {
		return p
	}
	q := *p
	q.mark, q.pastMark, q.markEnd = minTAT, nil, minTAT
	if m.Cmp(big.NewInt(-fastBound)) >= 0 {
		q.mark = m.Int64()
		return &q
	}
	q.pastMark = m
	if e := new(big.Int).Add(m, big.NewInt(p.tau)); e.Cmp(big.NewInt(-fastBound)) >= 0 {
		q.markEnd = e.Int64()
	}
	return &q
}

// exactMark returns the restore mark of p exactly, in units from p's
// epoch (nil: none). The result is the caller's to change.
func (p *params) exactMark() *big.Int {
	if p.mark != minTAT {
		return big.NewInt(p.mark)
	}
	return copyInt(p.pastMark)
}

func newParams(cfg Config, epoch time.Time) (*params, error) {
	q, p, tau, err := cfg.scale()
	if err != nil {
		return nil, err
	}
	return &params{
		epoch: epoch, wall: cell.EpochOf(epoch),
		q: q, p: p, tau: tau, burst: int64(cfg.Burst), rng: fastBound / q, maxNs: maxTAT / q,
		divP: core.NewDivider(uint64(p)), divQ: core.NewDivider(uint64(q)),
		limit: cfg.Burst, window: time.Duration(core.NewDivider(uint64(q)).Ceil(tau)),
		name: cfg.Name, cfg: cfg, clk: core.Clock(cfg.Clock), real: cfg.Clock == nil,
		mark: minTAT, markEnd: minTAT,
	}, nil
}

// interned holds the parameters New shares between limiters of equal
// Configs.
var interned cell.Interner[Config, params]

// shared returns the interned parameters of cfg, making them if there are
// none, or if their epoch is too far from now to serve a new limiter:
// limiters keep their fast path within rng ns of the epoch (see Time in
// the package documentation), 36 years at q = 1, where shared parameters
// never go stale and the clock is not read; at finer time scales, once the
// epoch is over half that range from cfg.Clock's time, the next New makes
// fresh parameters for the limiters made from then on.
func shared(cfg Config) (*params, error) {
	return interned.Get(cfg, fresh, func() (*params, error) {
		return newParams(cfg, core.Clock(cfg.Clock).Now())
	})
}

// fresh reports whether p, interned, may serve a new limiter now.
func fresh(p *params) bool {
	if p.q == 1 {
		return true
	}
	ns := p.since(p.clk.Now())
	return -p.rng/2 <= ns && ns <= p.rng/2
}

// New returns a full token bucket configured by cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate). Limiters
// of equal Configs (Clock compared as an interface value) share their
// parameters, so calling New per key in a ratekit.Keyed factory costs 32
// bytes a key; at time scales finer than 1 ns (see Bounds) New reads
// cfg.Clock to keep the shared epoch recent. It is safe for concurrent use.
func New(cfg Config) (*Limiter, error) {
	p, err := shared(cfg)
	if err != nil {
		return nil, err
	}
	l := &Limiter{}
	l.c.Init(p, minTAT, minTAT)
	return l, nil
}

// Template makes Limiters of one Config validated once, so that its New
// cannot fail. Its limiters are exactly New's: they share the parameters
// of every limiter of the Config, and cost no less and no more.
//
// Deprecated: call New in the ratekit.Keyed factory: limiters of equal
// Configs share their parameters, so New per key costs what a Template's
// New did. Validate the Config once beforehand (Config.Validate) if the
// factory must not handle an error.
type Template struct {
	cfg Config
}

// NewTemplate returns a Template of cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Config.Validate).
//
// Deprecated: call New (see Template).
func NewTemplate(cfg Config) (*Template, error) {
	if _, err := shared(cfg); err != nil {
		return nil, err
	}
	return &Template{cfg: cfg}, nil
}

// New returns New(cfg) of the Template's Config; it allocates only the
// 32-byte Limiter.
//
// Deprecated: call New (see Template).
func (t *Template) New() *Limiter {
	return core.Must(New(t.cfg))
}

// Config returns the Template's configuration.
//
// Deprecated: call New (see Template), and the Limiter's Config.
func (t *Template) Config() Config { return t.cfg }

// Config returns the configuration in force.
func (l *Limiter) Config() Config {
	b, _ := l.load()
	return b.P.cfg
}

// load returns the block in force and its TAT, waiting out a replacement
// in progress; the zero Limiter's is zeroBlock.
func (l *Limiter) load() (*block, int64) {
	if l.c.Cur() == nil {
		return zeroBlock, minTAT
	}
	return l.c.Load()
}

// zeroBlock is the state of the zero Limiter, which has no block of its
// own until Reconfigure adopts one: Burst 0, so that no Take of n > 0 fits,
// none stores, and every zero Limiter can share it; full (minTAT) with the
// zero Config, whose nil Clock is the real clock. Its scale is 1 unit a ns
// and its epoch the Unix epoch; with Burst 0 no time changes a decision.
var zeroBlock = func() *block {
	epoch := time.Unix(0, 0).UTC()
	b := &block{P: &params{
		epoch: epoch, wall: cell.EpochOf(epoch), real: true,
		q: 1, p: 1, rng: fastBound, maxNs: maxTAT,
		divP: core.NewDivider(1), divQ: core.NewDivider(1),
		clk: core.Clock(nil), mark: minTAT, markEnd: minTAT,
	}}
	b.W.Store(minTAT)
	b.Aux.Store(minTAT)
	return b
}()

// clamp converts ns, a time relative to the epoch, to units. A time more than
// rng before the epoch is read as -rng, and behind is how far before that it
// was (0 otherwise); the caller adds behind to the durations it reports,
// which are then still measured from the time passed in. A time beyond +rng
// is computed exactly while it fits under maxTAT and saturates there: any
// later time sees every TAT, all being at most maxTAT, as past. Callers that
// would store a TAT computed from a time beyond rng rebase first; Take,
// Peek, Refund and Idle decide a time before -rng in far.go, exactly, and
// Wait reads it clamped only where that is exact (a TAT past -rng + tau:
// empty there) or gives back less (cancel).
func (p *params) clamp(ns int64) (s, behind int64) {
	switch {
	case ns < -p.rng:
		return -p.rng * p.q, -p.rng - ns // ns >= MinInt64 so this cannot overflow
	case ns <= p.maxNs: // rng < maxTAT/q: the fast path is the first part of this case
		return ns * p.q, 0
	}
	return maxTAT, 0
}

// verdict is cell.Verdict, which fill makes the caller's Decision.
type verdict = cell.Verdict

// fill is core.Fill with the parameters' Limit, Window and Name.
func (p *params) fill(dec *ratekit.Decision, v verdict) {
	core.Fill(dec, p.limit, p.window, p.name, v)
}

// decide is GCRA, a pure function of the parameters, the TAT, the time ns
// (relative to the epoch) and n. With d = max(TAT - s, 0), the part of the
// bucket that is empty, in units:
//
//   - the bucket holds floor((tau - d)/p) = Burst - ceil(d/p) units, or none
//     if d > tau (a stale time, or a queue of Wait reservations);
//   - n units fit if d + n*p <= tau, and the new TAT is s + d + n*p, which is
//     max(TAT, s) + n*p: a time earlier than the TAT moves it forward from
//     the TAT, never back, so a stale time cannot mint capacity;
//   - a denied request fits after ceil((d + n*p - tau)/q) ns (the time for
//     the excess to drain), and the bucket is full after ceil(d/q) ns.
//
// It returns the TAT to store and whether a store is needed (an admitted
// Take of n > 0), and the verdict. The bounds: d <= 2^62 + 2^60, n*p <= tau
// <= 2^60, so every sum below fits an int64 and every dividend passed to
// core.Divider.Ceil is below 2^63 minus the divisor. No path divides in
// hardware: the dividers multiply.
func (p *params) decide(tat, ns int64, n int) (next int64, store bool, v verdict) {
	s, behind := p.clamp(ns)
	d := max(tat-s, 0)
	if n <= 0 || int64(n) > p.burst {
		v = verdict{OK: n == 0, Remaining: p.holds(d), Reset: p.after(d, behind)}
		if n != 0 {
			v.Retry = ratekit.Never
		}
		return tat, false, v
	}
	nd := d + int64(n)*p.p
	if nd <= p.tau {
		return s + nd, true, verdict{OK: true, Remaining: int(p.burst - p.divP.Ceil(nd)), Reset: p.after(nd, behind)}
	}
	return tat, false, verdict{Remaining: p.holds(d), Reset: p.after(d, behind), Retry: p.after(nd-p.tau, behind)}
}

// holds is how many units the bucket holds when d units of it are empty.
func (p *params) holds(d int64) int {
	if d > p.tau {
		return 0
	}
	return int(p.burst - p.divP.Ceil(d))
}

// after converts x units to whole ns, rounded up, plus behind; it saturates
// below Never, which is reserved for requests that can never be admitted.
func (p *params) after(x, behind int64) time.Duration {
	if x <= 0 {
		return 0
	}
	ns := p.divQ.Ceil(x)
	if behind > math.MaxInt64-1-ns {
		return ratekit.Never - 1
	}
	return time.Duration(ns + behind)
}

// since returns now - epoch in ns; time.Time.Sub uses the monotonic reading
// when both carry one and saturates at ±292 years, so the zero time.Time is
// merely a time long ago.
func (p *params) since(now time.Time) int64 { return int64(now.Sub(p.epoch)) }

// Take is ratekit.Limiter's Take; n > Burst is never admitted. A denial
// reports in RetryAfter exactly how long until n units are available. A now
// earlier than the last one seen, the zero time included, finds the bucket
// no fuller than it was then.
//
// Take is lock-free and does not allocate, except at a time outside the
// epoch's fast range (see Time in the package documentation).
func (l *Limiter) Take(now time.Time, n int) (dec ratekit.Decision) {
	for {
		// The hot path of internal/cell, spelled out, with the zero
		// Limiter's nil block.
		b := l.c.Cur()
		if b == nil {
			b = zeroBlock
		}
		tat := b.W.Load()
		if tat == cell.Sealed {
			b, tat = l.c.Wait()
		}
		p := b.P
		ns := p.since(now)
		if p.fast(ns, n) {
			// The common cases, spelled out: decide reaches the same results
			// with more branches. They write the Decision's fields straight
			// from registers: a verdict filled in afterwards, as the slow
			// path does, costs about 16 more instructions a Take (moves into
			// the verdict and out again, measured with callgrind).
			nd, next := p.admit(tat, ns, n)
			dec.Limit, dec.Window, dec.Policy = p.limit, p.window, p.name
			if nd <= p.tau {
				cell.Raise(&b.Aux, next-nd) // the time, s
				if !b.W.CompareAndSwap(tat, next) {
					continue
				}
				dec.Allowed = true
				dec.Remaining = int(p.burst - p.divP.Ceil(nd))
				dec.ResetAfter = time.Duration(p.divQ.Ceil(nd))
				return dec
			}
			// Denied: nd = d + n*p > tau >= n*p, so the empty part d > 0.
			d := nd - int64(n)*p.p
			dec.Remaining = p.holds(d)
			dec.ResetAfter = time.Duration(p.divQ.Ceil(d))
			dec.RetryAfter = time.Duration(p.divQ.Ceil(nd - p.tau))
			return dec
		}
		if ns > p.rng && n > 0 && int64(n) <= p.burst {
			l.rebase(b, now, p.rng)
			continue
		}
		if ns < -p.rng {
			// Before the range the epoch holds: decided exactly, and the
			// epoch moves back to now if the Take stores (see far.go).
			if dec, done := l.farTake(b, tat, now, ns, n); done {
				return dec
			}
			continue
		}
		next, store, v := p.decide(tat, ns, n)
		if store {
			s, _ := p.clamp(ns)
			cell.Raise(&b.Aux, s)
			if !b.W.CompareAndSwap(tat, next) {
				continue
			}
		}
		p.fill(&dec, v)
		return dec
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

// Peek is ratekit.Limiter's Peek. It is lock-free and does not allocate,
// except at a time before the epoch's fast range (see Time in the package
// documentation).
func (l *Limiter) Peek(now time.Time, n int) (dec ratekit.Decision) {
	b := l.c.Cur()
	if b == nil {
		b = zeroBlock
	}
	tat := b.W.Load()
	if tat == cell.Sealed {
		b, tat = l.c.Wait()
	}
	p := b.P
	ns := p.since(now)
	if p.fast(ns, n) {
		// Take's fast case, spelled out as there, without the store: its
		// one range test keeps the test for a time before the range (below)
		// off this path.
		nd, _ := p.admit(tat, ns, n)
		dec.Limit, dec.Window, dec.Policy = p.limit, p.window, p.name
		if nd <= p.tau {
			dec.Allowed = true
			dec.Remaining = int(p.burst - p.divP.Ceil(nd))
			dec.ResetAfter = time.Duration(p.divQ.Ceil(nd))
			return dec
		}
		d := nd - int64(n)*p.p
		dec.Remaining = p.holds(d)
		dec.ResetAfter = time.Duration(p.divQ.Ceil(d))
		dec.RetryAfter = time.Duration(p.divQ.Ceil(nd - p.tau))
		return dec
	}
	if ns < -p.rng {
		return p.farPeek(tat, now, ns, n) // see far.go
	}
	_, _, v := p.decide(tat, ns, n)
	p.fill(&dec, v)
	return dec
}

// Refund gives back n units that an allowed Take at `at` took, for work that
// did not happen. n is capped at Burst, the most one Take can take; n <= 0
// does nothing. It is lock-free and does not allocate, except at a time
// before the epoch's fast range (see Time in the package documentation).
//
// What it gives back: with Z the latest stamp the Limiter has seen on a Take
// (the Limiter keeps it; see below for which Takes count), it moves the TAT
// back by n emission intervals less Z - at (if Z is later than at), never
// to before `at` (a refund cannot make the bucket fuller than full at `at`)
// and never forward. The Takes that count are those admitted, and those that
// raced: a Take of 0 < n <= Burst that found a state admitting it records
// its stamp before it tries to store, and keeps it there if it then loses
// the race to another call and is denied on retry. So:
//   - if no Take stamped later than `at` has run since (admitted or
//     racing), as when a Take is refunded at once or TakeAll rolls back at
//     one instant with no other caller, it restores exactly the bucket that
//     Take found, from `at` on;
//   - else it gives back Z - at of refill time less: nothing once Z is n
//     intervals past `at`. It cannot tell whether the later-stamped Takes
//     came before or after the refunded one, nor what they left, nor
//     whether a racing Take was admitted, so it gives back only what no
//     history of those stamps can have used (the proof is below). A Take
//     refunded promptly loses at most the time between its stamp and the
//     latest stamp seen.
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
//
// The proof needs only Z >= s_j for every admitted Take; a larger Z gives
// back less, which is safe. A Take cannot raise Z after its CAS: a Refund
// could then load the new TAT with the old Z and give back too much. So it
// raises Z first, and a Take that then loses its CAS and is denied on
// retry leaves its stamp in Z, admitted or not: Z cannot be lowered, since
// another Take may have raised it to the same value. That stamp costs a
// later refund at most Z - at, as any later stamp does.
func (l *Limiter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	for {
		b, tat := l.load()
		p := b.P
		ns := p.since(at)
		if ns < -p.rng {
			if l.farRefund(b, tat, at, ns, n) { // see far.go
				return
			}
			continue
		}
		if tat == minTAT {
			return // full at every time from -fastBound: nothing was taken
		}
		next, ok := p.refund(tat, b.Aux.Load(), ns, n)
		if !ok || b.W.CompareAndSwap(tat, next) {
			return
		}
	}
}

// refund is Refund's pure step: the TAT that giving back n units taken at
// ns leaves, given the TAT and z, the bound on admitted stamps loaded after
// it, and whether that differs from tat. z - s is within
// [-2^63, 2^62 + 2^60], so max(z-s, 0) and k*p - that (k*p <= 2^60) do not
// overflow; tat >= -2^60 and give <= 2^60, so neither does tat - give, and
// the result is at least min(tat, s) >= -2^60, inside the stored range.
func (p *params) refund(tat, z, ns int64, n int) (int64, bool) {
	k := min(int64(n), p.burst)
	s, _ := p.clamp(ns)
	if s <= p.mark {
		return tat, false // a Take from before a restore (see UnmarshalBinary)
	}
	give := k*p.p - max(z-s, 0)
	if give <= 0 {
		return tat, false
	}
	next := max(tat-give, min(tat, s))
	return next, next < tat
}

// Idle reports whether the bucket is full at now, so that dropping the
// limiter and creating a fresh one in its place would change no decision
// at now or later. It is lock-free and does not allocate, except at a time
// before the epoch's fast range (see Time in the package documentation).
func (l *Limiter) Idle(now time.Time) bool {
	b, tat := l.load()
	p := b.P
	if ns := p.since(now); ns < -p.rng {
		return p.farIdle(tat, p.units(now, ns)) // see far.go
	}
	return p.idle(tat, p.since(now))
}

// idle is Idle's pure step: whether the TAT is at or before ns, and no
// restore mark can concern a refund: a fresh limiter in this one's place
// has no mark, and its Takes at ns or later would let a refund of a Take
// from before the restore give back up to tau past the mark (a bucket
// restored full is otherwise idle at once, and Keyed.Sweep dropped it
// with the mark).
func (p *params) idle(tat, ns int64) bool {
	s, _ := p.clamp(ns)
	if p.mark != minTAT && s-p.tau < p.mark || s < p.markEnd { // s >= -2^60, tau <= 2^60: no overflow
		return false
	}
	return tat == minTAT || tat <= s
}

// Allow reports whether one unit is admitted now, reading the Config's
// Clock, and takes it if so; it is shorthand for Take(clock.Now(), 1).Allowed.
func (l *Limiter) Allow() bool {
	// AllowN(1) with its first attempt spelled out, saving the call to
	// AllowN (bench/RESULTS.md, "Allow and concurrency against their
	// floors"); a retry, or anything off the fast path, goes on in allowAt
	// with the time already read.
	b := l.c.Cur()
	if b == nil {
		b = zeroBlock
	}
	p := b.P
	if !p.real {
		return l.AllowN(1)
	}
	ns := int64(time.Since(p.epoch)) // see AllowN
	tat := b.W.Load()
	if tat == cell.Sealed || !p.fast(ns, 1) {
		return l.allowAt(b, ns, 1)
	}
	nd, next := p.admit(tat, ns, 1)
	if nd > p.tau {
		return false
	}
	cell.Raise(&b.Aux, next-nd)
	return b.W.CompareAndSwap(tat, next) || l.allowAt(b, ns, 1)
}

// AllowN reports whether n units are admitted now, reading the Config's
// Clock, and takes them if so; it is shorthand for
// Take(clock.Now(), n).Allowed, and skips building the Decision. It reads
// the clock once per call, not once per retry of its compare-and-swap.
func (l *Limiter) AllowN(n int) bool {
	b := l.c.Cur()
	if b == nil {
		b = zeroBlock
	}
	p := b.P
	var ns int64
	if p.real {
		// time.Since(epoch) is time.Now().Sub(epoch), but when the epoch
		// carries a monotonic reading (it does, from time.Now) it reads
		// only the monotonic clock: half the cost of time.Now.
		ns = int64(time.Since(p.epoch))
	} else {
		now := p.clk.Now()
		if ns = p.since(now); ns == math.MinInt64 || ns == math.MaxInt64 {
			// since saturated (292 years and more from the epoch):
			// epoch+ns is not now, which allowAt's Take needs back
			// (TestFarAllowNAtClock).
			return l.Take(now, n).Allowed
		}
	}
	return l.allowAt(b, ns, n)
}

// allowAt is AllowN's decision at ns, a time already read relative to the
// epoch of b, a block loaded from l.
func (l *Limiter) allowAt(b *block, ns int64, n int) bool {
	p := b.P
	for {
		tat := b.W.Load()
		if tat == cell.Sealed {
			// Replaced: the time read is relative to the old epoch.
			now := p.epoch.Add(time.Duration(ns))
			b, _ = l.c.Wait()
			p = b.P
			if ns = p.since(now); ns == math.MinInt64 || ns == math.MaxInt64 {
				return l.Take(now, n).Allowed // the new epoch is 292 years or more from now
			}
			continue
		}
		if !p.fast(ns, n) {
			// The time already read, not a second reading: epoch+ns keeps
			// the epoch's monotonic reading, so Take's since gives ns back.
			return l.Take(p.epoch.Add(time.Duration(ns)), n).Allowed
		}
		nd, next := p.admit(tat, ns, n)
		if nd > p.tau {
			return false
		}
		cell.Raise(&b.Aux, next-nd)
		if b.W.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// rebase moves the epoch of b forward to now, if now is more than over ns
// past it: for a Take at a time beyond the fast path's range (over = rng),
// or a Wait whose reservation does not fit under maxTAT (over = 0). It keeps
// every decision as it was: the TAT moves by exactly the epoch's shift,
// and one left below -fastBound is the word minTAT with the TAT kept in
// the new parameters' past (see far.go). If b has been replaced meanwhile it does nothing; the
// caller, which loops, then finds the new block.
func (l *Limiter) rebase(b *block, now time.Time, over int64) {
	p := b.P
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
	sh := p.units(now, shift) // the shift exactly, in p's units
	if m := p.exactMark(); m != nil {
		np = np.withMark(m.Sub(m, sh)) // one before np's range is kept in pastMark
	}
	l.c.Replace(b, func(tat, seen int64) (*params, int64, int64) {
		// A TAT or a stamp left before np's range is kept exactly in
		// np's past or pastZ, for the times before that range (see far.go).
		var past, pastZ *big.Int
		nt, nz := shiftTAT(tat, shift, p.q), shiftTAT(seen, shift, p.q)
		if t := p.exactTAT(tat); nt == minTAT && t != nil {
			past = t.Sub(t, sh)
		}
		if z := p.exactZ(seen); nz == minTAT && z != nil {
			pastZ = z.Sub(z, sh)
		}
		return np.withPasts(past, pastZ), nt, nz
	})
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
