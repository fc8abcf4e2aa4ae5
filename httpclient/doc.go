// Package httpclient is an http.RoundTripper that lives within other
// services' rate limits, as every seed API's advice to clients asks: honour
// Retry-After, back off exponentially with jitter, cap the retries, never
// retry 401s, and read the rate-limit headers to slow down before the limit
// rather than after.
//
// # Basics
//
//	tr, err := httpclient.New(httpclient.Config{
//		OnWait: func(req *http.Request, why httpclient.Reason, d time.Duration) {
//			log.Printf("%s %s: waiting %s (%s)", req.Method, req.URL.Host, d, why)
//		},
//	})
//	if err != nil { ... }
//	client := &http.Client{Transport: tr}
//	resp, err := client.Get("https://api.sender.net/v2/subscribers")
//	var rl *httpclient.RetryError
//	if errors.As(err, &rl) {
//		// Still rate-limited after every attempt: rl.StatusCode, rl.RetryAfter,
//		// rl.Header and rl.Body say what the server said last.
//	}
//
// One Transport should serve every goroutine that talks to a service:
// what one response says about the host's quota paces them all.
//
// # What it reads
//
// ParseRetryAfter reads Retry-After (delta seconds or an HTTP-date).
// ParseQuotas reads every common dialect of quota headers: X-RateLimit-*
// with a reset in delta seconds (a mail API), an RFC 3339 time (Sender) or a
// Unix time (GitHub-style; Sentry's X-Sentry-Rate-Limit-Reset); Rollbar's
// X-Rate-Limit-* with X-Rate-Limit-Remaining-Seconds; Sanity's and Kong's
// per-policy X-RateLimit-Limit-<name>; and the IETF RateLimit-Policy and
// RateLimit fields, several policies each. ParseQuota picks the binding
// policy: the one with the least Remaining. A numeric reset below 1e9 is a
// delay in seconds, from 1e9 a Unix time in seconds, from 1e12 one in
// milliseconds.
//
// # What it does
//
// Retries: a 429, or a 503 with Retry-After, is retried up to MaxAttempts
// times in all, after at least Retry-After plus equal-jitter exponential
// backoff, each wait capped at MaxWait. Non-idempotent methods are retried
// only with an Idempotency-Key header or RetryNonIdempotent; bodies are
// replayed with GetBody. When it gives up it returns a *RetryError with the
// last response's details.
//
// Pacing: per host, shared by all goroutines. A Retry-After holds every
// request to the host off until it has passed; Remaining and Reset bound how
// many more requests go before the reset, spreading the last PaceBelow
// percent of the limit evenly over the time left. Against a server that
// enforces its limit and says so in its headers, the transport draws no 429
// once it has heard from the server; the first requests, sent before any
// response, go blind and may draw some (TestBurstAgainstLimitingServer
// compares it with a naive client, for every dialect httplimit writes).
//
// # Time
//
// All waiting is done on Config.Clock (nil: the real clock) and ends when
// the request's context does. A wait that would outlast the context's
// deadline is not begun: the request fails at once with an error for which
// errors.Is(err, context.DeadlineExceeded) holds. Tests drive the transport
// with a clock.Mock, or with the real clock inside a testing/synctest bubble
// and a base RoundTripper that serves requests in memory, so nothing sleeps.
//
// # Caveats
//
// Pacing counts requests, not bytes: IETF policies in other quota units are
// skipped. Headers are advisory: servers may refuse earlier than they said,
// and other clients may share the quota, so 429s remain possible and are
// handled. Header values in whole seconds are rounded up by servers, so the
// transport may wait up to a second longer than strictly needed; it never
// waits less than asked. Network errors are not retried: that is a different
// policy, for a transport below this one.
package httpclient
