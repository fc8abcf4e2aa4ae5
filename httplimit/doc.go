// Package httplimit is net/http middleware that enforces a service's quotas
// on every request and reports them in response headers: per org, per API
// token, per client IP, all at once, with the refusals and headers that
// clients of real APIs expect.
//
// # Basics
//
// A Middleware is built from a Config whose Tiers each pair a KeyFunc (how
// to find the key in a request) with a source of limiters (which
// ratekit.Limiter limits that key, usually from a ratekit.Keyed store,
// adapted by Per). Wrap puts it in front of a handler:
//
//	m, err := httplimit.New(httplimit.Config{
//		Tiers: []httplimit.Tier{
//			{Name: "org", Key: orgOf, Limiter: httplimit.Per(orgs.Get)},
//			{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)},
//			{Name: "ip", Key: ipOf, Limiter: httplimit.Per(ips.Get)},
//		},
//		Headers: httplimit.XRateLimit | httplimit.IETF,
//	})
//	http.ListenAndServe(addr, m.Wrap(api))
//
// Every request is charged to every tier that applies, all or none
// (ratekit.TakeAll): a request that one tier refuses is charged to none of
// the others. Cost weighs requests (a batch of events, an upload's size).
// Units of concurrency limits (ratekit.Holder) are released when the
// handler returns, also when it panics; the panic then carries on to
// net/http's server, which recovers it.
//
// # Keys
//
// Bearer, Header and ClientIP find the usual keys; any func can be a
// KeyFunc. ClientIP trusts forwarding headers (X-Forwarded-For or
// Forwarded) only from an explicit list of proxies, and only the part those
// proxies wrote, so a client cannot spoof its way out of a per-IP limit.
// When a tier finds no key, its Missing setting skips the tier or refuses the
// request with 401, and its Fallback can supply another key (the client IP
// for an anonymous request).
//
// # Refusals
//
// A request a tier refuses gets 429 Too Many Requests, a Retry-After in
// whole seconds (rounded up, never 0) and an application/problem+json body
// (type, title, status, detail, retry_after, violated-policies), as in the
// mail API's docs. A request that can never be admitted, because it costs
// more than a tier admits at once (ratekit.Never), gets a distinct answer: 413
// with the ProblemExceedsLimit type and no Retry-After, because retrying it
// unchanged can never succeed. Config.Problem writes them differently.
//
// A FailureTier is charged by responses, not requests: each 401 the handler
// (or a MissingReject tier) answers takes a unit from the client IP's
// limiter, and once it is exhausted every request from that IP is refused
// before reaching the handler, valid credentials or not.
//
// # Headers
//
// Every response, admitted or refused, carries the headers of the selected
// Dialects: the X-RateLimit-* trio with Reset in delta seconds, Unix time or
// RFC 3339; Sentry's X-Sentry-Rate-Limit-*; Rollbar's X-Rate-Limit-*;
// Sanity's per-policy X-RateLimit-Limit-<tier>; and the RateLimit-Policy and
// RateLimit fields of draft-ietf-httpapi-ratelimit-headers-11, one item per
// tier.
//
// # Time
//
// The middleware reads Config.Clock once per request and judges every tier
// at that instant, so tests drive it with a clock.Mock and fixed instants.
//
// # Observing
//
// OnDecision sees every decision with each tier's part in it, for logs and
// metrics; OnLimitReached is told once when a key of a tier is first
// refused. Shadow mode computes and reports everything but never refuses,
// to roll limits out safely.
//
// # Cost
//
// An admitted request costs one clock reading, a key lookup and a Take per
// tier, and two allocations for the header values (one string holding all
// of them and the []string around it), whatever the number of tiers and
// dialects; a FailureTier or Config.Refund adds one for the status recorder.
// The Sanity and IETF dialects and OnDecision need each tier's own state
// and add a Peek per tier. See BenchmarkMiddleware.
package httplimit
