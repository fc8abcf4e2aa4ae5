package httpclient

import (
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/tokenbucket"
)

// host is the pacing state shared by every request to one host (one key of
// Config.Key). It is a slow path next to a network round trip, so it is a
// plain mutex over plain fields, kept obviously correct rather than clever.
//
// It keeps what the server said:
//
//   - notBefore: a 429 or 503 said Retry-After. Every request to the host,
//     not only the one refused, holds off until then, so that no request
//     reaches the server during a wait it announced. That includes requests
//     given a pacing slot before the Retry-After was known: they check
//     again when their slot comes.
//   - bounds: "at most budget more requests before resetAt", from recent
//     responses. Every one of them must allow a request for it to go, and a
//     request that goes counts against all of them. When a budget is low,
//     requests are spread over the time to its reset by a token bucket
//     (ratekit's tokenbucket, one unit of burst) reconfigured from the
//     bounds, the local limiter that paces them; when a budget is empty,
//     they wait.
//
// # Bounds
//
// A response saying Remaining r and Reset d, received at now, yields the
// bound
//
//	budget = r - (requests in flight, other than this one) - pending
//	resetAt = now + d
//
// The server may not have counted the requests still on their way, and
// cannot have counted those waiting for a pacing slot (pending). Subtracting
// every request in flight over-counts those the server had already seen,
// which errs on the side of sending less.
//
// Responses overtake each other, so the last to arrive is not necessarily
// the last the server wrote, and a stale response must not loosen what a
// newer one said. A response supersedes only the bounds it is causally newer
// than: those recorded before its request was sent. The server answered
// those requests before this one reached it, so this Remaining already
// accounts for everything they did, and for anything since (a window that
// reset, a log whose old entries slid out, a bucket that refilled). Every
// other bound stays, and all are enforced together. Causality is tracked
// with a counter, epoch, that each recorded response advances: a bound
// carries the epoch it was recorded at, a request the epoch it was sent at.
//
// A bound also lapses at its resetAt; one without a reset (the response
// gave none) lasts until the next response. When every bound has lapsed,
// the transport assumes the last policy's whole Limit, less what is in
// flight or pending, until a response says more.
//
// At most maxBounds are kept. A bound made redundant by another (no more
// budget, no earlier reset, the same limit, and recorded no earlier, so that
// nothing supersedes it sooner) is dropped; past the cap the two with the
// nearest resets merge into one stricter than both (the smaller budget, the
// later reset, the later epoch).
type host struct {
	mu   sync.Mutex
	pace int         // Config.PaceBelow; 0: never spread
	clk  clock.Clock // the transport's, for the pacer

	notBefore time.Time // no request before this (Retry-After)

	bounds [maxBounds]bound
	n      int    // bounds in use: bounds[:n]
	limit  int    // the last response's Limit, 0 if unknown
	epoch  uint64 // responses recorded so far

	pacer    *tokenbucket.Limiter // pacing: spreads requests; nil until first needed
	interval time.Duration        // pacing: the pacer's emission interval
	horizon  time.Time            // pacing: when the spreading under way ends (zero: none under way)
	probeDue bool                 // pacing: a horizon has passed with no response since

	inflight int // sent and not yet answered
	pending  int // admitted to a pacing slot and not yet sent

	changed chan struct{} // closed when a response is recorded; nil if nobody waits

	merges int // how many times bounds were merged (for tests)
}

// maxBounds caps the bounds a host keeps. A few suffice: each response
// supersedes every bound recorded before its request was sent, so only the
// bounds of responses that overtook it, one per request in flight at most,
// are ever live together, and merging beyond the cap is only stricter.
const maxBounds = 4

// bound is "at most budget more requests before resetAt".
type bound struct {
	budget  int       // never negative
	resetAt time.Time // zero: until the next response
	limit   int       // the policy's Limit, 0 if unknown (for PaceBelow)
	epoch   uint64    // host.epoch when it was recorded
}

// low reports whether b's budget is low enough to spread: at or below pace
// percent of its limit, or always when the limit is unknown; never without
// a reset to spread it over, nor when pacing is off. An empty budget is low
// too, so that "low" only grows as the budget shrinks, which makes dropping
// a covered bound change no decision (see covers). budget*100 cannot
// overflow: counts are bounded by maxCount.
func (b *bound) low(pace int) bool {
	return !b.resetAt.IsZero() && pace > 0 &&
		(b.limit == 0 || b.budget*100 <= b.limit*pace)
}

// verdict is admit's answer.
type verdict struct {
	// admitted: the request may go. Unless paced, it has been counted as
	// sent, at epoch; if paced, it must first take a unit of pacer (its
	// slot), then call send, or cancel if it gives up.
	admitted bool
	epoch    uint64
	paced    bool
	pacer    *tokenbucket.Limiter
	// wait is how long to wait before asking again. It is 0 with reason
	// ReasonInFlight: wait on changed. With ReasonExhausted, changed may be
	// set too: ask again at the end of wait or when it is closed, whichever
	// comes first.
	wait    time.Duration
	reason  Reason
	changed <-chan struct{}
}

// lapse drops the bounds whose reset has come. If that leaves none, it
// assumes the last Limit, less what is in flight or pending, until the next
// response.
func (h *host) lapse(now time.Time) {
	had := h.n
	j := 0
	for _, b := range h.bounds[:h.n] {
		if b.resetAt.IsZero() || now.Before(b.resetAt) {
			h.bounds[j] = b
			j++
		}
	}
	h.n = j
	if h.n < had {
		if h.n == 0 && h.limit > 0 {
			h.bounds[0] = bound{budget: max(h.limit-h.inflight-h.pending, 0), limit: h.limit, epoch: h.epoch}
			h.n = 1
		}
		h.endSpread()
	}
}

// endSpread ends the spreading under way once no bound is low any more, so
// that it starts afresh, with a new horizon, the next time it is needed.
// Slots already reserved in the pacer are kept.
func (h *host) endSpread() {
	for _, b := range h.bounds[:h.n] {
		if b.low(h.pace) {
			return
		}
	}
	h.horizon = time.Time{}
}

// admit decides whether a request may go at now, or must first take a
// pacing slot, or must wait and ask again.
func (h *host) admit(now time.Time) verdict {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.notBefore) {
		return verdict{wait: h.notBefore.Sub(now), reason: ReasonHoldOff}
	}
	h.lapse(now)
	if !h.horizon.IsZero() && !now.Before(h.horizon) {
		// The spreading under way has reached its horizon: the reset the
		// first low bound announced. Whatever the server's algorithm, it
		// has at least Limit-b units again by then, where b (at most
		// PaceBelow percent of Limit) is what the spreading sent: a fixed
		// window has reset, and a sliding window or a token bucket would
		// have been full had nothing been sent since. Against the last two
		// the bounds still say otherwise, since each request sent pushed
		// their "back at full capacity" later; so one request may go now
		// regardless, and its response, newer than every bound, says how
		// much came back and supersedes them. Spreading, if still needed,
		// starts afresh.
		h.horizon = time.Time{}
		h.probeDue = true
	}
	var exhausted time.Duration
	untilResponse, spread, limitless := false, false, false
	for _, b := range h.bounds[:h.n] {
		switch {
		case b.budget > 0:
			spread = spread || b.low(h.pace)
		case b.resetAt.IsZero():
			untilResponse = true
		default:
			exhausted = max(exhausted, b.resetAt.Sub(now))
			limitless = limitless || b.limit == 0
		}
	}
	if exhausted > 0 {
		if !h.probeDue || limitless {
			// Without a Limit, Limit-b is unknown: no probe. A response on
			// its way (a probe's, above all) may say that the quota came
			// back sooner: wait for it too, not only for the reset.
			v := verdict{wait: exhausted, reason: ReasonExhausted}
			if h.inflight > 0 {
				v.changed = h.waitChange()
			}
			return v
		}
		h.probeDue = false
		h.charge()
		h.inflight++
		return verdict{admitted: true, epoch: h.epoch}
	}
	probe := false
	if untilResponse {
		if h.inflight+h.pending > 0 {
			// A response is on its way and will say how much is left.
			return verdict{reason: ReasonInFlight, changed: h.waitChange()}
		}
		// Nothing in flight and no reset known: send one request as a
		// probe rather than wait forever.
		probe = true
	}
	if spread && !probe {
		starting := h.horizon.IsZero()
		if g := h.spacing(now); g > 0 {
			if starting || h.pacer == nil {
				h.setPacer(g)
			}
			if h.pacer != nil {
				h.charge()
				h.pending++
				return verdict{admitted: true, paced: true, pacer: h.pacer, reason: ReasonPacing}
			}
		}
	}
	h.charge()
	h.inflight++
	return verdict{admitted: true, epoch: h.epoch}
}

// charge counts a request against every bound.
func (h *host) charge() {
	for i := range h.bounds[:h.n] {
		h.bounds[i].budget = max(h.bounds[i].budget-1, 0)
	}
}

// spacing returns the interval at which requests must go from now for each
// low budget to last until its reset, capped at the horizon: the widest,
// over the low bounds, of (end-now)/budget. Spaced so, a budget's last
// request goes strictly before its end. A spreading that begins fixes its
// horizon, and its interval with it (see setPacer).
//
// The horizon is fixed when the spreading begins, at the latest reset among
// the low bounds (the latest, so that dropping a bound another covers, with
// an earlier reset, does not change it). Fixed, because against a sliding
// window or a token bucket every request sent pushes "back at full
// capacity" later: spacing by the time to a reset that recedes with each
// request would space them by t/b, t/(b-1), ..., t, a harmonic series,
// about ln(b) times longer than the reset first announced. What happens at
// the horizon is admit's business (see probeDue).
func (h *host) spacing(now time.Time) time.Duration {
	if h.horizon.IsZero() {
		for _, b := range h.bounds[:h.n] {
			if b.budget > 0 && b.low(h.pace) && b.resetAt.After(h.horizon) {
				h.horizon = b.resetAt
			}
		}
	}
	var gap time.Duration
	for _, b := range h.bounds[:h.n] {
		if b.budget > 0 && b.low(h.pace) {
			end := b.resetAt
			if h.horizon.Before(end) {
				end = h.horizon
			}
			gap = max(gap, max(end.Sub(now), 0)/time.Duration(b.budget))
		}
	}
	return min(gap, maxInterval)
}

// maxInterval caps the pacing interval below the longest a token bucket of
// Burst 1 accepts (2^60 ns, 36 years): a reset centuries away in a header
// is spread no thinner than that.
const maxInterval = 1 << 60

// setPacer makes the pacer hand out one slot every g (> 0), for a spreading
// that begins: a token bucket of Limit 1 per Window g and Burst 1, so the
// first request goes at once and each next one g after the slot before it.
// Whole nanoseconds keep the bucket's time scale at 1.
//
// The interval is set once per spreading, when it begins, not at every
// response: the horizon is fixed then, the budget only shrinks by the
// requests it spaces, so the interval still fits; and a token bucket keeps a
// debt of reservations in units across a Reconfigure, so changing the
// interval under requests already queued would re-price their slots (19
// queued at 0.5 s become 95 s of debt at 5 s) and push newcomers far past
// the horizon. If requests from an earlier spreading still wait on the
// pacer, a fresh bucket is made for this one and they finish on the old.
// The pacer reads the transport's clock.
func (h *host) setPacer(g time.Duration) {
	cfg := tokenbucket.Config{Limit: 1, Window: g, Burst: 1, Name: "httpclient pacing", Clock: h.clk}
	// g is positive and at most maxInterval (spacing caps it), so the
	// bucket's time scale is 1 and Burst*p = g is within its 2^60 bound:
	// neither New nor Reconfigure can fail. Were one to, the requests would
	// be paced on the old pacer, or if there is none go unspread (see
	// admit); the bounds would still cap how many go.
	if h.pacer != nil && h.pending == 0 {
		if h.pacer.Reconfigure(cfg) == nil {
			h.interval = g
		}
		return
	}
	if p, err := tokenbucket.New(cfg); err == nil {
		h.pacer, h.interval = p, g
	}
}

// send is called by a request whose pacing slot has come. It returns 0 and
// the epoch the request is sent at, or, if a Retry-After arrived since the
// slot was given, how long it must still hold off (it stays pending).
func (h *host) send(now time.Time) (time.Duration, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.notBefore) {
		return h.notBefore.Sub(now), 0
	}
	h.pending--
	h.inflight++
	return 0, h.epoch
}

// cancel is called by a paced request that will never be sent (its context
// ended, or its slot would come too late). Every bound made or charged since
// it was admitted counted it, so its unit goes back to each. (Its slot goes
// back to the pacer by the pacer's own rule.)
func (h *host) cancel() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending--
	for i := range h.bounds[:h.n] {
		h.bounds[i].budget = min(h.bounds[i].budget+1, maxCount)
	}
	h.notify()
}

// record applies what the response to a request sent at epoch sent said,
// received at now. holdOff is the Retry-After of a 429 or 503 (negative:
// none); q is the binding quota if ok. A failed round trip records neither.
func (h *host) record(sent uint64, now time.Time, holdOff time.Duration, q Quota, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight--
	h.epoch++
	if holdOff >= 0 {
		if nb := now.Add(holdOff); nb.After(h.notBefore) {
			h.notBefore = nb
		}
	}
	h.probeDue = false // a response has come: nothing left to probe for
	if ok {
		// See host for the arithmetic. inflight no longer counts this
		// request; both counts are bounded by the number of goroutines.
		nb := bound{budget: max(q.Remaining-h.inflight-h.pending, 0), limit: q.Limit, epoch: h.epoch}
		if q.Reset > 0 {
			nb.resetAt = now.Add(q.Reset)
		}
		h.add(sent, now, nb)
		h.limit = q.Limit
		h.endSpread()
	}
	h.notify()
}

// covers reports whether a makes b redundant: both have a reset; a allows
// no more than b, for at least as long, and spreads whenever b would (the
// same limit); and a was recorded no earlier, so that any response that
// supersedes a supersedes b too. Dropping b then changes no decision. A
// bound without a reset lasts until the next response, so it neither covers
// nor is covered.
func covers(a, b bound) bool {
	return !a.resetAt.IsZero() && !b.resetAt.IsZero() && a.limit == b.limit &&
		a.budget <= b.budget && !a.resetAt.Before(b.resetAt) && a.epoch >= b.epoch
}

// add adds nb, from the response to a request sent at epoch sent and
// received at now, dropping the bounds it supersedes (recorded at or before
// sent), those that have lapsed (their reset has come, or they had none and
// so lasted until this response) and those nb covers.
func (h *host) add(sent uint64, now time.Time, nb bound) {
	j := 0
	for _, b := range h.bounds[:h.n] {
		if b.epoch > sent && !b.resetAt.IsZero() && now.Before(b.resetAt) && !covers(nb, b) {
			h.bounds[j] = b
			j++
		}
	}
	h.n = j
	if h.n == maxBounds {
		// Merge the two bounds whose resets are nearest into one stricter
		// than both, to make room.
		bi, bj := 0, 1
		var best time.Duration = -1
		for i := 0; i < h.n; i++ {
			for k := i + 1; k < h.n; k++ {
				d := h.bounds[i].resetAt.Sub(h.bounds[k].resetAt)
				if d < 0 {
					d = -d
				}
				if best < 0 || d < best {
					bi, bj, best = i, k, d
				}
			}
		}
		a, b := h.bounds[bi], h.bounds[bj]
		m := bound{budget: min(a.budget, b.budget), resetAt: a.resetAt, limit: max(a.limit, b.limit), epoch: max(a.epoch, b.epoch)}
		if b.resetAt.After(m.resetAt) {
			m.resetAt = b.resetAt
		}
		h.bounds[bi] = m
		h.bounds[bj] = h.bounds[h.n-1]
		h.n--
		h.merges++
	}
	h.bounds[h.n] = nb
	h.n++
}

// waitChange returns a channel that the next recorded response (or cancel)
// closes. The caller holds h.mu.
func (h *host) waitChange() <-chan struct{} {
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

// notify wakes the requests waiting for a response (ReasonInFlight, and
// ReasonExhausted with a response on its way).
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
	if h.inflight+h.pending > 0 || now.Before(h.notBefore) {
		return false
	}
	for _, b := range h.bounds[:h.n] {
		if !b.resetAt.IsZero() && now.Before(b.resetAt) {
			return false
		}
	}
	return true
}
