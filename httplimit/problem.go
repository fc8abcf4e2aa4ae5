package httplimit

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem types of the refusals the middleware writes (RFC 9457 "type"
// members). Config.ProblemType replaces ProblemQuotaExceeded with a
// service's own URI.
const (
	// ProblemQuotaExceeded is the type of a 429: a tier (or the FailureTier)
	// refused the request and it can be retried after Retry-After. It is the
	// quota-exceeded type of draft-ietf-httpapi-ratelimit-headers-11,
	// section 5.1.
	ProblemQuotaExceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"

	// ProblemExceedsLimit is the type of a 413: the request costs more units
	// than a tier admits at once (ratekit.Never), so it can never be
	// admitted and must not be retried as it is. There is no Retry-After.
	// The answer is 413 (Content Too Large) rather than a 429 because
	// clients retry 429s, and retrying this request can only fail again; the
	// client has to make it smaller (a smaller batch, a narrower query).
	ProblemExceedsLimit = "https://pkg.go.dev/github.com/ratekit/ratekit/httplimit#ProblemExceedsLimit"

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
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
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
// RFC 9110 requires a challenge on every 401. It is the default of
// Config.Problem, and what a custom one can call after adjusting p.
func WriteProblem(w http.ResponseWriter, _ *http.Request, p *Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		// A Problem holds only strings and ints: Marshal cannot fail.
		http.Error(w, http.StatusText(p.Status), p.Status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
