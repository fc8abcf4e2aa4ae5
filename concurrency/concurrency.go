// Package concurrency limits how many units are in use at once: a semaphore
// whose units stay taken until they are released, for quotas such as
// Sanity's "at most 100 concurrent mutations and 500 concurrent queries per
// dataset".
//
// # Basics
//
// A Limiter is a ratekit.Holder. Take(now, n) admits n units if they fit
// under Limit and keeps them taken until Release(n); Refund is the same as
// Release. Take never blocks: a denial is a Decision whose RetryAfter is an
// estimate of when enough units will have come back (see Estimates). Acquire
// blocks instead, in first-come first-served order, until the units fit or
// its context is done. TryAcquire(n) is Take's yes or no alone, the call of
// golang.org/x/sync/semaphore's shape, for a caller that needs no Decision.
//
// Because a Limiter is a ratekit.Limiter it composes with rate limits:
// ratekit.AllOf(perSecond, concurrent) admits a request only if both admit
// it, and ratekit.ReleaseAll gives the concurrency units back when the
// request finishes (rate units come back with time).
//
// # Fairness
//
// Acquire callers wait in one FIFO queue. The head of the queue is served
// first even when a smaller request behind it would fit, so a large request
// is never starved by a stream of small ones. For the same reason Take and
// Peek deny every n > 0 while anyone is queued: a non-blocking Take that
// slipped into capacity freed for the head would starve it just the same.
//
// # Estimates
//
// Units come back when holders release them, not with time, so RetryAfter
// and ResetAfter are estimates built from an estimate of the mean hold time
// (see the Limiter doc for the estimator). They are 0 where there is nothing
// to wait for (RetryAfter of an admission, ResetAfter of a decision that
// leaves nothing held or queued), otherwise finite (between ratekit.MinRetry
// and 24 hours), and RetryAfter is never Never except for requests that can
// never fit (n < 0 or n > Limit).
//
// # Misuse
//
// A Release (or Refund) of more units than are held, a second Release of
// the same units included, or of a negative count, is refused: it changes
// nothing and does not panic, and Limiter.RejectedReleases counts it. Taking
// the units that are held would be no safer: the Limiter cannot tell whose
// units the bad call meant, and giving back units still in use would let it
// admit more than Limit. A count that keeps growing is a bug in the caller
// (a double release, or a release without a Take) worth an alert.
//
// A Limiter must not be copied after first use (see ratekit.Limiter; go
// vet reports a copy). A struct copy would share the original's queue of
// Acquire callers and its mutexes as they were at the copy, so every call
// that would touch them through the copy refuses instead: Acquire (when it
// must wait), Reconfigure and UnmarshalBinary return ErrCopied, and a
// Release that would hand units to the queue is refused as misuse. The
// copy's Take, TryAcquire and Release otherwise count on a word of its
// own: a second semaphore, which is not what anybody meant.
//
// # Persistence
//
// Held units belong to the process that holds them and are never saved:
// MarshalBinary saves only the hold-time estimate, so that a restarted
// process gives sensible RetryAfter estimates from its first denial.
package concurrency

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// MaxLimit is the largest Limit a Config may set: 2³¹−1 units, so that
// held plus any n that fits stays within the state word's 31 bits of held.
const MaxLimit = 1<<31 - 1

// ErrCopied is returned by Acquire, Reconfigure and UnmarshalBinary called
// through a struct copy of a Limiter (see Misuse in the package
// documentation).
var ErrCopied = errors.New("concurrency: Limiter used through a copy of it")

// Config configures a Limiter.
type Config struct {
	// Limit is how many units may be held at once, 1 to MaxLimit.
	Limit int
	// Name is the policy name reported in every Decision.
	Name string
	// Clock is read by New (and a zero Limiter's first Reconfigure) for
	// the estimator's epoch, by Allow, AllowN and Acquire, by TryAcquire
	// once per 64 units it admits, and when a Release, a cancelled Acquire or a
	// Reconfigure hands units to queued Acquire callers (to time the
	// hold-time estimate); nil is the real clock.
	// Take, Peek, Refund and Release with nobody queued never read it.
	Clock clock.Clock
}

// Validate reports whether c is usable: an error wrapping
// ratekit.ErrInvalidConfig if Limit is not in 1..MaxLimit.
func (c Config) Validate() error {
	if c.Limit < 1 {
		return core.Invalid("concurrency", "Limit must be positive, got %d", c.Limit)
	}
	if c.Limit > MaxLimit {
		return core.Invalid("concurrency", "Limit %d is above MaxLimit %d", c.Limit, MaxLimit)
	}
	return nil
}

// Limiter is a counting semaphore of Limit units that is also a
// ratekit.Holder: units taken by Take, AllowN, TryAcquire or Acquire stay
// taken until Release (or Refund) gives them back.
//
// All methods are safe for concurrent use. Take, TryAcquire, Peek, Refund
// and Release are lock-free and allocate nothing while no Acquire caller is
// queued; with callers queued, Take, TryAcquire and Peek still take no lock
// (they deny at once) and Release takes a mutex to hand the units to the
// queue.
//
// The zero Limiter has Limit 0 until Reconfigure, which starts it as New
// would (see The zero value at ratekit.Limiter).
//
// # Hold-time estimate
//
// A denial's RetryAfter and every ResetAfter derive from hold, an estimate
// of how long a unit stays taken. Release carries no time, so hold is
// measured from the times of admissions alone, by Little's law: over an
// interval, the mean time a unit is held is the area under the held count
// (unit-nanoseconds) divided by the units admitted in it. Precisely:
//
//   - An admission (an allowed Take of n > 0, a fast Acquire, a grant to
//     queued Acquire callers, or the TryAcquire that takes the count of
//     units ever admitted across a multiple of 64; all but Take timed by
//     Config.Clock, and every admission counted) at t, finding h units
//     held before it, closes the interval opened by the last sampled
//     admission at t₁ that left h₁ held. The held count moves in between
//     (down with each Release, up with admissions that did not sample);
//     the interval's area is taken as min(h₁, h)·(t−t₁), a cautious
//     stand-in that is close to the truth while the limiter is busy, which
//     is when estimates are asked for. The sample is that area divided by
//     the units admitted in (t₁, t], rounded down and capped at 24h.
//   - An interval with nothing held at one end (min(h₁, h) = 0) samples
//     nothing: it only says that holds were shorter than it (an idle gap,
//     or a light load whose units come back before the next admission).
//     Nor does one that runs backwards (t ≤ t₁) or lasts over 24h (a jump
//     in the time passed in, the zero time.Time, say). Either way a new
//     interval opens at t.
//   - hold moves an eighth of the way to each sample (an exponentially
//     weighted moving average in integer nanoseconds); the first sample
//     sets it.
//   - Only admissions at least max(hold/4, 100µs) after the last sampled
//     one sample, so between samples the estimator costs an admission one
//     atomic load; under contention an admission that finds another one
//     sampling, or one between its compare-and-swap and adding the count
//     it carried past a multiple of 64, skips its turn.
//
// Until the first sample, hold is 1ms. With k units that must be released
// before a request fits (held + queued + n − Limit) and h held, RetryAfter
// is hold·k/h rounded up: the time k units take to come back at the rate
// Little's law predicts, h/hold. ResetAfter is hold·(h+queued)/h, 0 when
// nothing is held. Both are clamped to [ratekit.MinRetry, 24h], so they
// are positive and finite; the arithmetic is 128-bit and cannot overflow.
// The estimate is only as good as the load is steady: it is a hint for
// Retry-After headers and back-off, and Acquire, which needs none, is the
// way to wait for units.
type Limiter struct {
	// state is the packed atomic word (see the state type). Every decision
	// is made on one snapshot of it and every change is one CAS on it.
	state atomic.Uint64
	// lim is the Limit and gen of the newest configuration, packed as
	// limWord does, so that TryAcquire and Release decide on two loads
	// from this cache line instead of the params pointer chase (see
	// limWord). 0, the zero Limiter's, is Limit 0 at gen 0.
	lim atomic.Uint64
	// admitted plus the state word's count is the number of units ever
	// admitted, mod 2⁶⁴ (admittedCount): the divisor of a hold sample. The
	// CAS that admits n units adds n to the word's count, mod 64, so that
	// counting costs an admission no write of its own; the admission
	// whose CAS carries the count past a multiple of 64 adds those
	// multiples here (see carry), marked in carrying meanwhile.
	admitted atomic.Uint64
	// carrying counts the admissions whose CAS carries the count past a
	// multiple of 64 and that have not yet added the carry to admitted:
	// each adds 1 before its CAS and takes it away after its carry (or
	// its failed CAS), so that the sampler can tell when admitted and the
	// word's count may disagree (see admittedCount).
	carrying atomic.Int64
	// next is the earliest time (ns since epoch) at which an admission
	// samples the hold time; math.MinInt64 samples the next one.
	next atomic.Int64
	// hold is the hold-time estimate in ns; 0 before the first sample.
	hold atomic.Int64
	// rejected counts the Releases refused as misuse (RejectedReleases).
	rejected atomic.Uint64
	// queued is the sum of n over queued Acquire callers, nqueued their
	// number. Written under mu, read lock-free by decisions and Waiting.
	queued, nqueued atomic.Int64

	// cfg holds the configurations in effect for the state word's last two
	// gens, the one of gen g at cfg[g&1] (see config).
	cfg   [2]atomic.Pointer[params]
	epoch time.Time // time origin of the estimator; fixed at New (a zero Limiter's: its first Reconfigure)

	// mu guards the queue. While the state's waiting bit is set only mu's
	// holder changes state (see Release), so the queue and the word change
	// together.
	mu         sync.Mutex
	head, tail *waiter

	// smu guards smp. Admissions only TryLock it: they never wait for it.
	smu sync.Mutex
	smp sampler

	// self is the Limiter's own address, stored by New (a zero Limiter's:
	// by its first Reconfigure), so that a struct copy, whose self is its
	// original's, refuses to touch the queue and mutexes it shares (see
	// copied).
	self atomic.Pointer[Limiter]
}

// copied reports whether l is a struct copy of a Limiter that was in use
// (see Misuse in the package documentation). Slow paths only: it guards
// the queue and the mutexes, which the hot paths do not touch.
func (l *Limiter) copied() bool {
	s := l.self.Load()
	return s != nil && s != l
}

// params is one configuration, immutable once published. Limit and Name
// travel together, so that every Decision is of one configuration.
type params struct {
	limit int
	name  string
	clock clock.Clock // nil: the real clock (the zero Limiter)
	gen   uint32      // the state word's gen while this config is in effect
}

// zeroParams is the zero Limiter's configuration: Limit 0, gen 0.
var zeroParams params

var (
	_ ratekit.Holder  = (*Limiter)(nil)
	_ ratekit.Limiter = (*Limiter)(nil)
)

// New returns a Limiter of cfg.Limit units with none held, or an error
// wrapping ratekit.ErrInvalidConfig.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clk := core.Clock(cfg.Clock)
	l := &Limiter{epoch: clk.Now()}
	l.cfg[0].Store(&params{limit: cfg.Limit, name: cfg.Name, clock: clk})
	l.lim.Store(limWord(cfg.Limit, 0))
	l.next.Store(math.MinInt64)
	l.self.Store(l)
	return l, nil
}

// state is the limiter's packed atomic word:
//
//	bits  0..30  held: units taken and not released, 0..MaxLimit
//	bits 31..56  gen: the configuration's generation, mod 2²⁶
//	bit  57      waiting: Acquire callers are queued
//	bits 58..63  count: units ever admitted, mod 64 (see Limiter.admitted)
//
// The configuration of gen g (Limit, Name, Clock) is the immutable params
// at cfg[g&1]. Reconfigure, under mu, publishes the next gen's params in
// the other slot, then moves the word to that gen in one CAS: that CAS is
// the instant the new configuration takes effect. A decision is made on a
// word s and the params of s's gen (config), so its Limit and Policy are
// of one configuration, and a Take decided on one gen cannot succeed after
// the next is in place, because its CAS compares the whole word. The slot
// being filled is never the one in effect, so no reader waits for
// Reconfigure; a reader whose word is two or more gens old finds another
// gen's params in its slot and reloads the word. (A reader would have to
// be stalled across 2²⁶ Reconfigures for its gen to come round again.)
//
// An admission of n adds n·admitUnit to the word: n to held, where held+n
// ≤ limit ≤ 2³¹−1 leaves held's 31 bits, so no carry reaches gen; and n to
// count, whose carry leaves the word's top bit and is lost, so that count
// is the number of units admitted mod 64 at no cost. A Release subtracts n
// ≤ held from held alone.
type state uint64

const (
	heldMask   = 1<<31 - 1
	genShift   = 31
	genMask    = 1<<26 - 1
	waitingBit = 1 << 57
	countShift = 58
	// admitUnit is what an admission of one unit adds to the word.
	admitUnit = 1 | 1<<countShift
)

func (s state) held() int     { return int(s & heldMask) }
func (s state) gen() uint32   { return uint32(s>>genShift) & genMask }
func (s state) waiting() bool { return s&waitingBit != 0 }
func (s state) count() uint64 { return uint64(s) >> countShift }

// pack is a word of held units, gen and waiting, whose count is count mod
// 64.
func pack(held int, gen uint32, waiting bool, count uint64) state {
	s := state(held) | state(gen&genMask)<<genShift | state(count)<<countShift
	if waiting {
		s |= waitingBit
	}
	return s
}

// admit returns the word s with n more units held and counted: n ≤
// limit−held, so held does not overflow (see state).
func admit(s state, n int) uint64 { return uint64(s) + uint64(n)*admitUnit }

// admitCAS admits n units with one CAS from the word s to admit(s, n),
// and reports whether the CAS succeeded. If the admission carries the
// word's count past a multiple of 64, admitCarrying does it, with the
// carry.
func (l *Limiter) admitCAS(s state, n int) bool {
	if s.count()+uint64(n) >= trySampleEvery {
		return l.admitCarrying(s, n)
	}
	return l.state.CompareAndSwap(uint64(s), admit(s, n))
}

// admitCarrying is admitCAS for an admission that carries the count: it
// marks a carry under way before the CAS, adds to admitted the multiples
// of 64 the count was carried past (the count mod 64 is in the word) if
// the CAS succeeded, and then unmarks it.
func (l *Limiter) admitCarrying(s state, n int) bool {
	l.carrying.Add(1)
	ok := l.state.CompareAndSwap(uint64(s), admit(s, n))
	if ok {
		l.carry(s, n)
	}
	l.carrying.Add(-1)
	return ok
}

// carry adds to admitted the multiples of 64 that an admission of n
// units carried the word's count past, its CAS having found the word s.
// The admission marks the carry under way (carrying) before its CAS and
// unmarks it after its carry.
func (l *Limiter) carry(s state, n int) {
	if k := (s.count() + uint64(n)) &^ (trySampleEvery - 1); k != 0 {
		if h := carryHook; h != nil {
			h()
		}
		l.admitted.Add(k)
	}
}

// carryHook, when set (by tests only), is called by an admission between
// its CAS and its carry: see SetCarryHook.
var carryHook func()

// admittedCount returns the units ever admitted, mod 2⁶⁴ (admitted and
// the word's count), as of its load of the word, and true; or false if it
// cannot tell. Read apart, the two disagree by 64 or more while an
// admission is between its CAS and its carry, and a sample dividing by
// that count would be off by as much (65 times too long, for an interval
// of 65 units). So it reads admitted around the word and then carrying:
// an admission that carried before the first read is in both; one whose
// carry falls between the two reads of admitted changes it; one whose CAS
// came before the word's load and whose carry comes after the second read
// was still marked in carrying when it was read. Otherwise the sum is
// exact at the word's load.
func (l *Limiter) admittedCount() (uint64, bool) {
	a := l.admitted.Load()
	s := state(l.state.Load())
	if l.admitted.Load() != a || l.carrying.Load() != 0 {
		return 0, false
	}
	return a + s.count(), true
}

// limWord packs a configuration's Limit and gen into Limiter.lim: Limit in
// bits 0..30 (held's), gen in the state word's gen bits, everything else
// clear. So (s^c)&limCheck == 0, on a word s and a lim c, tells a fast
// path both that nobody is queued and that c's Limit is the one in effect
// while the word is s.
//
// Reconfigure stores the next gen's limWord before the CAS that moves the
// word to that gen, as it publishes the params first (see state), so a
// word of gen g is only ever read with a lim of gen g or later. A fast
// path that finds lim's gen ahead of its word's (a Reconfigure under way,
// or its word stale) takes the slow path, which reads the params; when
// the gens agree, lim's Limit is gen g's, and the CAS, comparing the
// whole word, can succeed only while gen g is still in effect. (Equal
// gens of different configurations would need the word read before and
// lim after 2²⁶ Reconfigures, as for the params slots.)
func limWord(limit int, gen uint32) uint64 {
	return uint64(limit) | uint64(gen&genMask)<<genShift
}

// limCheck selects the bits in which a word and its lim must agree: gen,
// and waiting, which limWord leaves clear.
const limCheck = genMask<<genShift | waitingBit

// config returns the configuration in effect while the word is s, or nil if
// s is stale: the word has moved on by two or more gens since it was read,
// and the caller must reload it. The zero Limiter's is zeroParams.
func (l *Limiter) config(s state) *params {
	p := l.cfg[s.gen()&1].Load()
	if p == nil {
		// Only the zero Limiter has an empty slot for its gen: New fills
		// gen 0's, Reconfigure fills a gen's before the word reaches it.
		return &zeroParams
	}
	if p.gen != s.gen() {
		return nil
	}
	return p
}

// Take takes n units at now if they fit under Limit and nobody is queued in
// Acquire. The units stay taken until Release(n). now only times the
// hold-time estimate: a concurrency limit admits the same whatever the
// time. The Decision's Limit is the capacity, Remaining the units still
// free after it (0 while callers are queued), Window 0, ResetAfter and a
// denial's RetryAfter are estimates (see Limiter).
//
// Take is lock-free (an admission that samples the hold time try-locks the
// estimator's mutex, and skips the sample rather than wait for it),
// allocates nothing and never reads the Config's clock.
func (l *Limiter) Take(now time.Time, n int) ratekit.Decision {
	for {
		s := state(l.state.Load())
		p := l.config(s)
		if p == nil {
			continue // s is two Reconfigures old
		}
		// The estimate is read before the CAS and the Decision built from
		// it after, so that this Take's own sample does not change its
		// answer: Peek just before it says the same.
		hold := l.hold.Load()
		// n > limit−held, not held+n > limit: n is any int, and held+n
		// wraps for n near MaxInt (issue #16). limit−held cannot wrap,
		// both being in 0..2³²−1; it is negative while a Reconfigure has
		// put held above limit, which denies every n > 0.
		if n <= 0 || s.waiting() || n > p.limit-s.held() {
			// n == 0 or a denial: nothing to write.
			v := l.decide(s, p, n, hold)
			return ratekit.Decision{
				Allowed: v.retry == 0, Limit: p.limit, Remaining: v.remaining,
				ResetAfter: v.reset, RetryAfter: v.retry, Policy: p.name,
			}
		}
		// 0 < n ≤ limit−held: admit adds n to held and to count.
		// admitCAS, spelled out: it does not inline, and Take is the
		// hot path (a carry, once per 64 units, is admitCarrying's).
		if s.count()+uint64(n) < trySampleEvery {
			if !l.state.CompareAndSwap(uint64(s), admit(s, n)) {
				continue
			}
		} else if !l.admitCarrying(s, n) {
			continue
		}
		l.sample(now, s.held(), n)
		// decide's allowed case, spelled out; FuzzModel holds the two to
		// the same answers.
		return ratekit.Decision{
			Allowed: true, Limit: p.limit, Remaining: p.limit - s.held() - n,
			ResetAfter: estimate(hold, 1, 1), Policy: p.name,
		}
	}
}

// Peek is ratekit.Limiter's Peek. It is lock-free and allocates nothing.
func (l *Limiter) Peek(now time.Time, n int) ratekit.Decision {
	for {
		s := state(l.state.Load())
		if p := l.config(s); p != nil {
			v := l.decide(s, p, n, l.hold.Load())
			return ratekit.Decision{
				Allowed: v.retry == 0, Limit: p.limit, Remaining: v.remaining,
				ResetAfter: v.reset, RetryAfter: v.retry, Policy: p.name,
			}
		}
	}
}

// verdict is decide's answer in four words, so that it comes back in
// registers: the configuration it was made under (Limit and Policy), and
// the rest of the Decision. It is allowed exactly when retry is 0: every
// denial's RetryAfter is positive (an estimate of at least
// ratekit.MinRetry, or ratekit.Never).
//
// Take and Peek build their Decision from it in their return statements:
// built there from values in registers, a Decision goes back in registers;
// built anywhere else (in a helper, even an inlined one) it goes through a
// temporary filled with narrow stores and copied with wide loads, which
// stall on store forwarding. That stall cost more than the two CASes of a
// Take and its Release together.
type verdict struct {
	p            *params
	remaining    int
	reset, retry time.Duration
}

// decide is the decision on n units given the snapshot s, its
// configuration p and the hold estimate hold. It reads the queue size
// without synchronising it with s: like hold, it only shapes the
// estimates, never whether a request is allowed.
func (l *Limiter) decide(s state, p *params, n int, hold int64) verdict {
	held, limit, waiting := s.held(), p.limit, s.waiting()
	// The queue's units in int64, and every sum with them too: held, n
	// and limit are each below 2³¹, but queued is the sum of any number
	// of callers' n, which an int of 32 bits would wrap (to an estimate at
	// the floor). An int64 holds it: it would take 2³² callers queued, of
	// 2³¹ units each, to come near its end.
	var queued int64
	if waiting {
		queued = l.queued.Load()
	}
	remaining := 0
	if !waiting && held < limit {
		remaining = limit - held
	}
	retry, reset := time.Duration(0), time.Duration(0) // retry 0: allowed
	switch {
	case n < 0 || n > limit:
		retry = ratekit.Never
	case n == 0:
	case waiting || n > limit-held: // as in Take: held+n could wrap
		// Units that must come back first: the excess of everything
		// wanted (held, the queue ahead, then n) over the limit. It is at
		// least 1 when the word and the queue agree; estimate clamps it.
		retry = estimate(hold, int64(held)+queued+int64(n)-int64(limit), held)
	default:
		remaining -= n
		held += n
	}
	if held > 0 {
		reset = estimate(hold, int64(held)+queued, held)
	}
	return verdict{p: p, remaining: remaining, reset: reset, retry: retry}
}

// Refund is Release(n): on a Holder, giving back units for work that did not
// happen and for work that finished are the same. at is ignored. It is what
// ratekit.TakeAll uses to roll back a composite Take one member denied.
func (l *Limiter) Refund(_ time.Time, n int) { l.Release(n) }

// Release gives back n units taken by an allowed Take, AllowN or Acquire,
// and hands them to queued Acquire callers in FIFO order. Release(0) does
// nothing.
//
// A Release of a negative count or of more units than are held (a second
// Release of the same units, say) is misuse: it changes nothing, adds one
// to RejectedReleases and returns. Giving back what is held instead would
// free units that other callers still use, and the Limiter would admit
// more than Limit.
//
// It is lock-free while nobody is queued; otherwise it takes the queue's
// mutex and reads the Config's clock to time the hand-over.
func (l *Limiter) Release(n int) {
	// The common case: nobody queued, 0 < n ≤ held, and no other CAS in
	// between. Anything else (n == 0, misuse, a queue, a lost race) is
	// release's loop from a fresh load.
	if s := l.state.Load(); s&waitingBit == 0 && n > 0 && n <= int(s&heldMask) &&
		l.state.CompareAndSwap(s, s-uint64(n)) {
		return
	}
	l.release(n)
}

// release is Release past its first attempt.
func (l *Limiter) release(n int) {
	if n == 0 {
		return
	}
	for {
		s := state(l.state.Load())
		if n < 0 || n > s.held() {
			l.rejected.Add(1)
			return
		}
		if s.waiting() {
			l.releaseQueued(n)
			return
		}
		// n ≤ held: subtracting n from the word only lowers held.
		if l.state.CompareAndSwap(uint64(s), uint64(s)-uint64(n)) {
			return
		}
	}
}

// RejectedReleases returns how many Release and Refund calls since New were
// refused as misuse (a negative count, or more units than were held) and
// changed nothing. It is safe for concurrent use; a count above zero means
// a caller releases units it does not hold.
func (l *Limiter) RejectedReleases() uint64 { return l.rejected.Load() }

// Allow is AllowN(1).
func (l *Limiter) Allow() bool { return l.AllowN(1) }

// AllowN is shorthand for Take(clock.Now(), n).Allowed, reading the
// Config's clock. The caller must Release(n) when an allowed AllowN's work
// is done.
func (l *Limiter) AllowN(n int) bool { return l.Take(l.clock().Now(), n).Allowed }

// clock returns the Config's clock in effect now.
func (l *Limiter) clock() clock.Clock {
	for {
		if p := l.config(state(l.state.Load())); p != nil {
			if p.clock == nil {
				return clock.New()
			}
			return p.clock
		}
	}
}

// Held returns the units held now, for metrics. After a Reconfigure to a
// lower Limit it may exceed Limit until enough are released.
func (l *Limiter) Held() int { return state(l.state.Load()).held() }

// Waiting returns how many Acquire callers are queued now.
func (l *Limiter) Waiting() int { return int(l.nqueued.Load()) }

// Idle reports whether nothing is held and nobody is queued, so that
// dropping the Limiter (from a ratekit.Keyed, say) loses only its hold-time
// estimate, which shapes RetryAfter but no admission. now is ignored.
func (l *Limiter) Idle(time.Time) bool {
	s := state(l.state.Load())
	return s.held() == 0 && !s.waiting()
}

// Reconfigure applies cfg at once: Limit, Name and Clock. It returns an
// error wrapping ratekit.ErrInvalidConfig, changing nothing, if cfg is
// invalid.
//
// Units already held count against the new Limit: after lowering it below
// Held, nothing more is admitted until enough are released. Queued Acquire
// callers asking for more than the new Limit fail with an error wrapping
// ratekit.ErrExceedsLimit; raising it admits the queue's head and those
// after it that now fit, in order. Safe for concurrent use.
func (l *Limiter) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if l.copied() {
		return ErrCopied // its mu may have been copied locked
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Only mu's holder changes gen, so the word's gen is the one in effect
	// until settle below moves it on.
	g := (state(l.state.Load()).gen() + 1) & genMask
	p := &params{limit: cfg.Limit, name: cfg.Name, clock: core.Clock(cfg.Clock), gen: g}
	if l.cfg[0].Load() == nil && l.cfg[1].Load() == nil {
		// The first configuration of a zero Limiter: start the estimator
		// as New does. A zero epoch would put every time passed in 292
		// years after it (now.Sub saturates), one instant, at which
		// nothing is ever sampled and every admission would try-lock the
		// sampler. Nothing reads epoch yet (a Limit of 0 admits nothing,
		// so nothing samples) and the settle below publishes it: an
		// admission that sees the new gen sees the epoch.
		l.epoch = p.clock.Now()
		l.next.Store(math.MinInt64)
		l.self.Store(l)
	}
	l.cfg[g&1].Store(p) // the slot of gen g−1 stays as it is
	l.lim.Store(limWord(cfg.Limit, g))
	if h := reconfigureHook; h != nil {
		h()
	}
	for w := l.head; w != nil; {
		next := w.next
		if w.n > cfg.Limit {
			l.unlink(w)
			w.err = exceeds(w.n, cfg.Limit)
			close(w.ready)
		}
		w = next
	}
	l.settle(0, p)
	return nil
}

// reconfigureHook, when set (by tests only), is called by Reconfigure
// midway, with mu held: see SetReconfigureHook.
var reconfigureHook func()

// exceeds is the error of an Acquire of n units that Limit can never admit.
func exceeds(n, limit int) error {
	return fmt.Errorf("concurrency: Acquire(%d) with Limit %d: %w", n, limit, ratekit.ErrExceedsLimit)
}

// stateVersion is the format version of MarshalBinary's output.
const stateVersion = 1

// MarshalBinary saves the hold-time estimate, the only state that outlives
// the process: the 4-byte ratekit header (algorithm concurrency, version 1)
// then the estimate in nanoseconds as an unsigned varint (0: none yet).
// Held units and queued callers belong to this process and are not saved.
func (l *Limiter) MarshalBinary() ([]byte, error) {
	b := core.AppendHeader(make([]byte, 0, core.HeaderLen+binary.MaxVarintLen64), core.Concurrency, stateVersion)
	return binary.AppendUvarint(b, uint64(l.hold.Load())), nil
}

// UnmarshalBinary restores a hold-time estimate saved by MarshalBinary and
// starts a new measuring interval. Held units, the queue and the
// configuration are left as they are. Bytes that are truncated, of another
// algorithm or version, or hold an estimate above 24h are rejected with an
// error wrapping ratekit.ErrInvalidState, and the Limiter is unchanged.
func (l *Limiter) UnmarshalBinary(b []byte) error {
	payload, err := core.ParseHeader(b, core.Concurrency, stateVersion)
	if err != nil {
		return err
	}
	r := core.NewReader(core.Concurrency, payload)
	hold := r.Uint64()
	if hold > maxEstimate {
		r.Fail("hold estimate %dns is above %v", hold, time.Duration(maxEstimate))
	}
	if err := r.Err(); err != nil {
		return err
	}
	if l.copied() {
		return ErrCopied // its smu may have been copied locked
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	l.hold.Store(int64(hold))
	l.smp = sampler{}
	l.next.Store(math.MinInt64)
	return nil
}
