package otelratekit

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// Per-tier outcomes, indexes into tierCounts.
const (
	tierAllowed = iota
	tierRefused
	tierNever
	tierShadow
	nTierOutcomes
)

var tierOutcomes = [nTierOutcomes]string{OutcomeAllowed, OutcomeRefused, OutcomeNever, OutcomeShadow}

// Request outcomes, indexes into httpSource.requests.
const (
	reqAllowed = iota
	reqRefused
	reqNever
	reqShadow
	reqUnauthorized
	reqUnlimited
	nReqOutcomes
)

var reqOutcomes = [nReqOutcomes]string{OutcomeAllowed, OutcomeRefused, OutcomeNever, OutcomeShadow, OutcomeUnauthorized, OutcomeUnlimited}

// counter is an atomic count alone on its cache line, so that the counts of
// different tiers do not slow each other down on different cores.
type counter struct {
	atomic.Int64
	_ [56]byte
}

// httpSource is one instrumented middleware: plain atomic counts, added to
// on the request's path and read by the collection callback. Counting with
// atomics rather than through a synchronous OpenTelemetry counter keeps the
// per-request cost to one uncontended add per applied tier: the SDK's Add
// looks its attribute set up in a map under a lock.
type httpSource struct {
	tiers      []string // tier names, then the FailureTier's
	reject     []bool   // the tier rejects a request without a key (MissingReject)
	anyReject  bool
	hasFailure bool
	shadow     bool

	counts   [][nTierOutcomes]counter // per tier
	requests [nReqOutcomes]counter

	retryOpts   []metric.RecordOption // per tier: ratekit.retry_after's attributes
	reachedOpts map[string]metric.AddOption
	m           *Metrics
}

// InstrumentHTTP wires m into cfg, a configuration about to be passed to
// httplimit.New: it sets OnDecision and OnLimitReached, calling those already
// set afterwards, and records ratekit.requests, ratekit.decisions,
// ratekit.retry_after and ratekit.limit_reached for the Middleware built from
// it. Call it once cfg's Tiers, Failure and Shadow are final; later changes
// to them are not seen. If cfg had no OnDecision, it also sets
// TierDecisionsOnRefusal, so that the metrics cost no Peek per tier.
//
// Per request it counts one outcome in ratekit.requests: allowed, refused
// (429), never (413), unauthorized (401 for a missing key), unlimited (no
// tier applied) or, in shadow mode, shadow for any would-be refusal. Per
// tier, ratekit.decisions counts allowed for every tier that applied to an
// admitted request (the FailureTier included), and refused, never or (in
// shadow mode) shadow for every tier that refused a request; a tier that
// would have admitted a request another tier refused is not counted, since
// all or none it was not charged. Each refusal (and would-be refusal) that
// waiting can cure records its RetryAfter in ratekit.retry_after, under the
// binding tier: the refusing one with the longest RetryAfter.
//
// Tiers of different middlewares with the same Name add up. The cost on the
// request's path is an atomic add per applied tier and one per request, and
// no allocation (BenchmarkHTTP).
func (m *Metrics) InstrumentHTTP(cfg *httplimit.Config) {
	s := &httpSource{shadow: cfg.Shadow, m: m, reachedOpts: make(map[string]metric.AddOption)}
	for _, t := range cfg.Tiers {
		s.tiers = append(s.tiers, t.Name)
		rej := t.Missing == httplimit.MissingReject
		s.reject = append(s.reject, rej)
		s.anyReject = s.anyReject || rej
	}
	if cfg.Failure != nil {
		s.tiers = append(s.tiers, cfg.Failure.Name)
		s.reject = append(s.reject, false)
		s.hasFailure = true
	}
	s.counts = make([][nTierOutcomes]counter, len(s.tiers))
	for _, name := range s.tiers {
		set := attribute.NewSet(AttrPolicy.String(name))
		s.retryOpts = append(s.retryOpts, metric.WithAttributeSet(set))
		s.reachedOpts[name] = metric.WithAttributeSet(set)
	}

	if user := cfg.OnDecision; user != nil {
		cfg.OnDecision = func(r *http.Request, d ratekit.Decision, tds []httplimit.TierDecision) {
			s.onDecision(r, d, tds)
			user(r, d, tds)
		}
	} else {
		cfg.OnDecision = s.onDecision
		cfg.TierDecisionsOnRefusal = true
	}
	if user := cfg.OnLimitReached; user != nil {
		cfg.OnLimitReached = func(policy, key string, d ratekit.Decision) {
			s.onLimitReached(policy, key, d)
			user(policy, key, d)
		}
	} else {
		cfg.OnLimitReached = s.onLimitReached
	}

	m.mu.Lock()
	m.https[s] = struct{}{}
	m.mu.Unlock()
}

// onDecision is the middleware's OnDecision: the hot path.
func (s *httpSource) onDecision(r *http.Request, d ratekit.Decision, tds []httplimit.TierDecision) {
	if d.Allowed && !s.rejected(tds) {
		s.requests[reqAllowed].Add(1)
		for i := range tds {
			if tds[i].Applied {
				s.counts[i][tierAllowed].Add(1)
			}
		}
		return
	}
	s.notAllowed(r, d, tds)
}

// rejected reports a 401 for a missing key: a MissingReject tier found no
// key. (The binding Decision is then the FailureTier's Peek, which may be
// allowed.)
func (s *httpSource) rejected(tds []httplimit.TierDecision) bool {
	if !s.anyReject {
		return false
	}
	for i := range tds {
		if tds[i].Missing && s.reject[i] {
			return true
		}
	}
	return false
}

// notAllowed counts everything but an admitted request that a tier applied
// to. It follows httplimit's order of judgement: the FailureTier, then a
// missing key, then the tiers.
func (s *httpSource) notAllowed(r *http.Request, d ratekit.Decision, tds []httplimit.TierDecision) {
	if s.hasFailure {
		if i := len(tds) - 1; tds[i].Applied && !tds[i].Decision.Allowed {
			s.refusal(reqRefused)
			s.tierRefusal(i, tierRefused)
			s.recordRetry(r, i, tds[i].Decision.RetryAfter)
			return
		}
	}
	if s.rejected(tds) {
		s.refusal(reqUnauthorized)
		return
	}
	switch {
	case d.RetryAfter == ratekit.Never:
		s.refusal(reqNever)
	case !d.Allowed && d.RetryAfter > 0:
		s.refusal(reqRefused)
	default:
		// No tier was charged: the binding Decision is zero. The FailureTier
		// may still have checked (and admitted) the request.
		out := reqUnlimited
		for i := range tds {
			if tds[i].Applied {
				out = reqAllowed
				s.counts[i][tierAllowed].Add(1)
			}
		}
		s.requests[out].Add(1)
		return
	}
	bind := -1
	n := len(tds)
	if s.hasFailure {
		n-- // the FailureTier did not refuse: it was judged above
	}
	for i := range tds[:n] {
		td := &tds[i]
		if !td.Applied || td.Decision.Allowed || td.Decision.RetryAfter <= 0 {
			continue
		}
		if td.Decision.RetryAfter == ratekit.Never {
			s.tierRefusal(i, tierNever)
			continue
		}
		s.tierRefusal(i, tierRefused)
		if bind < 0 || td.Decision.RetryAfter > tds[bind].Decision.RetryAfter {
			bind = i
		}
	}
	if bind >= 0 && d.RetryAfter != ratekit.Never {
		s.recordRetry(r, bind, d.RetryAfter)
	}
}

// refusal counts a refused request, as shadow in shadow mode.
func (s *httpSource) refusal(out int) {
	if s.shadow {
		out = reqShadow
	}
	s.requests[out].Add(1)
}

// tierRefusal counts tier i's refusal, as shadow in shadow mode.
func (s *httpSource) tierRefusal(i, out int) {
	if s.shadow {
		out = tierShadow
	}
	s.counts[i][out].Add(1)
}

// recordRetry records a refusal's RetryAfter under tier i.
func (s *httpSource) recordRetry(r *http.Request, i int, retry time.Duration) {
	if retry <= 0 || retry == ratekit.Never {
		return
	}
	s.m.retryAfter.Record(r.Context(), retry.Seconds(), s.retryOpts[i])
}

// onLimitReached is the middleware's OnLimitReached.
func (s *httpSource) onLimitReached(policy, key string, _ ratekit.Decision) {
	ctx := context.Background()
	if s.m.cfg.KeyAttribute {
		s.m.limitReached.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(AttrPolicy.String(policy), AttrKey.String(key))))
		return
	}
	opt, ok := s.reachedOpts[policy]
	if !ok { // not a tier's name: cannot happen with httplimit
		opt = metric.WithAttributeSet(attribute.NewSet(AttrPolicy.String(policy)))
	}
	s.m.limitReached.Add(ctx, 1, opt)
}

// collect reports s's counts (at collection time).
func (s *httpSource) collect(m *Metrics, emit func(metric.Int64Observable, attribute.Set, int64)) {
	for i := range s.requests {
		if v := s.requests[i].Load(); v > 0 {
			emit(m.requests, attribute.NewSet(AttrOutcome.String(reqOutcomes[i])), v)
		}
	}
	for t, name := range s.tiers {
		for o := range s.counts[t] {
			if v := s.counts[t][o].Load(); v > 0 {
				emit(m.decisions, attribute.NewSet(AttrPolicy.String(name), AttrOutcome.String(tierOutcomes[o])), v)
			}
		}
	}
}
