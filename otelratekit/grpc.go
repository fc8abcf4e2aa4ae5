package otelratekit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// OpenTelemetry's RPC attribute keys, on the series fed by GRPCHooks.
const (
	AttrRPCSystem     = attribute.Key("rpc.system")           // "grpc", on every series from GRPCHooks
	AttrRPCMethod     = attribute.Key("rpc.method")           // a full method name ("/pkg.Service/Method"): ratekit.rpc.client.retry_wait only
	AttrRPCStatusCode = attribute.Key("rpc.grpc.status_code") // a refusal's gRPC code: ratekit.rpc.client.retry_wait only
)

// RPCSystemGRPC is the value of AttrRPCSystem on the series of GRPCHooks.
const RPCSystemGRPC = "grpc"

// GRPCConfig describes to GRPCHooks what the hooks cannot see in a call:
// two settings of the grpclimit.Config they are wired into. The tiers'
// names are read from the calls themselves. The zero value describes a
// Config without Shadow whose tiers all skip a call without a key.
type GRPCConfig struct {
	// Shadow is the Config's Shadow: would-be refusals are counted as
	// shadow rather than refused, never or unauthorized.
	Shadow bool
	// RejectMissing names the Config's Tiers whose Missing is
	// httplimit.MissingReject, so that a call refused with
	// codes.Unauthenticated for want of their key is counted as
	// unauthorized. A name that is no tier's is ignored; a MissingReject
	// tier left out makes those calls count as unlimited (no tier applied)
	// or allowed.
	RejectMissing []string
}

// GRPCHooks are hooks for grpclimit (github.com/ratekit/ratekit/grpclimit),
// typed with no gRPC package so that this module does not depend on
// grpc-go: assign OnDecision and OnLimitReached to a grpclimit.Config's
// fields of the same names, and call OnRetryWait from a
// grpclimit.RetryConfig's OnWait (its status is grpc-go's type):
//
//	rc.OnWait = func(method string, attempt int, wait time.Duration, st *status.Status) { h.OnRetryWait(method, attempt, wait, uint32(st.Code())) }
//
// Each func is safe for concurrent use.
type GRPCHooks struct {
	// OnDecision counts a judged call in ratekit.requests, ratekit.decisions
	// and ratekit.retry_after, as InstrumentHTTP counts a request.
	OnDecision func(ctx context.Context, fullMethod string, d ratekit.Decision, tiers []httplimit.TierDecision)
	// OnLimitReached counts an episode in ratekit.limit_reached.
	OnLimitReached func(policy, key string, d ratekit.Decision)
	// OnRetryWait records a client retrier's wait in
	// ratekit.rpc.client.retry_wait; code is the refusal's gRPC code
	// (codes.Code's value).
	OnRetryWait func(fullMethod string, attempt int, wait time.Duration, code uint32)
	// TierDecisionsOnRefusal is true: the hooks count outcomes and need no
	// per-tier state on a refused call, so assign it to the Config's
	// field of the same name, which spares each refusal a Peek per tier
	// (when the Config's Headers need no per-tier state either). It is a
	// field, not set for the caller, because this module does not import
	// grpclimit; InstrumentHTTP sets httplimit's for the caller.
	TierDecisionsOnRefusal bool
}

// GRPCHooks returns the hooks that feed m from one grpclimit.Interceptor
// (OnDecision, OnLimitReached) and from any number of grpclimit Retriers
// (OnRetryWait). Wire them in as the Config is built:
//
//	h := m.GRPCHooks(otelratekit.GRPCConfig{Shadow: cfg.Shadow, RejectMissing: []string{"token"}})
//	cfg.OnDecision, cfg.OnLimitReached = h.OnDecision, h.OnLimitReached
//	cfg.TierDecisionsOnRefusal = h.TierDecisionsOnRefusal
//	ic, err := grpclimit.New(cfg)
//
// To keep hooks of one's own, call both from a func of one's own (and
// leave TierDecisionsOnRefusal false if one's own reads the tiers' state
// on refusals).
//
// A call is counted as InstrumentHTTP counts a request (see it), with the
// outcomes of grpclimit's status codes: refused is ResourceExhausted,
// never is InvalidArgument, unauthorized is Unauthenticated. Every series
// also carries AttrRPCSystem "grpc", so that the HTTP and gRPC counts of
// tiers with the same Names stay apart; none carries the method or a key
// (but see Config.KeyAttribute), so the series are as many as those of
// InstrumentHTTP. The method is left out because the counts of admitted
// calls are striped atomics made per source (hundreds of bytes each), not
// per method, and because with grpc.UnknownServiceHandler any name a client
// sends reaches the interceptor.
//
// The tiers are learnt from the first call: their Names, and whether the
// last is the FailureTier. A call whose tier list is of another length is
// not counted, which happens only when the hooks are shared by
// interceptors with different tiers: make one GRPCHooks per Interceptor.
//
// An admitted call costs the metrics one atomic add and no allocation, as
// for HTTP. A refused call costs a Peek of 0 units of each tier that did
// not refuse it unless the Config sets TierDecisionsOnRefusal (as above)
// and its Headers leave out the IETF and Sanity dialects, whose metadata
// needs that state.
func (m *Metrics) GRPCHooks(cfg GRPCConfig) GRPCHooks {
	g := &grpcSource{m: m, cfg: cfg}
	return GRPCHooks{OnDecision: g.onDecision, OnLimitReached: g.onLimitReached, OnRetryWait: g.onRetryWait,
		TierDecisionsOnRefusal: true}
}

// grpcSource is the state behind one GRPCHooks: the source of counts,
// made at the first call.
type grpcSource struct {
	m   *Metrics
	cfg GRPCConfig
	src atomic.Pointer[source]
	mu  sync.Mutex // held to make src

	retryOpts sync.Map // retryKey -> metric.RecordOption
}

type retryKey struct {
	method string
	code   uint32
}

// source returns g's source, made for tds' tiers by the first call.
func (g *grpcSource) source(tds []httplimit.TierDecision) *source {
	if s := g.src.Load(); s != nil {
		return s
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.src.Load(); s != nil {
		return s
	}
	reject := make(map[string]bool, len(g.cfg.RejectMissing))
	for _, name := range g.cfg.RejectMissing {
		reject[name] = true
	}
	names := make([]string, len(tds))
	rejects := make([]bool, len(tds))
	hasFailure := false
	for i := range tds {
		names[i] = tds[i].Tier
		if tds[i].Failure {
			hasFailure = i == len(tds)-1
			continue
		}
		rejects[i] = reject[tds[i].Tier]
	}
	s := newSource(g.m, names, rejects, hasFailure, g.cfg.Shadow, AttrRPCSystem.String(RPCSystemGRPC))
	g.src.Store(s)
	return s
}

// onDecision is the Interceptor's OnDecision: the hot path.
func (g *grpcSource) onDecision(ctx context.Context, _ string, d ratekit.Decision, tds []httplimit.TierDecision) {
	if len(tds) == 0 {
		return // no tier: grpclimit.New refuses such a Config
	}
	s := g.source(tds)
	if len(tds) != len(s.tiers) {
		return // another interceptor's call: see GRPCHooks
	}
	// The call's TierDecisions are its pooled Report's, which no
	// concurrent call shares: their address stripes the counts.
	s.decide(ctx, unsafe.Pointer(&tds[0]), d, tds)
}

// onLimitReached is the Interceptor's OnLimitReached. It may run before
// the first OnDecision (the Policy reports an episode while deciding).
func (g *grpcSource) onLimitReached(policy, key string, d ratekit.Decision) {
	if s := g.src.Load(); s != nil {
		s.onLimitReached(policy, key, d)
		return
	}
	kvs := []attribute.KeyValue{AttrPolicy.String(policy), AttrRPCSystem.String(RPCSystemGRPC)}
	if g.m.cfg.KeyAttribute {
		kvs = append(kvs, AttrKey.String(key))
	}
	g.m.limitReached.Add(context.Background(), 1, metric.WithAttributeSet(attribute.NewSet(kvs...)))
}

// onRetryWait records a Retrier's wait. A negative wait is recorded as 0.
func (g *grpcSource) onRetryWait(method string, _ int, wait time.Duration, code uint32) {
	k := retryKey{method, code}
	o, ok := g.retryOpts.Load(k)
	if !ok {
		o, _ = g.retryOpts.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(
			AttrRPCSystem.String(RPCSystemGRPC), AttrRPCMethod.String(method), AttrRPCStatusCode.Int64(int64(code)))))
	}
	g.m.retryWait.Record(context.Background(), max(wait, 0).Seconds(), o.(metric.RecordOption))
}
