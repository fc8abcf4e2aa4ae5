package grpclimit

import (
	"context"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"github.com/benbjohnson/clock"
	"google.golang.org/grpc/codes"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/internal/core"
)

// KeyFunc finds the key a Tier limits a call on: an API token from the
// call's metadata, the peer's address, an org ID. ctx is the call's
// incoming context (metadata.FromIncomingContext, peer.FromContext) and
// fullMethod the method's full name ("/pkg.Service/Method"). It reports
// ok false when the call carries no key. It is called once per call and
// tier, from the goroutine serving the call, concurrently for concurrent
// calls.
type KeyFunc func(ctx context.Context, fullMethod string) (key string, ok bool)

// CostFunc returns how many units a call takes: ctx and fullMethod as for
// KeyFunc, and req the request message of a unary call (nil for a stream,
// which is charged once when it opens). A cost of 0 is admitted and takes
// nothing; a negative cost, like one larger than a tier admits at once,
// can never be admitted (codes.InvalidArgument). See MethodCost.
type CostFunc func(ctx context.Context, fullMethod string, req any) int

// Tier is one layer of limits on a call, as httplimit.Tier is on an HTTP
// request: per org, per token, per peer address, or one limit shared by
// all (a nil Key). Every call is charged to every tier that applies to it,
// all or none.
type Tier struct {
	// Name names the tier in metadata, status details and hooks: required,
	// unique, letters, digits, '-', '_' and '.' (at most 64).
	Name string
	// Key finds the call's key; nil: every call has the key "".
	Key KeyFunc
	// Fallback is asked when Key finds none; its keys are kept apart from
	// Key's as httplimit.Tier.Fallback describes.
	Fallback KeyFunc
	// Missing says what happens when no key is found: skip the tier
	// (httplimit.MissingSkip, the default) or refuse the call with
	// codes.Unauthenticated (httplimit.MissingReject).
	Missing httplimit.Missing
	// Limiter returns the limiter of a key (httplimit.Per, httplimit.Shared);
	// required. nil for a key exempts it. As httplimit.Tier.Limiter.
	Limiter func(key string) ratekit.Limiter
	// Detail is the first sentence of the status message of a refusal this
	// tier causes. Empty: a sentence naming the tier.
	Detail string
	// Unit is the tier's quota unit, as httplimit.Tier.Unit.
	Unit string
	// Cost returns the units a call takes from this tier. nil: Config.Cost.
	Cost CostFunc
}

// FailureTier is a limit charged by failed calls rather than calls, as
// httplimit.FailureTier: every call that ends with a code Counts takes one
// unit from the limiter of its key (usually the peer address), and once a
// key has none left its calls are refused before any Tier is charged.
type FailureTier struct {
	// Name names the policy; it must differ from every Tier's.
	Name string
	// Key finds the key; required. A call with no key is not checked.
	Key KeyFunc
	// Limiter returns the limiter of a key; required.
	Limiter func(key string) ratekit.Limiter
	// Counts reports whether a call's code is a failure. nil: only
	// codes.Unauthenticated. The interceptor's own refusals never count,
	// except its Unauthenticated for a missing key (MissingReject) when
	// Counts accepts it.
	Counts func(codes.Code) bool
	// Detail is the first sentence of the status message of its refusals.
	Detail string
}

// Config configures an Interceptor. Only Tiers (or Failure) is required.
type Config struct {
	// Tiers are the limits every call is charged to, all or none.
	Tiers []Tier
	// Failure, if set, is a limit charged by failed calls.
	Failure *FailureTier
	// Cost returns the units a call takes from every tier without a Cost
	// of its own. nil: 1.
	Cost CostFunc
	// Skip, if set, exempts the methods it accepts from every limit: they
	// are neither charged nor reported (health checks, reflection).
	Skip func(fullMethod string) bool
	// Headers selects the rate-limit fields sent in response metadata, as
	// httplimit.Config.Headers selects headers; keys are lower-cased. The
	// zero value is httplimit.XRateLimit | httplimit.IETF.
	Headers httplimit.Dialect
	// Shadow judges, charges and reports every call but refuses none, as
	// httplimit.Config.Shadow.
	Shadow bool
	// Refund, if set, gives back the units of an admitted call that ends
	// with a code it accepts (codes.Unavailable, say). Units of
	// concurrency tiers are released either way when the call ends.
	Refund func(codes.Code) bool
	// Clock is read once per call for the instant every limit is judged
	// at. nil: the real clock.
	Clock clock.Clock
	// OnDecision, if set, is called once per judged call, after the
	// decision and before the handler runs or the refusal is returned,
	// for logs and metrics. d and tiers are as in httplimit's OnDecision:
	// d is the binding decision (zero when no tier applied), tiers has an
	// entry per Tier, then the FailureTier's, and is valid only during the
	// call. In Shadow mode a refused decision (d.Allowed false) is served.
	// It is called from the call's goroutine, concurrently for concurrent
	// calls.
	OnDecision func(ctx context.Context, fullMethod string, d ratekit.Decision, tiers []httplimit.TierDecision)
	// TierDecisionsOnRefusal spares OnDecision the Peek of 0 units that
	// fills the Decision of each tier that did not refuse a refused call,
	// as httplimit.Config.TierDecisionsOnRefusal does (see
	// httplimit.TierDecision.Decision for what those tiers carry then).
	// The Sanity and IETF dialects need that state for their metadata, so
	// it has an effect only when Headers selects neither (the default
	// selects IETF). Admitted calls cost no Peek either way. Set it when
	// OnDecision only counts outcomes, as otelratekit's GRPCHooks do.
	TierDecisionsOnRefusal bool
	// OnLimitReached, if set, is called when a key of a tier is first
	// refused, as httplimit.Config.OnLimitReached.
	OnLimitReached func(policy, key string, d ratekit.Decision)
	// PartitionKeys and PartitionKeySecret add the IETF pk parameter, as
	// in httplimit.Config.
	PartitionKeys      bool
	PartitionKeySecret []byte
}

// Interceptor enforces the limits of its Config on gRPC calls: Unary and
// Stream return its server interceptors. Build it with New. It is safe for
// concurrent use.
type Interceptor struct {
	pol        *httplimit.Policy
	hdr        *httplimit.Middleware // writes the rate-limit fields of a Report
	tiers      []Tier
	failure    *FailureTier
	failCounts func(codes.Code) bool
	cost       CostFunc
	skip       func(string) bool
	shadow     bool
	refund     func(codes.Code) bool
	clock      clock.Clock
	onDecision func(context.Context, string, ratekit.Decision, []httplimit.TierDecision)
	perTier    bool
	lower      map[string]string // canonical header key -> metadata key
	pool       sync.Pool         // *call
}

// New returns an Interceptor for cfg, or an error wrapping
// ratekit.ErrInvalidConfig that names the problem, as httplimit.New does:
// no tiers, a tier without Name or Limiter, a duplicate or malformed name,
// a FailureTier without Key or Limiter, an unknown Missing or Dialect.
func New(cfg Config) (*Interceptor, error) {
	hc := httplimit.Config{
		Headers:            cfg.Headers,
		Shadow:             cfg.Shadow,
		Clock:              cfg.Clock,
		OnLimitReached:     cfg.OnLimitReached,
		PartitionKeys:      cfg.PartitionKeys,
		PartitionKeySecret: cfg.PartitionKeySecret,
	}
	if hc.Headers == 0 {
		hc.Headers = httplimit.XRateLimit | httplimit.IETF
	}
	for _, t := range cfg.Tiers {
		hc.Tiers = append(hc.Tiers, httplimit.Tier{
			Name: t.Name, Missing: t.Missing, Limiter: t.Limiter, Detail: t.Detail, Unit: t.Unit,
		})
	}
	ic := &Interceptor{
		tiers: cfg.Tiers, failure: cfg.Failure, cost: cfg.Cost, skip: cfg.Skip,
		shadow: cfg.Shadow, refund: cfg.Refund, clock: core.Clock(cfg.Clock),
		onDecision: cfg.OnDecision,
	}
	if f := cfg.Failure; f != nil {
		if f.Key == nil {
			return nil, core.Invalid("grpclimit", "failure tier %q has no Key", f.Name)
		}
		// The Policy counts whatever it is told to; the interceptor decides
		// which codes are failures.
		hc.Failure = &httplimit.FailureTier{Name: f.Name, Key: noKey, Limiter: f.Limiter,
			Counts: func(int) bool { return true }, Detail: f.Detail}
		ic.failCounts = f.Counts
		if ic.failCounts == nil {
			ic.failCounts = func(c codes.Code) bool { return c == codes.Unauthenticated }
		}
	}
	m, err := httplimit.New(hc)
	if err != nil {
		return nil, err
	}
	ic.pol, ic.hdr = m.Policy(), m
	ic.perTier = hc.Headers&(httplimit.Sanity|httplimit.IETF) != 0 || cfg.OnDecision != nil && !cfg.TierDecisionsOnRefusal
	ic.lower = make(map[string]string)
	for _, k := range fieldKeys {
		ic.lower[k] = strings.ToLower(k)
	}
	for _, t := range cfg.Tiers {
		for _, p := range []string{"X-RateLimit-Limit-", "X-RateLimit-Remaining-"} {
			k := textproto.CanonicalMIMEHeaderKey(p + t.Name)
			ic.lower[k] = strings.ToLower(k)
		}
	}
	if f := cfg.Failure; f != nil {
		for _, p := range []string{"X-RateLimit-Limit-", "X-RateLimit-Remaining-"} {
			k := textproto.CanonicalMIMEHeaderKey(p + f.Name)
			ic.lower[k] = strings.ToLower(k)
		}
	}
	ic.pool.New = func() any {
		return &call{rep: ic.pol.NewReport(), hdr: make(http.Header)}
	}
	return ic, nil
}

// noKey stands in for the HTTP KeyFunc of the FailureTier given to
// httplimit, which the interceptor never calls: it fills keys itself.
func noKey(*http.Request) (string, bool) { return "", false }

// fieldKeys are the header keys of httplimit's dialects, besides the
// per-tier ones, so that their metadata keys are lower-cased once.
var fieldKeys = []string{
	"Retry-After", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset",
	"X-Sentry-Rate-Limit-Limit", "X-Sentry-Rate-Limit-Remaining", "X-Sentry-Rate-Limit-Reset",
	"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Remaining-Seconds", "X-Rate-Limit-Reset",
	"Ratelimit-Reset", "Ratelimit-Policy", "Ratelimit",
}

// MethodCost returns a CostFunc that charges each full method name its
// cost in costs, and every other method otherwise. Costs are looked up in
// a copy of the map, so the caller may change its own afterwards.
func MethodCost(costs map[string]int, otherwise int) CostFunc {
	m := make(map[string]int, len(costs))
	for k, v := range costs {
		m[k] = v
	}
	return func(_ context.Context, fullMethod string, _ any) int {
		if c, ok := m[fullMethod]; ok {
			return c
		}
		return otherwise
	}
}
