package tokenbucket

import (
	"context"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
)

// Wait blocks until n units are available and takes them, reading the time
// on the Config's Clock and sleeping on its timers. It returns the Decision a
// Take at the instant it returns would have reported (reservations made
// after it aside), and nil. It is safe for concurrent use.
//
// Unlike ratekit.Wait, which retries, Wait reserves: it moves the TAT forward
// by n units at once, claiming capacity that will exist only in the future,
// and sleeps until then, as golang.org/x/time/rate's Wait does. Waiters are
// therefore served in the order they called Wait, each at the exact instant
// its units become available, and a later Take finds the reserved units
// gone. It returns at once, having reserved nothing, with the denial a Take
// would have met:
//   - ratekit.ErrExceedsLimit if n < 0 or n > Burst;
//   - ratekit.ErrWaitExceedsDeadline (errors.Is(err, context.DeadlineExceeded)
//     holds) if the units would become available after ctx's deadline, read
//     on the Config's Clock;
//   - ctx.Err() if ctx is already done (then with a zero Decision).
//
// If ctx is done while Wait sleeps, it returns ctx.Err() and gives the
// reservation back, as much of it as no later caller has claimed in turn
// (x/time/rate's Reservation.CancelAt rule): with E how far the TAT has
// moved past this reservation's end since it was made, n emission intervals
// less E are given back, if that is positive. Capacity that later
// reservations were stacked on stays taken, because they sleep until times
// computed with it taken; giving it back would let a newcomer in ahead of
// them, at the same instants. Nothing is given back once the reservation's
// time has come, or if Reconfigure or UnmarshalBinary ran since, or the
// limiter moved its epoch since (see Time in the package documentation:
// at time scales finer than 1 ns, after a second or more).
//
// This is safe (never admits more than GCRA would) provided every Take that
// followed the reservation was stamped no later than the cancellation, as it
// is when all callers read the same clock.
func (l *Limiter) Wait(ctx context.Context, n int) (ratekit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return ratekit.Decision{}, err
	}
	for {
		b, tat := l.load()
		p := b.P
		now := p.clk.Now()
		ns := p.since(now)
		var dec ratekit.Decision
		if n < 0 || int64(n) > p.burst {
			return l.Peek(now, n), ratekit.ErrExceedsLimit // Take's denial, exact at any time
		}
		if ns > p.rng && n > 0 {
			l.rebase(b, now, p.rng)
			continue
		}
		if ns < -p.rng {
			if n == 0 {
				return l.Peek(now, 0), nil // exact before the fast range (see far.go)
			}
			if l.moveBack(b, now, ns) {
				// Before the fast range: decided at now, exactly, from
				// an epoch moved back to it (see far.go).
				continue
			}
			// Not moved (the state does not fit from now, see movedTo):
			// decided as Take decides, exactly; denied, nothing is
			// reserved, as the state cannot hold a reservation from
			// now: sleep the wait out and ask again.
			dec := l.Take(now, n) // moveBack replaced b: Take loads again
			if dec.Allowed {
				return dec, nil
			}
			if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < dec.RetryAfter {
				return dec, ratekit.ErrWaitExceedsDeadline
			}
			if err := p.sleep(ctx, max(dec.RetryAfter, ratekit.MinRetry)); err != nil {
				return dec, err
			}
			continue
		}
		next, store, v := p.decide(tat, ns, n)
		p.fill(&dec, v)
		if dec.Allowed { // available now: a plain Take
			if !store {
				return dec, nil
			}
			s, _ := p.clamp(ns)
			cell.Raise(&b.Aux, s)
			if b.W.CompareAndSwap(tat, next) {
				return dec, nil
			}
			continue
		}
		// Denied: reserve. The new TAT is max(TAT, s) + n*p as for a Take,
		// but past s + tau by the time to wait.
		wait := dec.RetryAfter
		if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < wait {
			return dec, ratekit.ErrWaitExceedsDeadline
		}
		s, _ := p.clamp(ns)
		next = max(tat, s) + int64(n)*p.p
		if next > maxTAT {
			// The queue of reservations reaches further past the epoch than
			// the state can hold (2^62 units: 146 years at q = 1, 1.07 s at
			// q = 2^32). Move the epoch up to now if it is behind; if it is
			// not, sleep until the queue has drained enough, then ask again
			// (a newcomer may get in first in that case alone).
			if ns > 0 {
				l.rebase(b, now, 0)
			} else if err := p.sleep(ctx, max(p.after(next-maxTAT, 0), ratekit.MinRetry)); err != nil {
				return dec, err
			}
			continue
		}
		cell.Raise(&b.Aux, s)
		if !b.W.CompareAndSwap(tat, next) {
			continue
		}
		// What a Take at the reserved instant would report, ignoring
		// reservations made after this one: wait ns from now, the empty part
		// of the bucket is next - s - wait*q (at most tau).
		granted := dec
		granted.Allowed, granted.RetryAfter = true, 0
		nd := next - s // > tau, <= 2^62 + 2^60
		dd := max(nd-p.divQ.Ceil(nd-p.tau)*p.q, 0)
		granted.Remaining = p.holds(dd)
		granted.ResetAfter = p.after(dd, 0)
		if err := p.sleep(ctx, wait); err != nil {
			l.cancel(b, next, n)
			return dec, err
		}
		return granted, nil
	}
}

// sleep sleeps for d on the clock of p, or until ctx is done.
func (p *params) sleep(ctx context.Context, d time.Duration) error {
	t := p.clk.Timer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cancel gives back the reservation of n units that moved the TAT of rs to
// end, at the time c read from the clock, by the rule Wait documents.
//
// Why it never admits more than GCRA: compare a history in which this
// reservation was never made and every later claim j (of m_j units, moving
// the TAT to T_j) arrived at the instant it acts. A later Wait acts at
// T_j - tau; a later Take, stamped no later than c, before this
// reservation's instant end - tau. Replaying them from end - n*p (where the
// TAT stood before this reservation, or later), GCRA admits each, and ends
// at a TAT of at most max(TAT - n*p, TAT - tau + max m_j*p) <= TAT - n*p + E,
// since n*p <= tau and each m_j*p <= E. Giving back n*p - E leaves the TAT at
// TAT - n*p + E: no lower than that history's, so every decision from now on
// is one GCRA could have made. The floor at min(TAT, c) keeps the bucket from
// being fuller than full at c.
func (l *Limiter) cancel(rs *block, end int64, n int) {
	for {
		b, tat := l.load()
		if b != rs {
			// Replaced since (Reconfigure, UnmarshalBinary, or a move of the
			// epoch): the reservation is not expressed in the state in force.
			return
		}
		p := b.P
		s, _ := p.clamp(p.since(p.clk.Now()))
		if s >= end-p.tau {
			return // the reserved instant has come: the units are in use
		}
		e := max(tat-end, 0)
		give := int64(n)*p.p - e
		if give <= 0 {
			return
		}
		next := max(tat-give, min(tat, s))
		if next == tat || b.W.CompareAndSwap(tat, next) {
			return
		}
	}
}
