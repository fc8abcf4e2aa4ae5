package httplimit

import "net/http"

// A flood of refused requests is what a limiter exists to absorb, and in a
// flood the refusals repeat: the same tier refuses, with the same Retry-After,
// for a whole second. So each tier keeps the last 429 it rendered (header
// values and problem body) with what determines them, and a refusal that
// matches writes those, formatting and allocating nothing. A refusal that
// does not match is rendered as usual, and replaces the entry at most once
// per tier per second, so requests in different states cannot make
// refusals allocate more than they otherwise would.
//
// Only the single-policy dialects are cached: the per-policy ones (Sanity,
// IETF) describe every tier's state, which a key of a few numbers does not
// capture.
type refusal struct {
	key  refusalKey
	fill int64    // the Unix second the entry was made in
	keys []string // header names, as headerBuf.keys
	vals []string // their values; each response gets vals[i:i+1:i+1]
	body []byte   // the problem document, never written to
}

// refusalKey is what a 429's single-policy headers and body are made of.
type refusalKey struct {
	retry, reset, resetAt int64 // Retry-After; the reset in delta seconds and as a Unix time
	limit, remaining      int
	violated              uint64 // the tiers that refused, a bit per tier index
}

// cacheableRefusal reports whether m's 429s can be cached.
func (m *Middleware) cacheableRefusal() bool {
	return m.problem == nil && m.dialect&perPolicy == 0 && len(m.tierHeaders) <= 64
}

// refusalKeyOf returns the key of rep's 429. Its limit and remaining are
// counted in requests, as the headers are: refusals by one tier of
// requests of different costs differ.
func refusalKeyOf(rep *Report) refusalKey {
	d, cost := &rep.Decision, rep.cost(rep.bind)
	reset := resetOf(*d)
	k := refusalKey{
		retry: retrySeconds(d.RetryAfter), reset: seconds(reset), resetAt: unixCeil(rep.Now, reset),
		limit: perRequest(d.Limit, cost), remaining: perRequest(d.Remaining, cost),
	}
	for i := range rep.Tiers {
		if rep.Tiers[i].refused {
			k.violated |= 1 << i
		}
	}
	return k
}

// cachedRefusal returns the cached 429 of rep's binding tier if it
// matches key, or nil.
func (m *Middleware) cachedRefusal(rep *Report, key refusalKey) *refusal {
	if e := m.refusals[rep.bind].Load(); e != nil && e.key == key {
		return e
	}
	return nil
}

// writeRefusalHeaders stores e's header values into h.
func writeRefusalHeaders(h http.Header, e *refusal) {
	for i, k := range e.keys {
		h[k] = e.vals[i : i+1 : i+1]
	}
}

// keepRefusal caches the 429 just rendered into s (headers in s.hdr, body
// in s.body) for rep's binding tier, unless its entry was made this
// second.
func (m *Middleware) keepRefusal(s *scratch, key refusalKey) {
	slot := &m.refusals[s.rep.bind]
	sec := s.rep.Now.Unix()
	if e := slot.Load(); e != nil && e.fill == sec {
		return
	}
	b := &s.hdr
	e := &refusal{key: key, fill: sec, keys: append([]string(nil), b.keys...), vals: make([]string, len(b.keys))}
	all := string(b.buf)
	start := 0
	for i := range b.keys {
		e.vals[i] = all[start:b.ends[i]]
		start = b.ends[i]
	}
	e.body = append([]byte(nil), s.body...)
	slot.Store(e)
}
