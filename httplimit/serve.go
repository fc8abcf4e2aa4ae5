package httplimit

import (
	"net/http"
	"sync/atomic"

	"github.com/ratekit/ratekit"
)

// Wrap returns next wrapped in the middleware. m.Wrap is a
// func(http.Handler) http.Handler, as routers take.
//
// Middlewares compose: a request that passes one Middleware and then
// another (a global one and a per-route one) is judged by both as by one.
// The inner one adds its RateLimit and RateLimit-Policy items to the
// outer's (as further field lines of the same list) instead of replacing
// them, its single-policy headers (X-RateLimit-* and the like) describe
// the binding policy of both, and a request it refuses is charged to no
// tier of the outer one either: the outer's units are given back, as if it
// had refused too. The inner one finds the outer through the
// ResponseWriter it is handed: the middleware passes its handler a pooled
// writer that records the status, implements Unwrap (so
// http.ResponseController reaches the original's deadlines and the like)
// and has exactly the optional interfaces of the writer it wraps among
// http.Flusher, http.Hijacker, io.ReaderFrom and http.Pusher, so a
// handler's w.(http.Hijacker) works behind the middleware as without it.
// Place ratekit middlewares so that any writer wrapping between them
// implements Unwrap.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return &handler{m: m, next: next}
}

type handler struct {
	m    *Middleware
	next http.Handler
}

// ServeHTTP runs the phases of a request: find its keys and costs, decide
// (Policy.Decide), report (headers, OnDecision), and then refuse it, or
// serve it and settle its units.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	s := m.pool.Get().(*scratch)
	wk := kindOf(w)
	var outer *link
	if wk&optChain != 0 {
		outer = outerLink(w)
	}
	m.findKeys(r, s.rep)
	m.pol.judge(m.clock.Now(), s.rep, m.perTier, m.tierDecisions) // the one reading of the clock
	refused := s.rep.Outcome != Admitted && !m.shadow
	m.report(w, r, s, outer, refused)
	if refused {
		if outer != nil {
			outer.rollback()
		}
		m.refuse(w, r, s)
		m.pool.Put(s)
		return
	}
	lk := &s.link
	lk.pol, lk.rep, lk.outer = m.pol, s.rep, outer
	lk.settled.Store(false)
	m.serve(w, r, s, lk, h.next, wk&^optChain)
}

// findKeys readies rep, a Report of m's Policy, for r: it fills each
// tier's key and cost and looks its limiter up (the part of Decide before
// Policy.judge), fills the FailureTier's key, and resets the rest of what
// Decide reads. (Policy.Reset does more: it also clears what Decide
// overwrites, and sets the names, which the middleware never changes.)
func (m *Middleware) findKeys(r *http.Request, rep *Report) {
	rep.begin()
	shared, haveShared, sharedCost := 1, false, m.cost
	tiers := m.pol.tiers
	tds := rep.Tiers[:len(tiers)]
	for i := range tiers {
		t, td := &tiers[i], &tds[i]
		key, ok, fb := "", true, false
		if t.Key != nil {
			key, ok = t.Key(r)
		}
		if !ok && t.Fallback != nil {
			key, ok = t.Fallback(r)
			fb = ok
		}
		cost := 1
		switch {
		case t.Cost != nil:
			cost = t.Cost(r)
		case sharedCost != nil:
			if !haveShared {
				shared, haveShared = sharedCost(r), true
			}
			cost = shared
		}
		td.Key, td.Missing, td.Fallback, td.Cost = StoreKey(key), !ok, fb, cost
		td.Applied, td.report, td.refused = false, false, false
		rep.lookup(t, td, i)
	}
	if f := m.pol.failure; f != nil {
		td := &rep.Tiers[len(m.pol.tiers)]
		key, ok := f.Key(r)
		td.Key, td.Missing = key, !ok
		td.Applied, td.report, td.refused, td.Decision = false, false, false, ratekit.Decision{}
	}
}

// report sets the rate-limit headers and calls OnDecision. It keeps the
// binding decision the headers describe in s.link, for an inner
// middleware to combine with its own.
func (m *Middleware) report(w http.ResponseWriter, r *http.Request, s *scratch, outer *link, refused bool) {
	rep, lk := s.rep, &s.link
	lk.bind, lk.cost = nil, 1
	if m.hasPolicy(rep) {
		lk.bind, lk.cost = &rep.Decision, rep.cost(rep.bind)
	}
	if outer != nil && outer.bind != nil && !refused && (lk.bind == nil || binds(outer.bind, outer.cost, lk.bind, lk.cost)) {
		lk.bind, lk.cost = outer.bind, outer.cost
	}
	s.hit, s.keep = nil, false
	rate := refused && (rep.Outcome == RefusedRate || rep.Outcome == RefusedFailure)
	if rate && m.refusals != nil {
		s.rkey = refusalKeyOf(rep)
		s.hit = m.cachedRefusal(rep, s.rkey)
		s.keep = s.hit == nil
	}
	if s.hit != nil {
		writeRefusalHeaders(w.Header(), s.hit)
	} else if lk.bind != nil {
		s.hdr.reset()
		m.writeHeaders(&s.hdr, s, lk.bind, lk.cost, rate)
		s.hdr.flush(w.Header(), outer != nil)
	}
	if m.onDecision != nil {
		m.onDecision(r, rep.Decision, rep.Tiers)
	}
}

// hasPolicy reports whether a limit applied to the request, so that its
// headers have something to describe: the tiers charged, or the
// FailureTier when it refused or a 401 for a missing key is all there is.
func (m *Middleware) hasPolicy(rep *Report) bool {
	if rep.Outcome == RefusedFailure || rep.Outcome == RefusedMissingKey {
		return rep.fail != nil
	}
	return len(rep.asks) > 0
}

// binds reports whether the allowed decision a, of a tier the request
// cost ac units of, binds more tightly than b (bc), as Policy judges its
// own tiers (bindInRequests): fewer requests left, ties to the longer
// ResetAfter; one that cost nothing binds only beside another.
func binds(a *ratekit.Decision, ac int, b *ratekit.Decision, bc int) bool {
	if (ac == 0) != (bc == 0) {
		return bc == 0
	}
	if ra, rb := perRequest(a.Remaining, ac), perRequest(b.Remaining, bc); ra != rb {
		return ra < rb
	}
	return a.ResetAfter > b.ResetAfter
}

// refuse writes the refusal and charges a 401's failure. A 429 is written
// from its pre-rendered start (rateProblemPrefix); a custom Config.Problem
// is handed a Problem of its own, which it may keep.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, s *scratch) {
	rep := s.rep
	switch {
	case m.problem != nil:
		m.problem(w, r, m.pol.Problem(rep))
	case s.hit != nil:
		writeProblemBody(w, http.StatusTooManyRequests, s.hit.body)
	case rep.Outcome == RefusedRate || rep.Outcome == RefusedFailure:
		s.body = m.pol.appendRateProblem(s.body[:0], m.rateProblem[rep.bind], rep)
		writeProblemBody(w, http.StatusTooManyRequests, s.body)
		if s.keep {
			m.keepRefusal(s, s.rkey)
		}
	default:
		p := &s.problem
		m.pol.problem(rep, p, &s.detail)
		s.body = appendProblem(s.body[:0], p, s.detail)
		writeProblemBody(w, p.Status, s.body)
	}
	if rep.Outcome == RefusedMissingKey {
		m.pol.Fail(rep, http.StatusUnauthorized)
	}
}

// serve runs next with lk in the request's context, then settles: units of
// concurrency tiers go back, Config.Refund's statuses are refunded, and a
// failed response is charged to the FailureTier. The settling runs on a
// panic too, but a handler that panicked is neither refunded nor counted
// as a failure.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, s *scratch, lk *link, next http.Handler, opts uint8) {
	rec := &s.rec
	*rec = recorder{w: w, m: m, s: s, lk: lk}
	done := false
	defer m.settle(s, &done)
	next.ServeHTTP(rec.variant(int(opts)), r)
	done = true
}

// settle is serve's deferred end; *done reports that the handler returned
// rather than panicked.
func (m *Middleware) settle(s *scratch, done *bool) {
	rep, rec := s.rep, &s.rec
	refund := *done && m.refund != nil && rep.taken && m.refund(rec.code())
	if s.link.settled.CompareAndSwap(false, true) { // else an inner middleware's refusal rolled it back
		m.pol.Settle(rep, refund)
	}
	if *done && rep.fail != nil {
		m.pol.Fail(rep, rec.code())
	}
	m.pool.Put(s)
}

// outerLink returns the link of the middleware serving w, if w is (or
// wraps, through Unwrap) the recorder of a Middleware.
func outerLink(w http.ResponseWriter) *link {
	for w != nil {
		if rec, ok := w.(interface{ rec() *recorder }); ok {
			return rec.rec().lk
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// link is what an inner middleware needs to act with the one serving it
// as one. It lives in the serving middleware's pooled scratch, reached
// through the recorder it passes to the handler, so it costs no
// allocation; like the ResponseWriter, it must not be used after the
// handler returns (settled keeps a late rollback from settling twice).
type link struct {
	pol   *Policy
	rep   *Report
	outer *link
	// bind is the binding decision reported so far, nil if none: this
	// request's (its Report's) or an outer one's, which outlives it. cost
	// is what the request cost its tier: the single-policy dialects count
	// it in requests, perRequest(units, cost).
	bind *ratekit.Decision
	cost int

	// settled is set by whichever settles rep first: the serving
	// middleware when its handler returns, or an inner one's rollback.
	// The other then leaves rep alone. (An atomic rather than a lock: it
	// costs an admitted request one CAS.)
	settled atomic.Bool
}

// rollback gives back what this and every outer middleware took for the
// request: an inner one refused it.
func (l *link) rollback() {
	for ; l != nil; l = l.outer {
		if l.settled.CompareAndSwap(false, true) {
			l.pol.Settle(l.rep, true)
		}
	}
}

// WriteHeaders sets in h the rate-limit fields m would put on the response
// to the request rep describes: rep is a Report of m.Policy() that Decide
// has judged (with perTier true for the Sanity and IETF dialects to
// describe every tier of a refusal). It is for transports other than
// net/http that report the same fields, such as a gRPC interceptor's
// response metadata. Retry-After is set on a refusal that waiting cures
// unless m is in Shadow mode; nothing is set when no limit applied. Values
// of the keys it sets are replaced. It is safe for concurrent use; rep
// must not be in use by another goroutine.
func (m *Middleware) WriteHeaders(h http.Header, rep *Report) {
	if !m.hasPolicy(rep) {
		return
	}
	s := m.pool.Get().(*scratch)
	own := s.rep
	s.rep = rep
	s.hdr.reset()
	refused := rep.Outcome != Admitted && !m.shadow
	m.writeHeaders(&s.hdr, s, &rep.Decision, rep.cost(rep.bind), refused && (rep.Outcome == RefusedRate || rep.Outcome == RefusedFailure))
	s.hdr.flush(h, false)
	s.rep = own
	m.pool.Put(s)
}
