// Package grpclimit enforces a service's quotas on gRPC calls and lets gRPC
// clients live within them: server interceptors over the same tiers as
// httplimit (its transport-neutral Policy), and a client interceptor that
// retries no sooner than the server asked. It is a module of its own
// (github.com/ratekit/ratekit/grpclimit), so that ratekit's root module
// does not depend on grpc-go.
//
// # Server
//
// New builds an Interceptor from a Config whose Tiers each pair a KeyFunc
// (how to find the key in a call: Bearer for the token in "authorization"
// metadata, Metadata for any key, PeerIP for the peer's address behind
// trusted proxies, or any func) with a source of limiters, as httplimit's
// do. Install both interceptors:
//
//	ic, err := grpclimit.New(grpclimit.Config{Tiers: tiers, Cost: grpclimit.MethodCost(costs, 1)})
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(recovery, ic.Unary()),
//		grpc.ChainStreamInterceptor(recovery, ic.Stream()),
//	)
//
// Every call is charged to every tier that applies, all or none, with a
// cost per full method name (MethodCost) or per request (CostFunc sees a
// unary call's request message). A stream is charged once, when it opens.
// Units of concurrency limits (ratekit.Holder) are released when the call
// ends: when a unary handler returns or panics, and when a stream's handler
// returns, which ends the stream. A panic carries on to the interceptors
// outside (put a recovery interceptor there; grpc-go does not recover).
//
// # Refusals
//
// A refusal is a status any gRPC client can read, with the standard
// google.rpc error details (google.golang.org/genproto/googleapis/rpc/errdetails):
//
//	outcome                        code                 details                  httplimit
//	a tier refused (rate)          ResourceExhausted    RetryInfo, QuotaFailure  429
//	the FailureTier refused        ResourceExhausted    RetryInfo, QuotaFailure  429
//	never fits (cost > capacity)   InvalidArgument      QuotaFailure             413
//	no key for a MissingReject     Unauthenticated      none                     401
//
// RetryInfo.retry_delay is the binding refusal's RetryAfter, to the
// nanosecond. QuotaFailure has a violation per refusing tier, whose
// subject is "policy:<tier>", quota_id the tier's name and quota_value its
// limit; the key (a token, an address) is never disclosed. A call that can
// never fit gets InvalidArgument, which clients do not retry, and no
// RetryInfo, because retrying it unchanged can only fail again. The status
// message is httplimit's problem detail ("Too many requests for policy
// "org". Retry in 12 seconds.").
//
// # Metadata
//
// The rate-limit fields of httplimit's dialects (Config.Headers; by
// default X-RateLimit and IETF) are sent with lower-case keys: in the
// response headers of an admitted call, and in the trailers of a refused
// one (with retry-after in whole seconds on a refusal that waiting cures):
//
//	x-ratelimit-limit: 600
//	x-ratelimit-remaining: 412
//	x-ratelimit-reset: 37
//	ratelimit-policy: "org";q=600;w=60
//	ratelimit: "org";r=412;t=37
//
// # Client
//
// A Retrier's Unary interceptor retries a call refused with
// ResourceExhausted (or Unavailable with a RetryInfo) if its method is
// marked idempotent, never sooner than the RetryInfo delay, backing off
// with equal jitter, up to MaxAttempts; a wait that would outlast the
// call's deadline fails at once, as httpclient's does. Its Stream
// interceptor does the same for streams of every kind refused before their
// first response, sending again the messages already sent (up to
// RetryConfig.MaxReplayBytes; a stream that sent more is not retried, and
// fails with ErrReplayTooLarge). See Retrier and Retrier.Stream.
//
// # Observing
//
// Config.OnDecision sees every judged call's method, binding decision and
// each tier's part in it, with httplimit's types, so that one metrics
// adapter serves both transports; OnLimitReached is told once when a key
// of a tier is first refused. Shadow mode judges and reports every call
// but refuses none. OpenTelemetry metrics: otelratekit's Metrics.GRPCHooks,
// with Config.TierDecisionsOnRefusal set from them, so that counting
// refusals costs no Peek per tier.
//
// # Time
//
// The interceptor reads Config.Clock once per call, and the Retrier waits
// on RetryConfig.Clock, so tests drive both with a clock.Mock.
package grpclimit
