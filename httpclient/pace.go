package httpclient

import (
	"sync"
	"time"
)

// host is the pacing state shared by every request to one host (one key of
// Config.Key). It is a slow path next to a network round trip, so it is a
// plain mutex over plain fields, kept obviously correct rather than clever.
//
// It keeps two things the server said:
//
//   - notBefore: a 429 or 503 said Retry-After. Every request to the host,
//     not only the one refused, holds off until then, so that no request
//     reaches the server during a wait it announced.
//   - a budget: the binding policy's Remaining, less the requests this
//     transport sent that the response could not have counted yet, valid
//     until the policy's Reset. At most budget more requests go before the
//     reset; when little is left they are spread evenly over the time to it.
//
// In-flight accounting. Each admitted request gets a sequence number. A
// response to request s is applied only if no response to a later request
// was applied before it (responses can arrive out of order, and an older one
// describes an older state). The server may not have counted the requests
// admitted after s when it answered s, so the budget is Remaining minus all
// of them. That over-counts the ones the server had already seen, which
// errs on the side of sending less: a few unused requests per window rather
// than 429s.
type host struct {
	mu sync.Mutex

	notBefore time.Time // no request before this (Retry-After)

	known    bool      // a budget is being tracked
	budget   int       // requests still allowed while known (never negative)
	limit    int       // the binding policy's Limit, 0 if unknown
	resetAt  time.Time // when the budget's policy is back at full capacity; zero: unknown
	nextSlot time.Time // pacing: the earliest time of the next spread request

	seq      uint64 // requests admitted so far
	applied  uint64 // sequence number of the newest response applied
	inflight int    // admitted and not yet answered (or cancelled)

	changed chan struct{} // closed when a response is recorded; nil if nobody waits
}

// verdict is admit's answer.
type verdict struct {
	// admitted: the request may go at now+wait (wait is 0 unless it has a
	// pacing slot); seq identifies it for record or cancel.
	admitted bool
	seq      uint64
	// wait is how long to wait: before sending if admitted, else before
	// asking again. It is 0 with reason ReasonInFlight: wait on changed.
	wait    time.Duration
	reason  Reason
	changed <-chan struct{}
}

// admit decides whether a request may go at now. pace is the percentage of
// the limit at or below which the budget is spread (negative: never).
// maxWait bounds a pacing slot: a request whose slot would be later is not
// admitted and takes nothing, and the verdict reports the wait it would have
// had, so the caller can fail it at once.
func (h *host) admit(now time.Time, pace int, maxWait time.Duration) verdict {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.notBefore) {
		return verdict{wait: h.notBefore.Sub(now), reason: ReasonHoldOff}
	}
	if !h.resetAt.IsZero() && !now.Before(h.resetAt) {
		// The policy is back at full capacity. Assume its whole Limit less
		// what is in flight, until a response says otherwise; with no Limit
		// known, stop tracking.
		h.resetAt, h.nextSlot = time.Time{}, time.Time{}
		h.known = h.limit > 0
		h.budget = max(h.limit-h.inflight, 0)
	}
	if h.known && h.budget == 0 {
		if !h.resetAt.IsZero() {
			return verdict{wait: h.resetAt.Sub(now), reason: ReasonExhausted}
		}
		if h.inflight > 0 {
			// No reset is known, but a response is on its way and will
			// say how much is left.
			if h.changed == nil {
				h.changed = make(chan struct{})
			}
			return verdict{reason: ReasonInFlight, changed: h.changed}
		}
		// Nothing in flight and nothing known: send one request as a probe
		// rather than wait forever. The budget stays 0.
	}
	var wait time.Duration
	if h.known && h.budget > 0 && !h.resetAt.IsZero() && pace >= 0 &&
		(h.limit == 0 || h.budget*100 <= h.limit*pace) {
		// Spread the budget evenly over the time to the reset: this request
		// takes the next free slot, and the one after it is
		// (resetAt-slot)/budget later, so the budget's last request goes
		// strictly before resetAt. budget*100 cannot overflow: counts are
		// bounded by maxCount (2^40).
		slot := now
		if h.nextSlot.After(slot) {
			slot = h.nextSlot
		}
		wait = slot.Sub(now)
		if wait > maxWait {
			return verdict{wait: wait, reason: ReasonPacing}
		}
		if slot.Before(h.resetAt) {
			h.nextSlot = slot.Add(h.resetAt.Sub(slot) / time.Duration(h.budget))
		}
	}
	if h.known && h.budget > 0 {
		h.budget--
	}
	h.seq++
	h.inflight++
	return verdict{admitted: true, seq: h.seq, wait: wait, reason: ReasonPacing}
}

// cancel undoes admit for request seq, which was never sent (its context
// ended during its pacing wait). Its unit goes back to the budget only if
// the budget counted it: it was taken from this budget, or subtracted as
// uncounted by a response to an earlier request. A budget from a response
// to a later request never counted it, as the server never saw it.
func (h *host) cancel(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight--
	if h.known && seq > h.applied && h.budget < maxCount {
		h.budget++
	}
	h.notify()
}

// record applies what the response to request seq said, received at now.
// holdOff is the Retry-After of a 429 or 503 (negative: none); q is the
// binding quota if ok. A failed round trip records with neither.
func (h *host) record(seq uint64, now time.Time, holdOff time.Duration, q Quota, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight--
	if holdOff >= 0 {
		if nb := now.Add(holdOff); nb.After(h.notBefore) {
			h.notBefore = nb
		}
	}
	if ok && seq > h.applied {
		h.applied = seq
		// Requests admitted after seq may not have been counted; see host.
		// h.seq-seq is at most the number of admissions, far below maxCount
		// in any real run, and is clamped anyway.
		uncounted := min(h.seq-seq, uint64(maxCount))
		h.known = true
		h.budget = max(q.Remaining-int(uncounted), 0)
		h.limit = q.Limit
		h.resetAt = time.Time{}
		if q.Reset > 0 {
			h.resetAt = now.Add(q.Reset)
		}
		if !h.nextSlot.Before(h.resetAt) {
			// A slot past the new reset belonged to an older window.
			h.nextSlot = time.Time{}
		}
	}
	h.notify()
}

// notify wakes the requests waiting for a response (ReasonInFlight).
func (h *host) notify() {
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

// idle reports whether dropping h changes nothing that matters: nothing in
// flight and no hold-off or reset still ahead.
func (h *host) idle(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inflight == 0 && !now.Before(h.notBefore) && (h.resetAt.IsZero() || !now.Before(h.resetAt))
}
