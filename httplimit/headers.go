package httplimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ratekit/ratekit"
)

// Dialect is a set of rate-limit header styles to put on every response,
// allowed or refused. Combine them with |, e.g. XRateLimit|IETF. The zero
// value means XRateLimit; NoHeaders turns headers off (Retry-After is still
// sent on a 429).
//
// The single-policy dialects (XRateLimit, XRateLimitUnix, XRateLimitRFC3339,
// Sentry, Rollbar) describe the binding policy, and count requests, as
// their fields promise ("how many more requests you can make"): on an
// admitted request the tier that admits the fewest more requests (ties:
// the longest ResetAfter), on a refused one the tier that refused it (the
// longest RetryAfter). A tier whose Cost is c units a request counts
// Limit/c and Remaining/c requests, rounded down: beside a tier of 50
// requests, a tier of 100 events charged 10 a request binds after 7
// requests with 3 left (X-RateLimit-Remaining: 3, X-RateLimit-Limit: 10),
// the number of requests it still admits.
//
// The counts assume the next requests cost what this one did: a tier whose
// Cost varies (bytes of an upload) reports how many more requests of this
// size it admits, so a client sending larger ones is admitted fewer. A
// tier this request cost nothing (a Cost of 0) admits any number of such
// requests: it binds only when every tier cost nothing, and its counts are
// its units. A request that can never be admitted (413) is answered with
// its tiers in their own units, as its problem detail counts them: no
// count of such requests means anything.
//
// Their "Reset" is when the binding policy is back at full capacity
// (Decision.ResetAfter), or, on a refusal, when the request can be retried
// (Decision.RetryAfter), as the mail API's docs promise; durations are
// rounded up to whole seconds and instants to the next whole second, so a
// client that obeys them is never early. A concurrency tier can be the
// binding policy when it admits the fewest requests; its Reset is then 0,
// as its units come back when requests finish rather than with time.
//
// The per-policy dialects (Sanity, IETF) describe every tier that applied
// to the request. Sanity's X-RateLimit-Limit-<tier> and
// X-RateLimit-Remaining-<tier> count requests as above (its docs: "how
// many requests you have left"), and its RateLimit-Reset is the binding
// policy's. IETF names each policy's unit, so it reports every tier in its
// own: q and r in events or content-bytes where Tier.Unit says so.
type Dialect uint16

// The header dialects.
const (
	// XRateLimit: X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset in delta seconds (the mail API: "X-RateLimit-Reset: 37").
	XRateLimit Dialect = 1 << iota
	// XRateLimitUnix: the same fields, X-RateLimit-Reset as a Unix time in
	// seconds (GitHub's convention).
	XRateLimitUnix
	// XRateLimitRFC3339: the same fields, X-RateLimit-Reset as an RFC 3339
	// UTC time (Sender: "X-RateLimit-Reset: 2026-03-18T13:02:00Z").
	XRateLimitRFC3339
	// Sentry: X-Sentry-Rate-Limit-Limit, -Remaining, and -Reset as a Unix
	// time in seconds.
	Sentry
	// Rollbar: X-Rate-Limit-Limit, X-Rate-Limit-Remaining,
	// X-Rate-Limit-Remaining-Seconds (delta seconds until reset) and
	// X-Rate-Limit-Reset (the same instant as a Unix time in seconds).
	Rollbar
	// Sanity: X-RateLimit-Limit-<tier> and X-RateLimit-Remaining-<tier> for
	// every tier that applied, and RateLimit-Reset, the binding policy's
	// reset in delta seconds.
	Sanity
	// IETF: the RateLimit-Policy and RateLimit fields of
	// draft-ietf-httpapi-ratelimit-headers (the package doc says which
	// draft), one list item per tier that applied:
	//
	//	RateLimit-Policy: "org";q=600;w=60, "ip";q=25;w=1
	//	RateLimit: "org";r=412;t=37, "ip";r=24;t=1
	//
	// q is the tier's Limit, w its Window in seconds rounded up (omitted, and
	// qu="concurrent-requests" sent instead, for a concurrency limit, whose
	// Window is 0), r the Remaining and t the Reset as for the other
	// dialects; a Tier's Unit is sent as Tier.Unit says. The optional pk
	// (partition key) is sent only with Config.PartitionKeys. Behind an
	// outer Middleware the items are added to the outer's as further field
	// lines of the same lists.
	IETF

	// NoHeaders sends no rate-limit headers. It cannot be combined with
	// another dialect.
	NoHeaders Dialect = 1 << 15
)

const (
	xrlMask     = XRateLimit | XRateLimitUnix | XRateLimitRFC3339
	allDialects = xrlMask | Sentry | Rollbar | Sanity | IETF
	perPolicy   = Sanity | IETF
)

// Canonical header keys, so that values can be stored into http.Header
// directly and found again by Header.Get.
const (
	hRetryAfter     = "Retry-After"
	hXRLLimit       = "X-Ratelimit-Limit"
	hXRLRemaining   = "X-Ratelimit-Remaining"
	hXRLReset       = "X-Ratelimit-Reset"
	hSentryLimit    = "X-Sentry-Rate-Limit-Limit"
	hSentryRemain   = "X-Sentry-Rate-Limit-Remaining"
	hSentryReset    = "X-Sentry-Rate-Limit-Reset"
	hRollbarLimit   = "X-Rate-Limit-Limit"
	hRollbarRemain  = "X-Rate-Limit-Remaining"
	hRollbarSeconds = "X-Rate-Limit-Remaining-Seconds"
	hRollbarReset   = "X-Rate-Limit-Reset"
	hSanityReset    = "Ratelimit-Reset"
	hIETFPolicy     = "Ratelimit-Policy"
	hIETF           = "Ratelimit"
)

// headerBuf collects the header values of one response in one byte buffer,
// so that they cost two allocations in all (the string and the []string
// backing the values) however many headers the dialects set.
type headerBuf struct {
	buf  []byte
	keys []string
	ends []int
	prev []int // after a flush: how many values each key had before it
}

func (b *headerBuf) reset() {
	b.buf, b.keys, b.ends = b.buf[:0], b.keys[:0], b.ends[:0]
}

// undo takes the values of the last flush back out of h, so that a new
// set can be flushed in their place (the FailureTier's budget on a 401).
func (b *headerBuf) undo(h http.Header) {
	for i, k := range b.keys {
		if i < len(b.prev) && b.prev[i] > 0 {
			h[k] = h[k][:b.prev[i]:b.prev[i]]
		} else {
			delete(h, k)
		}
	}
}

func (b *headerBuf) end(key string) {
	b.keys = append(b.keys, key)
	b.ends = append(b.ends, len(b.buf))
}

func (b *headerBuf) int(key string, v int64) {
	b.buf = strconv.AppendInt(b.buf, v, 10)
	b.end(key)
}

// flush stores the collected values into h, replacing any values there,
// except that with chained (an outer middleware wrote its own first) the
// IETF fields are added as further field lines of the outer's lists.
func (b *headerBuf) flush(h http.Header, chained bool) {
	b.prev = b.prev[:0] // none: undo deletes every key
	if len(b.keys) == 0 {
		return
	}
	s := string(b.buf)
	vals := make([]string, len(b.keys))
	ends := b.ends[:len(b.keys)]
	start := 0
	for i, k := range b.keys {
		vals[i] = s[start:ends[i]]
		start = ends[i]
		if chained {
			b.chain(h, k, vals[i:i+1:i+1])
			continue
		}
		h[k] = vals[i : i+1 : i+1]
	}
}

// chain stores v, one value, under k behind an outer middleware: an IETF
// field's value is added as a further field line of the outer's list, and
// b.prev records how many lines the outer had, for undo.
func (b *headerBuf) chain(h http.Header, k string, v []string) {
	if k == hIETF || k == hIETFPolicy {
		if old := h[k]; len(old) > 0 {
			b.prev = append(b.prev, len(old))
			h[k] = append(old[:len(old):len(old)], v[0])
			return
		}
	}
	b.prev = append(b.prev, 0)
	h[k] = v
}

// seconds rounds d up to whole seconds; negative d is 0. It does not
// overflow for any d.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// retrySeconds is the Retry-After value of a denial: whole seconds rounded
// up, and at least 1, so that a client never retries at once.
func retrySeconds(d time.Duration) int64 { return max(1, seconds(d)) }

// unixCeil is now+d as Unix seconds, rounded up to the next whole second.
func unixCeil(now time.Time, d time.Duration) int64 {
	// Split now into whole seconds and nanoseconds, so that d (which may be
	// up to ~292 years) is never added to a nanosecond count that would
	// overflow.
	return now.Unix() + seconds(time.Duration(now.Nanosecond())+min(d, time.Duration(1<<62)))
}

// resetOf is what the dialects report as the reset of d: on a denial that
// waiting can cure, when to retry; otherwise when the policy is back at full
// capacity.
func resetOf(d ratekit.Decision) time.Duration {
	if !d.Allowed && d.RetryAfter != ratekit.Never {
		return d.RetryAfter
	}
	return d.ResetAfter
}

// writeHeaders appends the headers of the binding decision *d, of a tier
// the request cost cost units of (the single-policy dialects count it in
// requests: perRequest), and of the tiers that applied, to b.
func (m *Middleware) writeHeaders(b *headerBuf, s *scratch, d *ratekit.Decision, cost int, refused bool) {
	now, tiers := s.rep.Now, s.rep.Tiers
	reset := resetOf(*d)
	limit, remaining := int64(perRequest(d.Limit, cost)), int64(perRequest(d.Remaining, cost))
	if refused && d.RetryAfter != ratekit.Never {
		b.int(hRetryAfter, retrySeconds(d.RetryAfter))
	}
	dl := m.dialect
	if dl&xrlMask != 0 {
		b.int(hXRLLimit, limit)
		b.int(hXRLRemaining, remaining)
		switch {
		case dl&XRateLimit != 0:
			b.int(hXRLReset, seconds(reset))
		case dl&XRateLimitUnix != 0:
			b.int(hXRLReset, unixCeil(now, reset))
		default:
			b.buf = time.Unix(unixCeil(now, reset), 0).UTC().AppendFormat(b.buf, time.RFC3339)
			b.end(hXRLReset)
		}
	}
	if dl&Sentry != 0 {
		b.int(hSentryLimit, limit)
		b.int(hSentryRemain, remaining)
		b.int(hSentryReset, unixCeil(now, reset))
	}
	if dl&Rollbar != 0 {
		b.int(hRollbarLimit, limit)
		b.int(hRollbarRemain, remaining)
		b.int(hRollbarSeconds, seconds(reset))
		b.int(hRollbarReset, unixCeil(now, reset))
	}
	if dl&Sanity != 0 {
		for i := range tiers {
			if td := &tiers[i]; td.report {
				h, cost := m.tierHeaders[td.index], s.rep.cost(i)
				b.int(h.limit, int64(perRequest(td.Decision.Limit, cost)))
				b.int(h.remaining, int64(perRequest(td.Decision.Remaining, cost)))
			}
		}
		b.int(hSanityReset, seconds(reset))
	}
	if dl&IETF != 0 {
		n := 0
		for i := range tiers {
			td := &tiers[i]
			if !td.report {
				continue
			}
			if n > 0 {
				b.buf = append(b.buf, ", "...)
			}
			n++
			b.buf = append(b.buf, '"')
			b.buf = append(b.buf, td.Tier...)
			b.buf = append(b.buf, `";q=`...)
			b.buf = strconv.AppendInt(b.buf, int64(td.Decision.Limit), 10)
			th := &m.tierHeaders[td.index]
			unit := th.qu
			if unit == "" && th.vendorUnit == "" && td.Decision.Window == 0 {
				unit = "concurrent-requests"
			}
			if unit != "" {
				b.buf = append(b.buf, `;qu="`...)
				b.buf = append(b.buf, unit...)
				b.buf = append(b.buf, '"')
			}
			if td.Decision.Window > 0 {
				b.buf = append(b.buf, ";w="...)
				b.buf = strconv.AppendInt(b.buf, seconds(td.Decision.Window), 10)
			}
			b.buf = m.appendPK(b.buf, s, td)
			if th.vendorUnit != "" {
				b.buf = append(b.buf, `;ratekit-unit="`...)
				b.buf = append(b.buf, th.vendorUnit...)
				b.buf = append(b.buf, '"')
			}
		}
		if n > 0 {
			b.end(hIETFPolicy)
			for i, k := 0, 0; i < len(tiers); i++ {
				td := &tiers[i]
				if !td.report {
					continue
				}
				if k > 0 {
					b.buf = append(b.buf, ", "...)
				}
				k++
				b.buf = append(b.buf, '"')
				b.buf = append(b.buf, td.Tier...)
				b.buf = append(b.buf, `";r=`...)
				b.buf = strconv.AppendInt(b.buf, int64(td.Decision.Remaining), 10)
				if td.Decision.Window > 0 {
					b.buf = append(b.buf, ";t="...)
					b.buf = strconv.AppendInt(b.buf, seconds(resetOf(td.Decision)), 10)
				}
				b.buf = m.appendPK(b.buf, s, td)
			}
			b.end(hIETF)
		}
	}
}
