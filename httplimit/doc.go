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
// (ratekit.TakeEach): a request that one tier refuses is charged to none of
// the others. Cost weighs requests (a batch of events, an upload's size),
// for every tier or, with Tier.Cost, per tier: an upload tier in bytes
// beside a request tier, charged together or not at all.
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
// for an anonymous request). ClientIP unmaps IPv4-mapped addresses
// (::ffff:a.b.c.d) wherever they appear, so an IPv4 client has one key.
//
// A key is handed to a tier's limiter as it is up to MaxKeyLen (128) bytes,
// and as its SHA-256 digest beyond (StoreKey), so a keyed store bounded by
// MaxKeys is bounded in memory too, whatever tokens clients send.
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
// Every response to a request that a limit applied to, admitted or refused
// (413 included), carries the headers of the selected Dialects: the X-RateLimit-* trio with Reset in delta seconds, Unix time or
// RFC 3339; Sentry's X-Sentry-Rate-Limit-*; Rollbar's X-Rate-Limit-*;
// Sanity's per-policy X-RateLimit-Limit-<tier>; and the RateLimit-Policy and
// RateLimit fields of draft-ietf-httpapi-ratelimit-headers, one item per
// tier. A 401 that the FailureTier counts carries the FailureTier's budget;
// a request no limit applied to (every tier skipped or exempt, no
// FailureTier) gets none.
//
// The IETF dialect implements draft-11 (23 May 2026) and the working
// group's editor's copy: field syntax, the quota-unit registry (requests,
// content-bytes, concurrent-requests), the pk partition key (a Byte
// Sequence) and the problem types (quota-exceeded, abnormal-usage-detected).
// It has not been checked against draft-12 (20 November 2026). Units
// outside the registry are sent as ratekit-unit, never as qu.
// Config.PartitionKeys adds pk as a truncated HMAC-SHA256 of the key, which
// never discloses it.
//
// # Composition
//
// Two Middlewares in a chain (a global one, then a per-route one) act as
// one: the inner one's IETF items are added to the outer's, the
// single-policy headers describe the binding policy of both, and a request
// the inner one refuses is charged to no tier of the outer one.
//
// # Other transports
//
// Policy is the middleware without HTTP: tiers, all-or-none charging, the
// decision Report and the Problem document. A gRPC interceptor (or any
// other transport) builds one with NewPolicy, fills each tier's key and
// cost from its own request, and calls Decide, Settle and Fail.
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
// tier (each Take's answer is the tier's state, so no dialect needs more),
// two allocations for the header values (one string holding all of them
// and the []string around it) whatever the number of tiers and dialects;
// the writer it hands the handler (which records the status and links an
// inner Middleware) is pooled. A request
// refused by tier k costs a Take of tiers 1..k, the rollback of tiers
// before k (none when ratekit.TakeEach decides the tiers' limiters
// together) and a Peek of the tiers after it, plus, for the Sanity and IETF
// dialects and OnDecision, a Peek of each tier that did not refuse; its
// problem document is written from pooled buffers. See BenchmarkMiddleware
// here and BenchmarkHTTPMiddlewareRefusal in bench/.
package httplimit
