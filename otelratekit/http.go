package otelratekit

import (
	"net/http"
	"unsafe"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

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
// Tiers of different middlewares with the same Name add up; instrumenting
// one Config twice counts its requests twice. An admitted request costs one
// atomic add and no allocation (see admitted). A nil cfg is left alone.
func (m *Metrics) InstrumentHTTP(cfg *httplimit.Config) {
	if cfg == nil {
		return
	}
	var tiers []string
	var reject []bool
	for _, t := range cfg.Tiers {
		tiers = append(tiers, t.Name)
		reject = append(reject, t.Missing == httplimit.MissingReject)
	}
	if cfg.Failure != nil {
		tiers = append(tiers, cfg.Failure.Name)
		reject = append(reject, false)
	}
	s := newSource(m, tiers, reject, cfg.Failure != nil, cfg.Shadow)
	onDecision := func(r *http.Request, d ratekit.Decision, tds []httplimit.TierDecision) {
		// The request's address stripes its counts.
		s.decide(r.Context(), unsafe.Pointer(r), d, tds)
	}
	if user := cfg.OnDecision; user != nil {
		cfg.OnDecision = func(r *http.Request, d ratekit.Decision, tds []httplimit.TierDecision) {
			onDecision(r, d, tds)
			user(r, d, tds)
		}
	} else {
		cfg.OnDecision = onDecision
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
}
