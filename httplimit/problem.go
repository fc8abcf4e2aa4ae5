package httplimit

import (
	"net/http"
	"strconv"
)

// Problem types of the refusals the middleware writes (RFC 9457 "type"
// members). Config.ProblemType replaces ProblemQuotaExceeded and
// ProblemAbnormalUsage (every 429) with a service's own URI.
const (
	// ProblemQuotaExceeded is the type of a 429: a tier (or the FailureTier)
	// refused the request and it can be retried after Retry-After. It is the
	// quota-exceeded type of draft-ietf-httpapi-ratelimit-headers' Problem
	// Types section.
	ProblemQuotaExceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"

	// ProblemExceedsLimit is the type of a 413: the request costs more units
	// than a tier admits at once (ratekit.Never), so it can never be
	// admitted and must not be retried as it is. There is no Retry-After.
	// The answer is 413 (Content Too Large) rather than a 429 because
	// clients retry 429s, and retrying this request can only fail again; the
	// client has to make it smaller (a smaller batch, a narrower query).
	ProblemExceedsLimit = "https://pkg.go.dev/github.com/ratekit/ratekit/httplimit#ProblemExceedsLimit"

	// ProblemAbnormalUsage is the type of a 429 from the FailureTier: the
	// client's failures (401s) suggest unintended or malicious use. It is
	// the abnormal-usage-detected type of the draft's Problem Types
	// section.
	ProblemAbnormalUsage = "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"

	// ProblemMissingKey is the type of a 401 written for a tier whose Missing
	// is MissingReject, when the request carries no key for it.
	ProblemMissingKey = "https://pkg.go.dev/github.com/ratekit/ratekit/httplimit#ProblemMissingKey"
)

// Problem is the RFC 9457 problem detail of a refusal, written as
// application/problem+json. Its JSON shape follows the mail API's:
//
//	{"type": "https://api.sendops.dev/errors/rate_limit",
//	 "title": "Rate limit exceeded", "status": 429,
//	 "detail": "Too many requests for this organization. Retry in 12 seconds.",
//	 "retry_after": 12, "violated-policies": ["org"]}
type Problem struct {
	// Type is the problem type URI: Config.ProblemType or one of the
	// Problem* constants.
	Type string `json:"type"`
	// Title is the type's short summary ("Rate limit exceeded" for a 429).
	Title string `json:"title"`
	// Status is the HTTP status code: 429, 413 or 401.
	Status int `json:"status"`
	// Detail explains this refusal. On a 429 it is the binding tier's
	// Detail (default: "Too many requests for policy \"org\".") and
	// "Retry in 12 seconds."; on a 413 and a 401 it names the tier and
	// what is wrong with the request.
	Detail string `json:"detail,omitempty"`
	// RetryAfter is the Retry-After header's value in seconds (at least 1),
	// or 0, and omitted, when there is nothing to wait for (413, 401).
	RetryAfter int64 `json:"retry_after,omitempty"`
	// ViolatedPolicies names the tiers that refused the request (the
	// draft's "violated-policies" extension member).
	ViolatedPolicies []string `json:"violated-policies,omitempty"`
}

// WriteProblem writes p as the response: Content-Type
// application/problem+json, status p.Status and p as JSON. For a 401 it also
// sets "WWW-Authenticate: Bearer" unless the header is already set, as
// RFC 9110 requires a challenge on every 401. It is what the middleware
// writes when Config.Problem is nil, and what a custom one can call after
// adjusting p.
func WriteProblem(w http.ResponseWriter, _ *http.Request, p *Problem) {
	writeProblemBody(w, p.Status, appendProblem(nil, p, nil))
}

// Header values shared by every problem response. Their capacity is their
// length, so that a handler's Add copies rather than writes into them.
var (
	hvProblemJSON = []string{"application/problem+json"}
	hvNosniff     = []string{"nosniff"}
	hvBearer      = []string{"Bearer"}
)

// writeProblemBody writes body, a problem+json document ending in a
// newline, with status.
func writeProblemBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hvProblemJSON[:1:1]
	h["X-Content-Type-Options"] = hvNosniff[:1:1]
	delete(h, "Content-Length") // net/http sets it for a body this small
	if status == http.StatusUnauthorized && len(h["Www-Authenticate"]) == 0 {
		h["Www-Authenticate"] = hvBearer[:1:1]
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// appendProblem appends p as JSON and a newline to b, in json.Marshal's
// field order. detail, if not nil, is written in place of p.Detail, so
// that the middleware need not make a string of it.
func appendProblem(b []byte, p *Problem, detail []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, p.Type)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, p.Title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(p.Status), 10)
	if detail != nil || p.Detail != "" {
		b = append(b, `,"detail":`...)
		if detail != nil {
			b = appendJSONString(b, detail)
		} else {
			b = appendJSONString(b, p.Detail)
		}
	}
	if p.RetryAfter != 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, p.RetryAfter, 10)
	}
	if len(p.ViolatedPolicies) > 0 {
		b = append(b, `,"violated-policies":[`...)
		for i, v := range p.ViolatedPolicies {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, escaping quotes,
// backslashes, control characters and, as encoding/json does, <, > and &.
func appendJSONString[S string | []byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// A 429's problem document, rendered ahead of time as far as it is known
// before the request: everything up to the number of seconds in its
// detail. The rest is numbers and tier names (which need no escaping), so
// a refusal is written without scanning its text for characters to
// escape, and without building a Problem.
//
//	{"type":"…","title":"Rate limit exceeded","status":429,"detail":"Too many requests for policy \"org\". Retry in
func rateProblemPrefix(typ, detail string) []byte {
	b := append([]byte(nil), `{"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"title":"Rate limit exceeded","status":429,"detail":`...)
	b = appendJSONString(b, detail+" Retry in ")
	return b[:len(b)-1] // the detail's closing quote comes after the seconds
}

// appendRateProblem appends the problem document of rep's 429 (a tier or
// the FailureTier refused) to b, from prefix, the bound tier's
// rateProblemPrefix: the same bytes as appendProblem of Policy.Problem.
func (p *Policy) appendRateProblem(b, prefix []byte, rep *Report) []byte {
	retry := retrySeconds(rep.Decision.RetryAfter)
	b = append(b, prefix...)
	b = strconv.AppendInt(b, retry, 10)
	if retry == 1 {
		b = append(b, ` second.","retry_after":`...)
	} else {
		b = append(b, ` seconds.","retry_after":`...)
	}
	b = strconv.AppendInt(b, retry, 10)
	b = append(b, `,"violated-policies":[`...)
	if rep.Outcome == RefusedFailure {
		b = appendQuoted(b, p.failure.Name)
	} else {
		n := 0
		for i := range p.tiers {
			if rep.Tiers[i].refused {
				if n > 0 {
					b = append(b, ',')
				}
				n++
				b = appendQuoted(b, rep.Tiers[i].Tier)
			}
		}
	}
	return append(b, "]}\n"...)
}
