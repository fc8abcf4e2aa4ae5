// Package rolling limits events to Limit per window of Window, where a window
// opens at the first event admitted while none is open and closes Window
// later; the next event after that opens a new window. This is Rollbar's
// model ("we start the rate limit counter when we first receive an
// occurrence, and it resets after however long the rate limit is"), and it
// differs from fixedwindow, whose windows are aligned to the clock, and from
// slidingwindow, which looks back Window from every instant.
//
// # Basics
//
//	daily, err := rolling.New(rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "user"})
//	...
//	d := daily.Take(now, 1) // d.Allowed, d.Remaining, d.ResetAfter (until the window closes)
//
// A window is identified by its start, the instant of the event that opened
// it, and its count of units taken. While it is open (start <= now <
// start+Window) a request of n units is admitted if count+n <= Limit. When
// now >= start+Window the window is closed and a request of n <= Limit opens
// a new one at now. ResetAfter, and RetryAfter on a denial, are the time
// until the open window closes: start+Window-now. With no window open the
// limiter is at full capacity: Peek(now, 0) reports ResetAfter 0, and
// Peek(now, n) for n > 0 reports what Take would, a window opened at now
// (ResetAfter Window).
//
// # Edge cases, decided
//
//   - n == 0 is allowed and opens no window; a denied Take opens no window
//     and writes nothing except the once-per-window OnLimitReached mark.
//   - A window whose count falls back to zero through Refund is no longer
//     open: every event that opened it was given back, so, as with a denied
//     TakeAll, it never happened, and the next event opens a fresh window.
//     But an event stamped before that window's start (a stale time) is
//     denied (Remaining 0, RetryAfter until that start): the event that
//     opened the window may have replaced an older window that still
//     counts at the stale time, whose count is not kept, and a window
//     opened there would admit more than had the refunded event never
//     happened. Windows never move back in time either, so that a refund
//     of an event from a window before it cannot give back the units of
//     events taken since at its instant. (This errs toward admitting less.)
//   - A Take stamped before the open window's start (a stale time from a
//     goroutine that read the clock before another opened the window) is
//     counted into the open window, which then reports a ResetAfter longer
//     than Window. It is never admitted into a window of its own, so stale
//     times never admit more.
//   - Refund(at, n) gives back units only if at is within the open window
//     ([start, start+Window)), and never below zero. Units taken in a window
//     that has since closed are not given to the next one; units a stale
//     Take counted into the window from before its start cannot be refunded
//     (that errs toward admitting less). A refund at the window's start,
//     when units taken after the start remain, is of an event that may have
//     opened the window: had it never happened, a later event would have
//     opened it, and it would close later. So the window's start moves to
//     start+Window-1ns, the last instant those events can be (their
//     instants are not kept), and it closes no sooner than it would have.
//     A refund cannot undo what the refunded event did to windows after its
//     own (the next window opened at start+Window on the assumption it had
//     happened), nor bring back an older window's count that its window
//     replaced (which a stale time would have been judged by): see Refund.
//   - OnLimitReached is called once per window, by the first denied Take of
//     that window (not by Peek, nor by a request of n < 0 or n > Limit,
//     which can never be admitted), on the caller's goroutine after the
//     state is updated and with no lock held.
//
// # Concurrency
//
// Every method is safe for concurrent use, and concurrent Takes behave as
// if they ran one at a time in some order consistent with real time. At a
// window's end no interleaving lets more than Limit into either window: a
// Take decides on the exact state word it then replaces by compare-and-swap,
// so one that decided on a window another Take has since closed fails its
// swap and decides again on the new window; a closed window's state, once
// replaced, is sealed and accepts nothing more. The tests race goroutines
// with stale, out-of-order times across hundreds of window ends to check it.
//
// # Persistence
//
// MarshalBinary saves the open window's start in Unix time, its count and
// the Window; UnmarshalBinary restores them in another process, where
// downtime counts as elapsed time: a 30-day window survives a restart, one
// that closed while the process was down is closed, and one saved under a
// longer Window is carried as Reconfigure carries it.
//
// # Many keys
//
// For a window per access token, user or IP address (ratekit.Keyed), call
// New in the factory: limiters of equal Configs share one immutable
// parameter set, so each is one 32-byte allocation. Each keeps its own
// window, count and OnLimitReached mark.
//
// # Time
//
// Internal times are int64 nanoseconds from an epoch that New reads from
// Config.Clock (shared by the limiters of a Config), on the monotonic
// clock when both times carry a reading. A clock set far from the wall
// clock, a mock in a test or a simulation, works as the real one does.
// A time more than 292 years from the epoch, where time.Time.Sub
// saturates, is decided as exactly as one near it, in any year time.Time
// spells (year 1, the zero time.Time, included): a window opened where the
// epoch cannot hold its start moves the limiter's epoch to that start, so
// a window's start is always an exact instant, and a time beyond the
// epoch's reach is before every window start or after every window end,
// as its instant is.
//
// # Performance
//
// Take, Peek and Refund are lock-free and do not allocate on the paths that
// add to an open window, refund, or deny. The state lives in one 64-bit
// word that packs the count with the window's start as an exact nanosecond
// offset from a base instant; opening a new window rewrites it in place
// while the new start is within 2^(61-b) ns of the base, where b is the bit
// length of Limit. Otherwise (and on Reconfigure, and on UnmarshalBinary of
// a window out of reach) it allocates one state block with a new base (64
// bytes, a cache line of its own): one allocation per new window at most,
// never one per event. The reach is 4.5 years at Limit 10, 26 days at
// Limit 1000, 36 minutes at Limit 10^6 (a limiter opening windows
// continuously allocates that rarely), and 1 ms at Limit 2^40, so there
// each new window costs one allocation. A new limiter's base is up to a
// Window before its creation (half the reach at most), so that its first
// window opens in place even at a time read a little before it was made.
// (Takes racing to open the same window out of reach may each allocate a
// block; one is kept.) A window opened more than 292 years from the epoch
// (see Time) also allocates parameters of its own (184 bytes) with the
// epoch moved there.
//
// # Caps
//
// Limit is at most MaxLimit (2^48), whatever the Window: 10^9 a day and
// 10^9 per 30 days fit.
package rolling

import (
	"context"
	"math"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/core"
)

const pkg = "rolling"

// MaxLimit is the largest Limit a Config may set: 2^48 units per window,
// 100 million events a second for a month. It bounds the bits the count
// takes in the packed state word (see state.go).
const MaxLimit = 1 << 48

// Config configures a Limiter. The zero Config is invalid: Limit and Window
// must be set.
type Config struct {
	// Limit is the number of units a window admits: 1 to MaxLimit.
	Limit int
	// Window is how long a window stays open after the event that opened it.
	// It must be positive; one second to 30 days are the usual values, and
	// any positive duration works.
	Window time.Duration
	// Name is reported as the Policy of every Decision ("" is allowed).
	Name string
	// Clock is read by Allow, AllowN and Wait, and once by New and by
	// Reconfigure for the epoch internal time counts from (see Time in the
	// package documentation); nil is the real clock. Take, Peek and Refund
	// never read it.
	Clock clock.Clock
	// OnLimitReached, if not nil, is called with the denial once per window,
	// by the first denied Take of that window (its RetryAfter is the time
	// until the window closes). It runs on the goroutine of that Take, after
	// the state is updated and with no lock held; it may call the Limiter.
	// It should return quickly: calls for successive windows are not
	// serialized and may overlap.
	OnLimitReached func(ratekit.Decision)
}

// Validate returns nil if c is usable, or an error wrapping
// ratekit.ErrInvalidConfig that says which field is wrong.
func (c Config) Validate() error {
	switch {
	case c.Limit < 1:
		return core.Invalid(pkg, "Limit %d must be at least 1", c.Limit)
	case int64(c.Limit) > MaxLimit:
		return core.Invalid(pkg, "Limit %d exceeds MaxLimit %d", c.Limit, int64(MaxLimit))
	case c.Window <= 0:
		return core.Invalid(pkg, "Window %v must be positive", c.Window)
	}
	return nil
}

// Limiter is a rolling-window limiter: Limit units per window of Window,
// each window opened by the first event admitted while none is open.
//
// Create it with New; the zero Limiter has Limit 0 until Reconfigure (see
// The zero value at ratekit.Limiter). It is safe for concurrent use by any number of goroutines: Take, Peek
// and Refund are lock-free and allocation-free (see the package
// documentation for the one allocation a new window may cost), but for a
// ratekit.TakeAll deciding the Limiter with others, whose few
// instructions they wait out (see internal/cell), and
// Reconfigure and UnmarshalBinary may run concurrently with them.
//
// A Limiter is 32 bytes, one allocation, holding its state inline (see
// internal/cell): the limiters of equal Configs share one set of
// parameters, so a window per key costs 32 bytes a key.
type Limiter struct {
	// c is the state in force: parameters, base and word (see state.go),
	// in internal/cell's helping mode. A zero Limiter's c has no block; it
	// reads as zeroBlock until Reconfigure adopts one.
	c cell.Ref[params]
}

// zeroBlock is the state of the zero Limiter: the zero Config, Limit 0, so
// that no Take of n > 0 fits and nothing is ever written or published from
// it, which is what lets every zero Limiter share it. No window is open.
var zeroBlock = &block{P: newParams(Config{}, time.Unix(0, 0).UTC())}

// final is cell's Final, with the zero Limiter's zeroBlock.
func (l *Limiter) final() (*block, int64) {
	if l.c.Cur() == nil {
		return zeroBlock, 0
	}
	return l.c.Final()
}

var _ ratekit.Limiter = (*Limiter)(nil)

// New returns a Limiter with no window open, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid. Limiters of equal Configs
// (Clock compared as an interface value, OnLimitReached as the same
// function value: one closure, not two closures of the same code) share
// their parameters, so calling New per key in a ratekit.Keyed factory
// costs 32 bytes a key. New reads cfg.Clock once: the limiter measures
// time from an epoch that clock gave, and places its first state near the
// clock's present, so that its windows open in place (see Performance in
// the package documentation). It is safe for concurrent use.
func New(cfg Config) (*Limiter, error) {
	p, now, err := shared(cfg)
	if err != nil {
		return nil, err
	}
	l := &Limiter{}
	l.c.Init(p, 0, p.freshBase(now))
	return l, nil
}

// Template makes Limiters of one Config validated once, so that its New
// cannot fail. Its limiters are exactly New's: they share the parameters of
// every limiter of the Config, and cost no less and no more. A Template is
// immutable and safe for concurrent use; the zero Template is not usable.
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
	if _, _, err := shared(cfg); err != nil {
		return nil, err
	}
	return &Template{cfg: cfg}, nil
}

// New returns New(cfg) of the Template's Config: a Limiter with no window
// open. It cannot fail, and allocates only the 32-byte Limiter.
//
// Deprecated: call New (see Template).
func (t *Template) New() *Limiter {
	return core.Must(New(t.cfg))
}

// Config returns the Template's configuration.
//
// Deprecated: call New (see Template), and the Limiter's Config.
func (t *Template) Config() Config { return t.cfg }

// Take is ratekit.Limiter's Take. With no window open at now, n <= Limit
// is admitted and opens a window at now. With one open, n is admitted if it
// fits in what is left of Limit. A denial's RetryAfter is the time until
// the window closes. n == 0 opens no window. Take is lock-free and does not
// allocate except, sometimes, when it opens a window (see the package
// documentation).
func (l *Limiter) Take(now time.Time, n int) (dec ratekit.Decision) {
	// The hot path of internal/cell's helping mode, spelled out, with the
	// zero Limiter's nil block.
	b := l.c.Cur()
	if b == nil {
		b = zeroBlock
	}
	p := b.P
	t := p.since(now)
	for {
		w := b.W.Load()
		if w < 0 {
			// Sealed. If it has a successor, decide on that instead;
			// if not, its final word is the limiter's state: decide on it
			// below and, if that changes it, compete to publish the
			// successor. Locked is no final word: a joint decision holds
			// it, and Take waits.
			if w == cell.Locked {
				nb, _ := l.c.WaitLocked(b)
				b, p, t = nb, nb.P, p.rebaseTime(nb.P, t, now)
				continue
			}
			if nb := l.c.Cur(); nb != b {
				b, p, t = nb, nb.P, p.rebaseTime(nb.P, t, now)
				continue
			}
		}
		base := b.Aux.Load()
		if count := w & p.cmask; count != 0 && w >= 0 {
			// The common case, spelled out: n (1 to Limit) joins the window
			// open at t (not stale), with room. take reaches the same
			// result through the unpacked state; here it is one add.
			start := base + int64(uint64(w&(laterBit-1))>>p.cb)
			if n64 := int64(n); t >= start && !closed(start, t, p.window) &&
				uint64(n64-1) < uint64(p.limit) && count+n64 <= p.limit {
				next := w + n64
				if t > start {
					next |= laterBit
				}
				if b.W.CompareAndSwap(w, next) {
					p.fill(&dec, verdict{OK: true, Remaining: int(p.limit - count - n64), Reset: untilEnd(start, t, p.window)})
					return dec
				}
				continue
			}
		}
		if uint64(t)+(1<<63+1) <= 1 { // t is math.MinInt64 or math.MaxInt64
			// More than 292 years from the epoch: see farTake.
			if l.farTake(b, w, now, n, &dec) {
				return dec
			}
		} else if v, next, act := p.take(p.decode(w, base), t, n); act == keep || l.publish(b, w, next, t) {
			p.fill(&dec, v)
			if act == notify {
				// After the write: the mark, in this limiter's word, is set,
				// so no other Take of this window notifies.
				p.cfg.OnLimitReached(dec)
			}
			return dec
		}
		// Someone else changed b's word or published its successor first:
		// decide again on what they left.
		nb := l.c.Cur()
		b, p, t = nb, nb.P, p.rebaseTime(nb.P, t, now)
	}
}

// Peek is ratekit.Limiter's Peek. It never calls OnLimitReached. It is
// lock-free and writes nothing.
func (l *Limiter) Peek(now time.Time, n int) (dec ratekit.Decision) {
	b, w := l.final()
	p := b.P
	st, t := p.decode(w, b.Aux.Load()), p.since(now)
	var v verdict
	if t == math.MinInt64 {
		v, _, _ = p.farDecide(st, now, n)
	} else {
		v, _, _ = p.take(st, t, n)
	}
	p.fill(&dec, v)
	return dec
}

// Refund gives back n units that an allowed Take at `at` took, for work that
// did not happen. Only units of the open window are given back: `at` must be
// within it (start <= at < start+Window), and the count never goes below
// zero. A window whose count returns to zero is no longer open, so the next
// event opens a fresh one. n <= 0 does nothing. Refund is lock-free.
//
// What it gives back: with `at` after the window's start, the n units, and
// the window keeps its start, exactly as if the Take had not happened. With
// `at` at the start, the n units too; but if units taken after the start
// remain, the refunded Take may have opened the window that they joined,
// so the window's start moves to start+Window-1ns (the latest any of them
// can be stamped) and it closes up to a Window later than before: never
// sooner than had the refunded Take not happened. A rolled-back TakeAll
// with no later event in between changes nothing.
//
// What it cannot give back, for a Take that opened a window: once an event
// stamped at or after start+Window has opened the next window, that window
// dates from an instant that assumed the refunded Take (without it, the
// event might have joined a window opened later), and the refund, too late
// for the window it was taken in, gives nothing and cannot move the new one;
// and a count that an older window held when the Take opened a new one is
// forgotten, so stale times before the Take are judged by the new window
// while it holds units, and once a refund empties it they admit nothing
// (see Edge cases in the package documentation). Moving a window's start may
// cost the allocation a window out of reach costs (see Performance).
func (l *Limiter) Refund(at time.Time, n int) {
	b := l.c.Cur()
	if n <= 0 || b == nil {
		return // the zero Limiter has taken nothing
	}
	p := b.P
	t := p.since(at)
	for {
		w := b.W.Load()
		if w < 0 {
			if w == cell.Locked { // as in Take
				nb, _ := l.c.WaitLocked(b)
				b, p, t = nb, nb.P, p.rebaseTime(nb.P, t, at)
				continue
			}
			if nb := l.c.Cur(); nb != b {
				b, p, t = nb, nb.P, p.rebaseTime(nb.P, t, at)
				continue
			}
		}
		give := n
		if p.marked && t <= p.mark {
			// Restored since (see UnmarshalBinary): nothing comes back,
			// but a refund at the window's start still moves the start,
			// which only admits less, as the refunded Take may have
			// opened the window (it may be in the restored state).
			give = 0
		}
		next, ok := p.refund(p.decode(w, b.Aux.Load()), t, give)
		if !ok || l.publish(b, w, next, t) {
			return
		}
		nb := l.c.Cur()
		b, p, t = nb, nb.P, p.rebaseTime(nb.P, t, at)
	}
}

// Idle reports whether no window is open at now (none was opened, it has
// closed, or all its units were refunded, and now is not before the start
// of the window refunded: see Edge cases in the package documentation),
// and now is after the restore mark (a limiter restored by UnmarshalBinary
// over counted Takes gives nothing back for a refund stamped at or before
// the end of the window it had, which a fresh limiter in its place would
// give back: see Refund), so that the Limiter decides exactly as a fresh
// one would and can be dropped. It is lock-free.
func (l *Limiter) Idle(now time.Time) bool {
	b, w := l.final()
	p := b.P
	st, t := p.decode(w, b.Aux.Load()), p.since(now)
	if p.marked && t <= p.mark {
		return false // a Take at now, refunded, would find the mark
	}
	return !st.open(t, p.window) && !(st.spent() && t < st.start)
}

// Allow is shorthand for AllowN(1).
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN reports whether n units may pass now, reading the time from the
// Config's Clock, and takes them if so: Take(clock.Now(), n).Allowed.
func (l *Limiter) AllowN(n int) bool {
	return l.Take(l.clock().Now(), n).Allowed
}

// Wait is ratekit.Wait(ctx, clock, l, n) with the Config's Clock.
func (l *Limiter) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	return ratekit.Wait(ctx, l.clock(), l, n)
}

// Reconfigure replaces the Limiter's Config at once, every field of it
// (Clock and OnLimitReached included), safely under concurrent use, or
// returns an error wrapping ratekit.ErrInvalidConfig and changes nothing.
// Takes in flight finish under either the old Config or the new one, never
// a mix. The window keeps its count, and the new Limit applies to the units
// it has already taken (a lower Limit may leave it full, or over-full,
// until it closes). With a longer Window or the same it keeps its start too,
// and closes at start + the new Window. With a shorter one it keeps its
// start if the new Window from there would still be open at the instant of
// the change (read on cfg.Clock; at the old window's last instant if that
// is earlier), and otherwise starts at that instant: the limiter cannot
// tell when in the old window its units were taken, and they may all be in
// the window a limiter of the new Window all along would have open then.
// An hour's window opened at 13:00, switched at 13:30 to a minute's, counts
// its units until 13:31. Where this departs from the Reconfigure contract
// (see the ratekit package documentation): a Take stamped within that
// window joins it and closes with it, as a Take joining any open window
// does, where a limiter of the new Window all along may have had no window
// open then, and opened one at that Take's stamp. Whether OnLimitReached
// has fired for the window carries over too. Reconfigure allocates and may
// be slow; it is meant for occasional changes of policy. It changes this
// Limiter alone, which gets parameters of its own (184 bytes, kept
// on the epoch it measures time from); the limiters that shared its old
// parameters keep them. Reconfigure reads the new Config's Clock once.
func (l *Limiter) Reconfigure(cfg Config) error {
	np, now, err := shared(cfg)
	if err != nil {
		return err
	}
	// The present shared read on cfg.Clock, as an instant: the clock is
	// read once.
	at := np.epoch.Add(time.Duration(now))
	// The zero Limiter, configured for the first time: a limiter as New
	// makes. Its zeroBlock is never written, so there is nothing to seal;
	// the CAS in Adopt orders racing first configurations.
	if l.c.Cur() == nil && l.c.Adopt(np, 0, np.freshBase(now)) {
		return nil
	}
	l.c.Renew(func(p *params, w, base int64) (*params, int64, int64) {
		if np == p.natural {
			// The same Config: a widened p stays as it is.
			return p.place(p.decode(w, base), base)
		}
		st := p.decode(w, base)
		q := np.onEpochOf(p, at)
		if st.count > 0 || st.spent() {
			// q's epoch, centuries from p's, may not hold the window (see
			// holds), under the old Window, which carried reads, or the
			// new: then it counts from the window's start.
			start := p.epoch.Add(time.Duration(st.start))
			if s := q.since(start); s == math.MinInt64 || s > math.MaxInt64-max(p.window, q.window) {
				q = q.movedTo(start)
			}
		}
		if p.marked {
			// The refund mark carries over, to q's epoch.
			q = q.withMark(q.since(p.epoch.Add(time.Duration(p.mark))))
		}
		st, base = rebase(st, base, p, q)
		q, st, base = q.settle(st.carried(q.since(at), p.window, q.window), base)
		return q.place(st, base)
	})
	return nil
}

// onEpochOf returns p, or a private copy of p, whose epoch is old's, so
// that the times of a limiter moving from old's parameters to p's carry
// over exactly: converting them from one epoch to another would be exact
// only for times that carry a monotonic reading or only for times that do
// not. It is p itself when the epochs are one, and when at, p's clock's
// present, is more than epochReach from old's epoch (Reconfigure to a clock
// that reads centuries away): then p's epoch serves, and the times are
// converted (see rebase).
func (p *params) onEpochOf(old *params, at time.Time) *params {
	if p.epoch == old.epoch {
		return p
	}
	if t := old.since(at); t < -epochReach || t > epochReach {
		return p
	}
	q := *p
	q.epoch, q.wall = old.epoch, old.wall
	q.natural = &q
	return &q
}

// Config returns the limiter's current configuration, as given to New or
// the last successful Reconfigure.
func (l *Limiter) Config() Config {
	b, _ := l.final()
	return b.P.cfg
}

func (l *Limiter) clock() clock.Clock {
	b, _ := l.final()
	return b.P.clock
}

// rebaseTime converts t, the time now relative to p's epoch, to a time
// relative to np's: the same t if their epoch is one (it is, but after a
// Reconfigure to a clock centuries away: see onEpochOf), else now read
// afresh on np's epoch.
func (p *params) rebaseTime(np *params, t int64, now time.Time) int64 {
	if np.epoch == p.epoch {
		return t
	}
	return np.since(now)
}
