package httpclient

import (
	"net/http"
	"strings"
	"time"
)

// Quota is one rate-limit policy as a response describes it: how many
// requests the server will still admit (Remaining) before the policy is back
// at full capacity (Reset). ParseQuotas and ParseQuota read it from response
// headers in every dialect that ratekit's httplimit middleware writes and
// that the seed APIs use.
//
// The zero Quota is a policy with nothing remaining and no known reset.
type Quota struct {
	// Policy is the policy's name: the IETF item name, the suffix of a
	// per-policy header (Sanity's x-ratelimit-limit-second is "second"), or
	// "" for the unnamed X-RateLimit-*, Sentry and Rollbar headers.
	Policy string
	// Limit is the policy's quota per window in requests; 0 if the response
	// does not say.
	Limit int
	// Remaining is how many more requests the policy admits now. It is never
	// negative.
	Remaining int
	// Reset is how long until the policy is back at full capacity (a fixed
	// window's end, a token bucket's time to refill). 0 means unknown or now:
	// either way there is nothing to pace against.
	Reset time.Duration
	// Window is the policy's window, from IETF RateLimit-Policy's w or from a
	// per-policy name such as "second" or "minute"; 0 if unknown.
	Window time.Duration
}

// Header values that are absolute times rather than delays are converted to
// durations against the response's own Date header when it carries one, so
// that skew between the client's and the server's clocks does not matter
// (both times come from the server's clock); only without a Date is the
// caller's now used. Date has whole-second precision, which can only make a
// wait longer, never shorter.
func refTime(h http.Header, now time.Time) time.Time {
	if v := get(h, "Date"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	return now
}

// ParseRetryAfter reads the Retry-After header of h: delta-seconds ("12", and
// leniently a decimal "1.5") or an HTTP-date, which is converted to a delay
// against the response's Date header if present, else against now. A date in
// the past is a delay of 0. ok is false if the header is absent or malformed.
// Absurdly large values saturate rather than overflow.
func ParseRetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(get(h, "Retry-After"))
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(refTime(h, now)), 0), true
}

// ParseQuota returns the binding policy among those ParseQuotas finds: the
// one with the least Remaining (ties: the longest Reset), which is the one a
// client runs into first. ok is false if h describes no policy.
func ParseQuota(h http.Header, now time.Time) (q Quota, ok bool) {
	// Written without ParseQuotas' slice so the transport's per-response
	// call allocates only what the header parsing itself needs.
	eachQuota(h, now, func(c Quota) {
		if !ok || binds(c, q) {
			q, ok = c, true
		}
	})
	return q, ok
}

// binds reports whether a binds before b: less remaining, or as much but a
// longer wait for it to come back.
func binds(a, b Quota) bool {
	if a.Remaining != b.Remaining {
		return a.Remaining < b.Remaining
	}
	return a.Reset > b.Reset
}

// ParseQuotas returns every rate-limit policy that h describes, in the order
// of the dialects below. A dialect whose fields are malformed is skipped, as
// the IETF draft requires of malformed RateLimit fields; a policy needs at
// least a Remaining to be reported. The dialects:
//
//   - X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (the mail
//     API, Sender, GitHub-style; X-RateLimit-Reset-After, a delay, is
//     preferred when present), and RateLimit-Limit, RateLimit-Remaining,
//     RateLimit-Reset (IETF drafts up to -06, Kong, Sanity's ratelimit-reset).
//   - X-Sentry-Rate-Limit-Limit, -Remaining, -Reset (Sentry).
//   - X-Rate-Limit-Limit, -Remaining, -Reset and -Remaining-Seconds (Rollbar;
//     Remaining-Seconds, a delay, is preferred to Reset, a timestamp).
//   - X-RateLimit-Limit-<name>, X-RateLimit-Remaining-<name> and optionally
//     X-RateLimit-Reset-<name>, one policy per name (Sanity, Kong). Without a
//     per-policy reset, RateLimit-Reset applies, else the window a name such
//     as "second", "minute", "hour" or "day" implies.
//   - IETF RateLimit-Policy and RateLimit structured fields
//     (draft-ietf-httpapi-ratelimit-headers-09 to -11: "name";q=100;w=60 and
//     "name";r=50;t=30, several policies per field, names as strings or
//     tokens), and the draft-07 dictionary "limit=100, remaining=50, reset=30".
//     Policies whose quota unit (qu, or httplimit's ratekit-unit when qu is
//     absent) is not "requests" are skipped: a client paces requests, not
//     bytes, events or concurrency.
//
// A reset is read by its shape: an RFC 3339 time (Sender) or an HTTP-date is
// absolute; a number is delta seconds below 1e9, a Unix time in seconds from
// 1e9 (2001-09-09) and a Unix time in milliseconds from 1e12. No real window
// lasts 1e9 seconds (31.7 years) and no server announces a reset before 2001,
// so the threshold cannot misread either form in practice. Absolute times are
// converted to delays against the response's Date header if present, else
// against now; a reset in the past is 0.
func ParseQuotas(h http.Header, now time.Time) []Quota {
	var qs []Quota
	eachQuota(h, now, func(q Quota) { qs = append(qs, q) })
	return qs
}

// eachQuota calls f with each policy h describes.
func eachQuota(h http.Header, now time.Time, f func(Quota)) {
	if len(h) == 0 {
		return
	}
	ref := time.Time{}
	refOnce := false
	reference := func() time.Time {
		if !refOnce {
			ref, refOnce = refTime(h, now), true
		}
		return ref
	}
	// The unnamed dialects, each a triple of headers.
	for _, d := range &triples {
		rem, ok := parseCount(get(h, d.remaining))
		if !ok {
			continue
		}
		q := Quota{Remaining: rem}
		q.Limit, _ = parseCount(get(h, d.limit))
		if d.resetDelay != "" {
			q.Reset, ok = parseSeconds(strings.TrimSpace(get(h, d.resetDelay)))
		} else {
			ok = false
		}
		if !ok {
			if v := get(h, d.reset); v != "" {
				q.Reset, _ = parseReset(v, reference)
			}
		}
		f(q)
	}
	perPolicy(h, reference, f)
	ietf(h, f)
}

// triple names the headers of one unnamed dialect.
type triple struct{ limit, remaining, reset, resetDelay string }

// triples lists the unnamed dialects, with canonical header names so that
// http.Header.Get does no case conversion.
var triples = [...]triple{
	{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Reset-After"},
	{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", ""},
	{"X-Sentry-Rate-Limit-Limit", "X-Sentry-Rate-Limit-Remaining", "X-Sentry-Rate-Limit-Reset", ""},
	{"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset", "X-Rate-Limit-Remaining-Seconds"},
}

// perPolicy reads X-RateLimit-Remaining-<name> and its companions. Header
// keys in an http.Header are canonicalised ("X-Ratelimit-Remaining-Second"),
// but a map built by hand may not be, so the prefix is matched without case.
func perPolicy(h http.Header, reference func() time.Time, f func(Quota)) {
	const prefix = "x-ratelimit-remaining-"
	for k, vs := range h {
		if len(k) <= len(prefix) || len(vs) == 0 || !strings.EqualFold(k[:len(prefix)], prefix) {
			continue
		}
		name := k[len(prefix):]
		rem, ok := parseCount(vs[0])
		if !ok {
			continue
		}
		q := Quota{Policy: strings.ToLower(name), Remaining: rem, Window: windowOf(name)}
		q.Limit, _ = parseCount(getFold(h, "X-Ratelimit-Limit-"+name))
		if v := getFold(h, "X-Ratelimit-Reset-"+name); v != "" {
			q.Reset, _ = parseReset(v, reference)
		} else if v := get(h, "Ratelimit-Reset"); v != "" {
			q.Reset, _ = parseReset(v, reference)
		}
		if q.Reset == 0 {
			q.Reset = q.Window
		}
		f(q)
	}
}

// get is h.Get for a key already in canonical form, as every constant
// here is: a plain map lookup, without Get's canonicalisation, which showed
// in profiles of the per-response parse.
func get(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// getFold is h.Get for a key that may not be in canonical form.
func getFold(h http.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// windowOf returns the window a per-policy name implies (Kong and Sanity
// name their policies by period), or 0.
func windowOf(name string) time.Duration {
	switch strings.ToLower(name) {
	case "second", "seconds", "sec", "s":
		return time.Second
	case "minute", "minutes", "min", "m":
		return time.Minute
	case "hour", "hours", "h":
		return time.Hour
	case "day", "days", "d":
		return 24 * time.Hour
	case "week":
		return 7 * 24 * time.Hour
	case "month":
		return 30 * 24 * time.Hour
	case "year":
		return 365 * 24 * time.Hour
	}
	return 0
}

// ietf reads the IETF RateLimit and RateLimit-Policy fields. Each RateLimit
// item (r, t) is joined with the RateLimit-Policy item of the same name and
// partition key (q, w, qu). A field that does not parse is ignored whole.
func ietf(h http.Header, f func(Quota)) {
	vs := h["Ratelimit"]
	if len(vs) == 0 {
		return
	}
	limits, ok := parseSFList(vs)
	if !ok {
		return
	}
	var policies []sfMember
	if pv := h["Ratelimit-Policy"]; len(pv) > 0 {
		policies, _ = parseSFList(pv)
	}
	// Draft-07 sent one dictionary: limit=100, remaining=50, reset=30.
	if q, ok := draft07(limits); ok {
		f(q)
		return
	}
	for _, m := range limits {
		if m.isDict || (m.value.kind != sfString && m.value.kind != sfToken) {
			continue // not a named policy item
		}
		r, ok := m.param("r")
		if !ok || r.kind != sfInteger || r.num < 0 {
			continue
		}
		q := Quota{Policy: m.name, Remaining: clampCount(r.num)}
		if t, ok := m.param("t"); ok {
			if t.kind != sfInteger || t.num < 0 {
				continue // a malformed item is ignored
			}
			q.Reset = secondsDuration(t.num)
		}
		pk, _ := m.param("pk")
		for _, p := range policies {
			if p.isDict || p.name != m.name {
				continue
			}
			if ppk, ok := p.param("pk"); ok && pk.kind != 0 && ppk.str != pk.str {
				continue // the same policy name for another partition
			}
			// httplimit sends a unit outside the draft's registry as
			// ratekit-unit, with no qu (which would default to requests).
			qu, ok := p.param("qu")
			if vu, vok := p.param("ratekit-unit"); vok && !ok {
				qu, ok = vu, true
			}
			if ok && qu.str != "requests" {
				q.Remaining = -1
				break
			}
			if v, ok := p.param("q"); ok && v.kind == sfInteger && v.num >= 0 {
				q.Limit = clampCount(v.num)
			}
			if v, ok := p.param("w"); ok && v.kind == sfInteger && v.num > 0 {
				q.Window = secondsDuration(v.num)
			}
			break
		}
		if q.Remaining < 0 {
			continue
		}
		if q.Reset == 0 {
			q.Reset = q.Window
		}
		f(q)
	}
}

// draft07 recognises the draft-07 dictionary form of RateLimit.
func draft07(ms []sfMember) (Quota, bool) {
	var q Quota
	found := false
	for _, m := range ms {
		if !m.isDict {
			return Quota{}, false
		}
		if m.value.kind != sfInteger || m.value.num < 0 {
			continue
		}
		switch m.name {
		case "limit":
			q.Limit = clampCount(m.value.num)
		case "remaining":
			q.Remaining, found = clampCount(m.value.num), true
		case "reset":
			q.Reset = secondsDuration(m.value.num)
		}
	}
	return q, found
}
