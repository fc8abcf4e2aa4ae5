package concurrency

import (
	"context"
	"sync/atomic"

	"github.com/ratekit/ratekit"
)

// waiter is an Acquire caller in the queue, a node of an intrusive doubly
// linked list so that a cancelled caller leaves from the middle in O(1)
// without another allocation. Its fields other than n and ready are
// guarded by Limiter.mu; ready is closed, under mu, when the waiter leaves
// the queue with its units (granted) or an error (err).
type waiter struct {
	n          int
	ready      chan struct{}
	granted    bool
	err        error
	prev, next *waiter
}

// Acquire blocks until n units fit and takes them, in FIFO order with the
// other Acquire callers, or until ctx is done. It returns a release func
// that gives the units back; release is idempotent (calls after the first
// do nothing) and safe to call from any goroutine. It is never nil: after
// an error it does nothing, so `defer release()` is safe either way.
//
//   - n == 0 returns at once with nil error.
//   - n < 0, or n > Limit, returns at once an error wrapping
//     ratekit.ErrExceedsLimit; so does a queued caller whose n a
//     Reconfigure puts above the new Limit.
//   - A ctx already done (a deadline already past, say) returns ctx.Err()
//     at once, even if the units were free.
//   - If ctx is done while it waits, Acquire returns ctx.Err() holding
//     nothing. When the grant and the cancellation race, either outcome
//     may come back, never a mix: units granted to a caller that then
//     returns ctx.Err() are given back and handed to the callers behind it.
//
// The queue is strictly FIFO: a caller is served only when all before it
// have been, even if it would fit sooner, so large requests do not starve.
// While anyone is queued, Take denies (see the package doc).
//
// Acquire reads the Config's clock once to time the hold-time estimate.
// Unlike Take it allocates: the release func (two small objects), and when
// it has to wait, its queue entry and channel.
func (l *Limiter) Acquire(ctx context.Context, n int) (release func(), err error) {
	if n == 0 {
		return noop, nil
	}
	if err := ctx.Err(); err != nil {
		return noop, err
	}
	if d := l.Take(l.clock().Now(), n); d.Allowed {
		return l.releaser(n), nil
	} else if d.RetryAfter == ratekit.Never {
		return noop, exceeds(n, d.Limit)
	}
	return l.wait(ctx, n)
}

func noop() {}

// TryAcquire takes n units if they fit under Limit and nobody is queued in
// Acquire, and reports whether it did; it never blocks. It is
// Take(clock.Now(), n).Allowed without the Decision and, mostly, without
// the clock: the call of golang.org/x/sync/semaphore's shape, for a caller
// that needs a yes or a no and will Release(n) when its work is done.
//
// n == 0 reports true and takes nothing; n < 0 and n > Limit report false.
// It decides exactly as Take does: one compare-and-swap on the state word
// is the instant it takes effect, and false changes nothing.
//
// TryAcquire is lock-free and allocates nothing. It is passed no time for
// the hold-time estimate, so it reads the Config's clock only on an
// admission that takes the count of units ever admitted across a multiple
// of 64, and samples there: the estimator is fed by sampling, one clock
// read per 64 units (see Limiter for what a sample is). Its other
// admissions cost the estimator nothing: the count of units that every
// sample divides by rides in the word its compare-and-swap writes anyway.
func (l *Limiter) TryAcquire(n int) bool {
	// The common cases: the word and lim agree on the gen and nobody is
	// queued (see limWord), and n > 0. Then n > Limit−held (as in Take, a
	// difference that cannot wrap) denies on the word s, as Take would;
	// otherwise the CAS admits, and unless the count of admitted units
	// crosses a multiple of trySampleEvery (then it carries and samples),
	// that is all. Anything else, a lost CAS included, goes to
	// tryAcquire, which decides from a fresh load with the params.
	s := l.state.Load()
	if c := l.lim.Load(); (s^c)&limCheck == 0 && n > 0 {
		if n > int(c&heldMask)-int(s&heldMask) {
			return false
		}
		// The count crosses a multiple of trySampleEvery, the word's
		// count's modulus, iff the word's count plus n reaches it: then
		// admitCarrying admits, marking the carry, and the clock is read
		// for the sample.
		if s>>countShift+uint64(n) < trySampleEvery {
			if l.state.CompareAndSwap(s, admit(state(s), n)) {
				return true
			}
		} else if l.admitCarrying(state(s), n) {
			l.sample(l.clock().Now(), int(s&heldMask), n)
			return true
		}
	}
	return l.tryAcquire(n)
}

// tryAcquire is TryAcquire past its fast path, which took nothing: it
// decides as Take does, from a fresh load, with the params, and samples
// if its admission carries the count past a multiple of trySampleEvery.
func (l *Limiter) tryAcquire(n int) bool {
	for {
		s := state(l.state.Load())
		p := l.config(s)
		if p == nil {
			continue // s is two Reconfigures old
		}
		if n <= 0 || s.waiting() || n > p.limit-s.held() {
			return n == 0
		}
		if l.admitCAS(s, n) {
			if s.count()+uint64(n) >= trySampleEvery {
				l.sample(l.clock().Now(), s.held(), n)
			}
			return true
		}
	}
}

// trySampleEvery is how many units TryAcquire admits per clock read for the
// hold-time estimate: a read of the clock costs more than the rest of a
// TryAcquire and its Release together, so it is spread over many calls,
// and a busy semaphore still samples every 64 units.
const trySampleEvery = 1 << (64 - countShift)

// releaser returns the idempotent release func of n held units.
func (l *Limiter) releaser(n int) func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.Release(n)
		}
	}
}

// wait is Acquire's slow path: under mu, take the units if they fit and
// nobody is queued (a Release may have come in since Take), or else queue,
// then block.
func (l *Limiter) wait(ctx context.Context, n int) (func(), error) {
	if l.copied() {
		return noop, ErrCopied
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	l.mu.Lock()
	for {
		s := state(l.state.Load())
		p := l.config(s) // never nil: with mu held, gen cannot move on
		if p == nil {
			continue
		}
		if n > p.limit { // a Reconfigure since Take
			l.mu.Unlock()
			return noop, exceeds(n, p.limit)
		}
		if !s.waiting() && n <= p.limit-s.held() { // held+n could wrap: see Take
			if l.admitCAS(s, n) {
				l.mu.Unlock()
				l.sample(l.clock().Now(), s.held(), n)
				return l.releaser(n), nil
			}
			continue
		}
		// Setting the waiting bit must be one CAS with the observation that
		// n does not fit: if a Release lands in between, the CAS fails and
		// the loop sees the freed units. Once the bit is set, fast-path
		// Releases and Takes fail their CAS and come to mu or deny.
		if s.waiting() || l.state.CompareAndSwap(uint64(s), uint64(s|waitingBit)) {
			break
		}
	}
	l.push(w)
	l.mu.Unlock()

	select {
	case <-w.ready:
		// granted and err were written before ready was closed.
		if w.err != nil {
			return noop, w.err
		}
		return l.releaser(n), nil
	case <-ctx.Done():
		l.mu.Lock()
		switch {
		case w.granted:
			// Granted as ctx was cancelled: give the units back, which
			// also serves whoever is now at the head.
			l.settle(n, nil)
		case w.err != nil:
			// Failed by Reconfigure; nothing held.
		default:
			l.unlink(w)
			// If w was the head, the callers behind it may fit now.
			l.settle(0, nil)
		}
		l.mu.Unlock()
		return noop, ctx.Err()
	}
}

// releaseQueued is Release(n) when the waiting bit is set: the units go
// back and to the queue under mu.
func (l *Limiter) releaseQueued(n int) {
	if l.copied() {
		l.rejected.Add(1) // the queue is the original's (see copied)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.settle(n, nil)
}

// settle releases n units, puts the configuration to (nil: keep the one in
// effect) in effect, grants units to the queue's head and those after it
// while they fit under its limit, and sets the waiting bit to whether
// anyone is still queued, all in one CAS. Called
// with mu held. A Release of n > held (misuse; see Release) changes nothing
// and is counted: it is checked on the word the CAS compares against,
// because once the queue has emptied fast-path Releases race this one.
//
// When the waiting bit was set nobody but mu's holder can change the word,
// so the CAS succeeds at the first try; when it was clear (the queue was
// empty), fast-path Takes and Releases race it and the loop recomputes.
func (l *Limiter) settle(n int, to *params) {
	for {
		s := state(l.state.Load())
		p := to
		if p == nil {
			if p = l.config(s); p == nil {
				continue
			}
		}
		lim := p.limit
		if n > s.held() {
			l.rejected.Add(1)
			return
		}
		held := s.held() - n
		before := held
		w := l.head
		for w != nil && w.n <= lim-held {
			held += w.n
			w = w.next
		}
		granted := held - before
		count := s.count() + uint64(granted)
		// A grant that carries the count is marked as admitCarrying does.
		carrying := count >= trySampleEvery
		if carrying {
			l.carrying.Add(1)
		}
		ok := l.state.CompareAndSwap(uint64(s), uint64(pack(held, p.gen, w != nil, count)))
		if ok && carrying {
			l.carry(s, granted)
		}
		if carrying {
			l.carrying.Add(-1)
		}
		if !ok {
			continue
		}
		if granted > 0 {
			for l.head != w {
				g := l.head
				l.unlink(g)
				g.granted = true
				close(g.ready)
			}
			l.sample(l.clock().Now(), before, granted)
		}
		return
	}
}

// push appends w to the queue. Called with mu held and the waiting bit set.
func (l *Limiter) push(w *waiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.queued.Add(int64(w.n))
	l.nqueued.Add(1)
}

// unlink removes w from the queue. Called with mu held. It leaves the
// waiting bit alone: the caller settles.
func (l *Limiter) unlink(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.queued.Add(-int64(w.n))
	l.nqueued.Add(-1)
}
