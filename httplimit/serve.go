package httplimit

import (
	"net/http"
	"sync"

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
// writer that records the status and implements Flush and Unwrap (so
// http.ResponseController reaches the original's Hijack, deadlines and
// the like). Place ratekit middlewares so that any writer wrapping between
// them implements Unwrap.
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
	m.pol.reset(s.rep)
	outer := outerLink(w)
	m.findKeys(r, s.rep)
	m.pol.Decide(m.clock.Now(), s.rep, m.perTier) // the one reading of the clock
	refused := s.rep.Outcome != Admitted && !m.shadow
	bind, hasBind := m.report(w, r, s, outer, refused)
	if refused {
		if outer != nil {
			outer.rollback()
		}
		m.refuse(w, r, s)
		m.pool.Put(s)
		return
	}
	s.link = link{pol: m.pol, rep: s.rep, outer: outer, bind: bind, hasBind: hasBind}
	m.serve(w, r, s, &s.link, h.next)
}

// findKeys fills each tier's key and cost, and the FailureTier's key.
func (m *Middleware) findKeys(r *http.Request, rep *Report) {
	shared, haveShared := 1, false
	for i := range m.pol.tiers {
		t, td := &m.pol.tiers[i], &rep.Tiers[i]
		key, ok := "", true
		if t.Key != nil {
			key, ok = t.Key(r)
		}
		if !ok && t.Fallback != nil {
			key, ok = t.Fallback(r)
			td.Fallback = ok
		}
		td.Key, td.Missing = key, !ok
		switch {
		case t.Cost != nil:
			td.Cost = t.Cost(r)
		case m.cost != nil:
			if !haveShared {
				shared, haveShared = m.cost(r), true
			}
			td.Cost = shared
		}
	}
	if f := m.pol.failure; f != nil {
		td := &rep.Tiers[len(m.pol.tiers)]
		key, ok := f.Key(r)
		td.Key, td.Missing = key, !ok
	}
}

// report sets the rate-limit headers and calls OnDecision. It returns the
// binding decision the headers describe, for an inner middleware to
// combine with its own.
func (m *Middleware) report(w http.ResponseWriter, r *http.Request, s *scratch, outer *link, refused bool) (ratekit.Decision, bool) {
	rep := s.rep
	d, has := rep.Decision, m.hasPolicy(rep)
	if outer != nil && outer.hasBind && !refused && (!has || binds(outer.bind, d)) {
		d, has = outer.bind, true
	}
	if has {
		s.hdr.reset()
		m.writeHeaders(&s.hdr, s, d, refused && (rep.Outcome == RefusedRate || rep.Outcome == RefusedFailure))
		s.hdr.flush(w.Header(), outer != nil)
	}
	if m.onDecision != nil {
		m.onDecision(r, rep.Decision, rep.Tiers)
	}
	return d, has
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

// binds reports whether the allowed decision a binds more tightly than b,
// as ratekit.TakeAll judges: less Remaining, ties to the longer ResetAfter.
func binds(a, b ratekit.Decision) bool {
	if a.Remaining != b.Remaining {
		return a.Remaining < b.Remaining
	}
	return a.ResetAfter > b.ResetAfter
}

// refuse writes the refusal and charges a 401's failure.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, s *scratch) {
	rep := s.rep
	p := &s.problem
	m.pol.problem(rep, p, &s.detail)
	if m.problem != nil {
		p.Detail = string(s.detail)
		m.problem(w, r, p)
	} else {
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
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, s *scratch, lk *link, next http.Handler) {
	rep := s.rep
	rec := &s.rec
	*rec = recorder{ResponseWriter: w, m: m, s: s, lk: lk}
	done := false
	defer func() {
		lk.mu.Lock()
		lk.done = true
		refund := done && m.refund != nil && rep.taken && m.refund(rec.code())
		m.pol.Settle(rep, refund)
		lk.mu.Unlock()
		if done {
			m.pol.Fail(rep, rec.code())
		}
		m.pool.Put(s)
	}()
	next.ServeHTTP(rec, r)
	done = true
}

// outerLink returns the link of the middleware serving w, if w is (or
// wraps, through Unwrap) the recorder of a Middleware.
func outerLink(w http.ResponseWriter) *link {
	for w != nil {
		if rec, ok := w.(*recorder); ok {
			return rec.lk
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
// handler returns (done guards the rollback against that).
type link struct {
	pol     *Policy
	rep     *Report
	outer   *link
	bind    ratekit.Decision // the binding decision reported so far
	hasBind bool

	mu   sync.Mutex // guards done and the rollback against settling
	done bool       // the serving middleware has settled: rep is no longer its
}

// rollback gives back what this and every outer middleware took for the
// request: an inner one refused it.
func (l *link) rollback() {
	for ; l != nil; l = l.outer {
		l.mu.Lock()
		if !l.done {
			l.pol.Settle(l.rep, true)
		}
		l.mu.Unlock()
	}
}
