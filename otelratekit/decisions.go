package otelratekit

import (
	"context"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

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

// maxMaskTiers is the most tiers (the FailureTier included) whose admitted
// requests are counted by mask: 2^6 counters, 512 bytes, per stripe.
const maxMaskTiers = 6

var reqOutcomes = [nReqOutcomes]string{OutcomeAllowed, OutcomeRefused, OutcomeNever, OutcomeShadow, OutcomeUnauthorized, OutcomeUnlimited}

// counter is an atomic count alone on its cache line, so that the counts of
// different tiers do not slow each other down on different cores.
type counter struct {
	atomic.Int64
	_ [56]byte
}

// source is one instrumented middleware or interceptor (one transport's
// Policy): plain atomic counts, added to on the request's path and read by
// the collection callback. Both transports count through it, from the same
// TierDecisions. Counting with
// atomics rather than through a synchronous OpenTelemetry counter keeps the
// per-request cost to one uncontended add per applied tier: the SDK's Add
// looks its attribute set up in a map under a lock.
type source struct {
	tiers      []string // tier names, then the FailureTier's
	reject     []bool   // the tier rejects a request without a key (MissingReject)
	anyReject  bool
	hasFailure bool
	shadow     bool

	counts   [][nTierOutcomes]counter // per tier; tierAllowed only via allowed
	requests [nReqOutcomes]counter    // reqAllowed (and reqUnlimited if byMask) only via allowed

	// allowed counts admitted requests in stripes of stride counters,
	// each stripe starting on a cache line of its own: by mask of applied
	// tiers if byMask, else the request's count then one per tier.
	allowed     []atomic.Int64
	byMask      bool
	stride      int
	stripeShift uint

	base        []attribute.KeyValue  // every series' attributes besides policy and outcome
	retryOpts   []metric.RecordOption // per tier: ratekit.retry_after's attributes
	reachedOpts map[string]metric.AddOption
	m           *Metrics
}

// newSource returns the counts of a Policy with these tiers (their Names,
// then the FailureTier's if hasFailure), reject marking the tiers whose
// Missing is MissingReject. base are attributes every series of it
// carries besides policy and outcome.
func newSource(m *Metrics, tiers []string, reject []bool, hasFailure, shadow bool, base ...attribute.KeyValue) *source {
	s := &source{tiers: tiers, reject: reject, hasFailure: hasFailure, shadow: shadow, base: base, m: m,
		reachedOpts: make(map[string]metric.AddOption)}
	for _, r := range reject {
		s.anyReject = s.anyReject || r
	}
	s.counts = make([][nTierOutcomes]counter, len(s.tiers))
	s.byMask = len(s.tiers) <= maxMaskTiers
	s.stride = len(s.tiers) + 1
	if s.byMask {
		s.stride = 1 << len(s.tiers)
	}
	s.stride = (s.stride + 7) &^ 7 // whole cache lines
	stripes := 1
	for stripes < 4*runtime.GOMAXPROCS(0) && stripes < 256 {
		stripes *= 2
	}
	s.stripeShift = uint(64 - bits.TrailingZeros(uint(stripes)))
	// One spare line in front, so that stripe 0 starts on a line of its
	// own whatever the allocation's alignment.
	s.allowed = make([]atomic.Int64, stripes*s.stride+8)
	if off := int(uintptr(unsafe.Pointer(&s.allowed[0])) % 64 / 8); off != 0 {
		s.allowed = s.allowed[8-off:]
	}
	for _, name := range s.tiers {
		set := s.set(AttrPolicy.String(name))
		s.retryOpts = append(s.retryOpts, metric.WithAttributeSet(set))
		s.reachedOpts[name] = metric.WithAttributeSet(set)
	}
	m.watch(s)
	return s
}

// set returns the attribute set of kvs and s.base.
func (s *source) set(kvs ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append(kvs, s.base...)...)
}

// decide counts one judged request: the hot path. hint is an address
// that differs between concurrent requests (see stripe); ctx is the
// request's, used only to record a refusal's RetryAfter. tds must have an
// entry per s.tiers.
func (s *source) decide(ctx context.Context, hint unsafe.Pointer, d ratekit.Decision, tds []httplimit.TierDecision) {
	if d.Allowed && !s.rejected(tds) {
		s.admitted(hint, tds)
		return
	}
	s.notAllowed(ctx, hint, d, tds)
}

// admitted counts a request that no tier refused: the tiers that applied
// to it, none when no tier did (unlimited).
//
// This is the path of nearly every request, so it makes one atomic add, on
// a counter no other core is likely to touch: the counters are striped (by
// an address of the request's, which differs between concurrent requests) so that
// cores do not pass one cache line back and forth, and within a stripe
// there is one counter per set of applied tiers (a bit mask), from which
// collect derives the per-tier and per-request counts. With more than
// maxMaskTiers tiers it adds once for the request and once per applied tier.
func (s *source) admitted(hint unsafe.Pointer, tds []httplimit.TierDecision) {
	base := s.stripe(hint) * s.stride
	if s.byMask {
		mask := 0
		for i := range tds {
			if tds[i].Applied {
				mask |= 1 << i
			}
		}
		s.allowed[base+mask].Add(1)
		return
	}
	applied := false
	for i := range tds {
		if tds[i].Applied {
			applied = true
			s.allowed[base+1+i].Add(1)
		}
	}
	if applied {
		s.allowed[base].Add(1) // the request
	} else {
		s.requests[reqUnlimited].Add(1)
	}
}

// stripe picks the stripe of a request's counters from an address of
// its: the *http.Request, or the gRPC call's pooled TierDecisions.
func (s *source) stripe(hint unsafe.Pointer) int {
	p := uint64(uintptr(hint))
	return int((p * 0x9e3779b97f4a7c15) >> s.stripeShift)
}

// rejected reports a 401 for a missing key: a MissingReject tier found no
// key. (The binding Decision is then the FailureTier's Peek, which may be
// allowed.)
func (s *source) rejected(tds []httplimit.TierDecision) bool {
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
func (s *source) notAllowed(ctx context.Context, hint unsafe.Pointer, d ratekit.Decision, tds []httplimit.TierDecision) {
	if s.hasFailure {
		if i := len(tds) - 1; tds[i].Applied && !tds[i].Decision.Allowed {
			s.refusal(reqRefused)
			s.tierRefusal(i, tierRefused)
			s.recordRetry(ctx, i, tds[i].Decision.RetryAfter)
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
		s.admitted(hint, tds)
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
		s.recordRetry(ctx, bind, d.RetryAfter)
	}
}

// refusal counts a refused request, as shadow in shadow mode.
func (s *source) refusal(out int) {
	if s.shadow {
		out = reqShadow
	}
	s.requests[out].Add(1)
}

// tierRefusal counts tier i's refusal, as shadow in shadow mode.
func (s *source) tierRefusal(i, out int) {
	if s.shadow {
		out = tierShadow
	}
	s.counts[i][out].Add(1)
}

// recordRetry records a refusal's RetryAfter under tier i.
func (s *source) recordRetry(ctx context.Context, i int, retry time.Duration) {
	if retry <= 0 || retry == ratekit.Never {
		return
	}
	s.m.retryAfter.Record(ctx, retry.Seconds(), s.retryOpts[i])
}

// onLimitReached is the transport's OnLimitReached.
func (s *source) onLimitReached(policy, key string, _ ratekit.Decision) {
	ctx := context.Background()
	if s.m.cfg.KeyAttribute {
		s.m.limitReached.Add(ctx, 1, metric.WithAttributeSet(s.set(AttrPolicy.String(policy), AttrKey.String(key))))
		return
	}
	opt, ok := s.reachedOpts[policy]
	if !ok { // not a tier's name: cannot happen with httplimit
		opt = metric.WithAttributeSet(s.set(AttrPolicy.String(policy)))
	}
	s.m.limitReached.Add(ctx, 1, opt)
}

// collect reports s's counts (at collection time).
func (s *source) collect(m *Metrics, emit func(metric.Int64Observable, attribute.Set, int64)) {
	var requests [nReqOutcomes]int64
	for i := range s.requests {
		requests[i] = s.requests[i].Load()
	}
	tiers := make([][nTierOutcomes]int64, len(s.tiers))
	for t := range s.tiers {
		for o := range s.counts[t] {
			tiers[t][o] = s.counts[t][o].Load()
		}
	}
	for base := 0; base+s.stride <= len(s.allowed); base += s.stride {
		if !s.byMask {
			requests[reqAllowed] += s.allowed[base].Load()
			for t := range s.tiers {
				tiers[t][tierAllowed] += s.allowed[base+1+t].Load()
			}
			continue
		}
		for mask := range 1 << len(s.tiers) {
			v := s.allowed[base+mask].Load()
			if mask == 0 {
				requests[reqUnlimited] += v
				continue
			}
			requests[reqAllowed] += v
			for t := range s.tiers {
				if mask&(1<<t) != 0 {
					tiers[t][tierAllowed] += v
				}
			}
		}
	}
	for i, v := range requests {
		if v > 0 {
			emit(m.requests, s.set(AttrOutcome.String(reqOutcomes[i])), v)
		}
	}
	for t, name := range s.tiers {
		for o, v := range tiers[t] {
			if v > 0 {
				emit(m.decisions, s.set(AttrPolicy.String(name), AttrOutcome.String(tierOutcomes[o])), v)
			}
		}
	}
}
