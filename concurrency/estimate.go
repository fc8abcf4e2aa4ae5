package concurrency

import (
	"math"
	"math/bits"
	"time"

	"github.com/ratekit/ratekit"
)

// The estimator's constants; the Limiter doc states them for users.
const (
	// defaultHold is the hold estimate before any sample: short enough that
	// a first denial does not send clients away for long, and equal to
	// ratekit.MinRetry, the floor of every estimate anyway.
	defaultHold = int64(time.Millisecond)
	// maxEstimate caps samples, the estimate, and RetryAfter and ResetAfter:
	// 24h is finite, fits any Retry-After header, and is far beyond what a
	// client would wait on a semaphore. It also bounds the measuring
	// interval, so a jump in the time passed in (the zero time.Time, say)
	// cannot inflate a sample.
	maxEstimate = uint64(24 * time.Hour)
	// minSpacing is the least time between two samples: it bounds the
	// estimator's work at 10,000 samples a second however short holds are.
	minSpacing = int64(100 * time.Microsecond)
	// ewmaShift sets the moving average's weight: each sample moves the
	// estimate by 1/2^ewmaShift of the difference, so it forgets old
	// samples over about eight of them, or two hold times at the spacing
	// of a quarter hold between samples.
	ewmaShift = 3
	// maxSpacing bounds the time between two samples, max(hold/4,
	// minSpacing): the estimate is at most maxEstimate.
	maxSpacing = int64(maxEstimate / 4)
)

// sampler is the open measuring interval, guarded by Limiter.smu. The zero
// sampler has no interval open.
type sampler struct {
	open bool
	t    int64  // ns since epoch of the admission that opened it
	h    int    // units held just after that admission
	c    uint64 // Limiter.admittedCount just after that admission
}

// sample records an admission of n units at now that found before units
// held, for the hold-time estimate. Besides the count in the state word
// (and the carry of its multiples of 64, once per 64 units), it is
// the only estimator work on the hot path: in the common case one clock
// subtraction and one atomic load, then nothing. It never blocks: if
// another goroutine is sampling, this admission skips its turn.
func (l *Limiter) sample(now time.Time, before, n int) {
	// now.Sub saturates at ±292 years, so t is always defined; any value is
	// safe below (differences are taken in uint64 after ordering checks).
	t := int64(now.Sub(l.epoch))
	// Too soon is the spacing before next, at most maxSpacing; a time
	// further before next went back past the open interval (after a Take
	// stamped far ahead, say: next saturates at the end of time), and is
	// sampled, which opens a new interval there. (Skipping every t < next
	// stopped the estimator for good after one Take at year 9999.) d
	// wraps only for times centuries apart, to a negative value: sampled.
	if d := l.next.Load() - t; d > 0 && d <= maxSpacing || !l.smu.TryLock() {
		return
	}
	// While another admission's carry is under way the count is not
	// known: this one skips its turn, as when another is sampling.
	if c, ok := l.admittedCount(); ok {
		l.sampleLocked(t, before, n, c)
	}
	l.smu.Unlock()
}

// sampleLocked closes the open interval at t, folds its sample into the
// estimate, and opens the next interval. c is the admitted count including
// this admission. Called with smu held.
func (l *Limiter) sampleLocked(t int64, before, n int, c uint64) {
	p := &l.smp
	hold := l.hold.Load()
	// Under contention the admitted count read here may include
	// admissions after this one's CAS (never lack one whose carry is under
	// way: see admittedCount), and intervals may be closed out of time
	// order; int64(c-p.c) <= 0 and t <= p.t catch the inversions, which
	// open a new interval without a sample, and the rest skews one
	// sample, which the moving average dilutes.
	//
	// h == 0 means that at one end of the interval nothing was held: all
	// that the interval says is that holds were shorter than it (an idle
	// gap, or a light load whose units come back before the next
	// admission). A sample of 0 would drag the estimate down for no
	// reason, so there is none.
	if h := min(p.h, before); h > 0 && p.open && t > p.t && int64(c-p.c) > 0 {
		// t > p.t, so the difference of the two int64s is exact in uint64.
		if dt := uint64(t) - uint64(p.t); dt <= maxEstimate {
			s := holdSample(h, dt, c-p.c)
			if hold == 0 {
				hold = s
			} else {
				// Both are in [0, maxEstimate] < 2⁴⁷: no overflow. Go's
				// division truncates toward zero, so the estimate settles
				// within 2^ewmaShift−1 ns of a steady sample.
				hold += (s - hold) / (1 << ewmaShift)
			}
			l.hold.Store(hold)
		}
	}
	*p = sampler{open: true, t: t, h: before + n, c: c}
	l.next.Store(satAdd(t, max(hold/4, minSpacing)))
}

// holdSample is the mean hold of units admitted over an interval of dt ns
// in which h units were held throughout and units were admitted: h·dt/units
// by Little's law, rounded down and capped at maxEstimate. h ≤ 2³¹ and
// dt ≤ 2⁴⁷, so the 128-bit product is exact; the quotient is formed only
// when it fits in 64 bits (hi < units), which is when Div64 cannot panic.
func holdSample(h int, dt, units uint64) int64 {
	hi, lo := bits.Mul64(uint64(h), dt)
	if hi >= units {
		return int64(maxEstimate)
	}
	q, _ := bits.Div64(hi, lo, units)
	return int64(min(q, maxEstimate))
}

// estimate is how long k units take to come back when h are held and each
// is held for hold ns on average: hold·k/h rounded up, h/hold being the
// rate at which held units come back. hold 0 (no sample yet) is
// defaultHold. k and h below 1 count as 1, so a momentary disagreement
// between the state word and the queue size cannot divide by zero or give
// a non-positive answer. The result is clamped to [ratekit.MinRetry,
// maxEstimate]: positive, finite and never ratekit.Never.
//
// k is an int64 whatever int's width: the queue's units in it are any
// number of callers' n. hold < 2⁴⁷ and k < 2⁶³, so hold·k fits in 128
// bits whatever the queue's length; the division is formed only when the
// quotient fits in 64 bits (hi < h), which is when Div64 cannot panic.
func estimate(hold, k int64, h int) time.Duration {
	if hold <= 0 {
		hold = defaultHold
	}
	k, h = max(k, 1), max(h, 1)
	q := uint64(hold)
	if k != int64(h) { // k == h, the usual ResetAfter, needs no division
		hi, lo := bits.Mul64(uint64(hold), uint64(k))
		if hi >= uint64(h) {
			return time.Duration(maxEstimate)
		}
		var r uint64
		q, r = bits.Div64(hi, lo, uint64(h))
		if r != 0 {
			q++
		}
	}
	return time.Duration(min(max(q, uint64(ratekit.MinRetry)), maxEstimate))
}

// satAdd is a+b for b ≥ 0, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
