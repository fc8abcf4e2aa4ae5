package otelratekit

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of every instrument: the module's
// import path, as OpenTelemetry's contrib instrumentation names its own.
const ScopeName = "github.com/ratekit/ratekit/otelratekit"

// Attribute keys. Their values are policy (tier) names, outcomes and the
// names given to New's adapters: never a key, unless Config.KeyAttribute.
const (
	AttrPolicy    = attribute.Key("ratekit.policy")     // a tier's or limiter's Name
	AttrOutcome   = attribute.Key("ratekit.outcome")    // see the Outcome constants
	AttrKeyed     = attribute.Key("ratekit.keyed")      // the name given to ObserveKeyed
	AttrEviction  = attribute.Key("ratekit.eviction")   // "idle" or "busy"
	AttrStore     = attribute.Key("ratekit.store")      // the name given to InstrumentPersist, ObserveStore, OnStoreError
	AttrOnFailure = attribute.Key("ratekit.on_failure") // a store's failure policy (redisstore: FailOpen, FailClosed, FailFallback)
	AttrErrorType = attribute.Key("error.type")         // OpenTelemetry's: "timeout", "canceled" or "other"
	AttrKey       = attribute.Key("ratekit.key")        // only with Config.KeyAttribute
)

// Outcomes, the values of AttrOutcome.
const (
	OutcomeAllowed      = "allowed"      // admitted (charged)
	OutcomeRefused      = "refused"      // refused for now: 429 (gRPC ResourceExhausted), with a RetryAfter
	OutcomeNever        = "never"        // can never be admitted: 413, gRPC InvalidArgument (RetryAfter ratekit.Never)
	OutcomeShadow       = "shadow"       // would have been refused, served in shadow mode
	OutcomeUnauthorized = "unauthorized" // 401 (gRPC Unauthenticated): a MissingReject tier found no key
	OutcomeUnlimited    = "unlimited"    // no tier applied to the request (or call)
	OutcomeDeadline     = "deadline"     // Wait: the wait would outlast the context's deadline
	OutcomeCanceled     = "canceled"     // Wait: the context ended first
	OutcomeOK           = "ok"           // a checkpoint completed
	OutcomeFailed       = "failed"       // a checkpoint returned an error
)

// defaultRetryAfterBuckets are the histogram boundaries, in seconds, of
// ratekit.retry_after: from a token bucket's sub-second refill to a daily
// quota's reset.
func defaultRetryAfterBuckets() []float64 {
	return []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}
}

// defaultDurationBuckets are those of ratekit.wait.duration and
// ratekit.persist.checkpoint.duration.
func defaultDurationBuckets() []float64 {
	return []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300}
}

// Config configures New. The zero value is usable.
type Config struct {
	// MeterProvider makes the Meter of every instrument. nil: the global
	// provider (otel.GetMeterProvider()).
	MeterProvider metric.MeterProvider

	// RetryAfterBuckets are the explicit bucket boundaries, in seconds, of
	// ratekit.retry_after and ratekit.rpc.client.retry_wait, increasing. nil: 0.1, 0.5, 1, 2, 5, 10, 30, 60,
	// 300, 900, 3600, 21600 and 86400 (a day). Bad boundaries make New fail.
	RetryAfterBuckets []float64

	// DurationBuckets are those of ratekit.wait.duration and
	// ratekit.persist.checkpoint.duration. nil: 0.001, 0.005, 0.01, 0.05,
	// 0.1, 0.5, 1, 5, 10, 30, 60 and 300.
	DurationBuckets []float64

	// KeyAttribute adds the key (a token, an IP address) as AttrKey to
	// ratekit.limit_reached, the one instrument whose hook knows the key.
	// Off by default, and think twice: every key ever limited becomes a time
	// series that a cumulative exporter (Prometheus) keeps for the life of
	// the process, so a flood of random IP addresses grows the exporter's
	// memory and the scrape without bound, until the SDK's cardinality limit
	// (2000 series per instrument by default) folds the rest into one
	// overflow series, which names no key. Each report also allocates
	// its attribute set. Prefer logging the key from httplimit's
	// OnLimitReached.
	KeyAttribute bool
}

// Metrics records ratekit's instruments. Make one with New (the zero
// Metrics is not usable), then wire it in with its adapters: InstrumentHTTP,
// GRPCHooks, Wait, ObserveKeyed, InstrumentPersist, ObserveStore and
// OnStoreError. It is safe for concurrent use.
//
// The instruments, all in the scope ScopeName:
//
//	ratekit.requests                     counter   requests (and gRPC calls) by outcome (httplimit, grpclimit)
//	ratekit.decisions                    counter   per tier: requests it admitted, refused, could never admit, or would have refused (shadow)
//	ratekit.retry_after                  histogram s, refusals' RetryAfter, by the binding tier
//	ratekit.limit_reached                counter   keys that reached a tier's limit (httplimit's and grpclimit's OnLimitReached episodes)
//	ratekit.wait.duration                histogram s, time spent in Wait, by policy and outcome
//	ratekit.keyed.keys                   gauge     keys held by a Keyed
//	ratekit.keyed.evictions              counter   keys evicted at MaxKeys, idle or busy
//	ratekit.keyed.swept                  counter   idle keys dropped by Sweep
//	ratekit.persist.checkpoint.duration  histogram s, checkpoints' duration, by outcome
//	ratekit.persist.checkpoints          counter   checkpoints by outcome (ok, failed)
//	ratekit.persist.states.written       counter   states written by checkpoints
//	ratekit.persist.states.deleted       counter   saved states deleted
//	ratekit.store.errors                 counter   calls a shared store (Redis) did not answer
//	ratekit.rpc.client.retry_wait        histogram s, waits of a gRPC client's Retrier before retrying, by method and code
type Metrics struct {
	cfg Config

	requests     metric.Int64ObservableCounter
	decisions    metric.Int64ObservableCounter
	retryAfter   metric.Float64Histogram
	limitReached metric.Int64Counter
	waitDur      metric.Float64Histogram
	keys         metric.Int64ObservableGauge
	evictions    metric.Int64ObservableCounter
	swept        metric.Int64ObservableCounter
	ckptDur      metric.Float64Histogram
	ckpts        metric.Int64ObservableCounter
	written      metric.Int64ObservableCounter
	deleted      metric.Int64ObservableCounter
	storeErrors  metric.Int64Counter
	retryWait    metric.Float64Histogram

	reg metric.Registration

	mu      sync.Mutex
	sources map[collector]struct{} // InstrumentHTTP's and GRPCHooks' counts, observed Keyeds and Stores
	waitOpt sync.Map               // waitKey -> metric.RecordOption
}

// New makes the instruments in the scope ScopeName of cfg's MeterProvider and
// registers the callback that reads the observed counts. It returns the
// provider's errors (a bad bucket list, say). Close unregisters the callback.
func New(cfg Config) (*Metrics, error) {
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if cfg.RetryAfterBuckets == nil {
		cfg.RetryAfterBuckets = defaultRetryAfterBuckets()
	}
	if cfg.DurationBuckets == nil {
		cfg.DurationBuckets = defaultDurationBuckets()
	}
	meter := mp.Meter(ScopeName)
	m := &Metrics{
		cfg:     cfg,
		sources: make(map[collector]struct{}),
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.requests, err = meter.Int64ObservableCounter("ratekit.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests through a rate-limiting middleware, by outcome."))
	add(err)
	m.decisions, err = meter.Int64ObservableCounter("ratekit.decisions", metric.WithUnit("{request}"),
		metric.WithDescription("Per tier: requests it admitted, refused, could never admit, or would have refused in shadow mode."))
	add(err)
	m.retryAfter, err = meter.Float64Histogram("ratekit.retry_after", metric.WithUnit("s"),
		metric.WithDescription("RetryAfter of refused requests, by the tier that bound it."),
		metric.WithExplicitBucketBoundaries(cfg.RetryAfterBuckets...))
	add(err)
	m.limitReached, err = meter.Int64Counter("ratekit.limit_reached", metric.WithUnit("{episode}"),
		metric.WithDescription("Keys that reached a tier's limit, once per episode."))
	add(err)
	m.waitDur, err = meter.Float64Histogram("ratekit.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time spent waiting for a limiter, by policy and outcome."),
		metric.WithExplicitBucketBoundaries(cfg.DurationBuckets...))
	add(err)
	m.keys, err = meter.Int64ObservableGauge("ratekit.keyed.keys", metric.WithUnit("{key}"),
		metric.WithDescription("Keys, and so limiters, held by a keyed set."))
	add(err)
	m.evictions, err = meter.Int64ObservableCounter("ratekit.keyed.evictions", metric.WithUnit("{key}"),
		metric.WithDescription("Keys evicted to stay within MaxKeys; busy evictions each let a key admit up to a window's worth more."))
	add(err)
	m.swept, err = meter.Int64ObservableCounter("ratekit.keyed.swept", metric.WithUnit("{key}"),
		metric.WithDescription("Idle keys dropped by Sweep."))
	add(err)
	m.ckptDur, err = meter.Float64Histogram("ratekit.persist.checkpoint.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of persist checkpoints, by outcome."),
		metric.WithExplicitBucketBoundaries(cfg.DurationBuckets...))
	add(err)
	m.ckpts, err = meter.Int64ObservableCounter("ratekit.persist.checkpoints", metric.WithUnit("{checkpoint}"),
		metric.WithDescription("Persist checkpoints, by outcome."))
	add(err)
	m.written, err = meter.Int64ObservableCounter("ratekit.persist.states.written", metric.WithUnit("{state}"),
		metric.WithDescription("Limiter states written by persist checkpoints."))
	add(err)
	m.deleted, err = meter.Int64ObservableCounter("ratekit.persist.states.deleted", metric.WithUnit("{state}"),
		metric.WithDescription("Saved limiter states deleted by persist checkpoints."))
	add(err)
	m.storeErrors, err = meter.Int64Counter("ratekit.store.errors", metric.WithUnit("{call}"),
		metric.WithDescription("Calls a shared store did not answer, each decided by its failure policy."))
	add(err)
	m.retryWait, err = meter.Float64Histogram("ratekit.rpc.client.retry_wait", metric.WithUnit("s"),
		metric.WithDescription("Waits of a gRPC client's retrier before retrying a refused call, by method and code."),
		metric.WithExplicitBucketBoundaries(cfg.RetryAfterBuckets...))
	add(err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.reg, err = meter.RegisterCallback(m.observe,
		m.requests, m.decisions, m.keys, m.evictions, m.swept, m.ckpts, m.written, m.deleted)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Close unregisters the callback that reports the observed instruments:
// ratekit.requests, ratekit.decisions and the keyed and persist counts stop
// being exported. Hooks already wired in keep working and cost what they
// did. It returns the provider's error.
func (m *Metrics) Close() error { return m.reg.Unregister() }

// collector is a source of observed counts: it emits them at collection.
type collector interface {
	collect(m *Metrics, emit func(metric.Int64Observable, attribute.Set, int64))
}

// watch adds s to the sources read at collection, and returns the func
// that removes it.
func (m *Metrics) watch(s collector) (stop func()) {
	m.mu.Lock()
	m.sources[s] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.sources, s)
		m.mu.Unlock()
	}
}

// obsKey identifies one observed series: an instrument and its attribute
// set. Series from sources with the same names (two middlewares with a tier
// of the same name) add up.
type obsKey struct {
	inst metric.Int64Observable
	set  attribute.Distinct
}

// observe is the one callback of every observed instrument. It runs at
// collection, never on a request's path.
func (m *Metrics) observe(_ context.Context, o metric.Observer) error {
	sums := make(map[obsKey]int64)
	sets := make(map[attribute.Distinct]attribute.Set)
	emit := func(inst metric.Int64Observable, set attribute.Set, v int64) {
		k := obsKey{inst, set.Equivalent()}
		sums[k] += v
		sets[k.set] = set
	}
	m.mu.Lock()
	for s := range m.sources {
		s.collect(m, emit)
	}
	m.mu.Unlock()
	for k, v := range sums {
		o.ObserveInt64(k.inst, v, metric.WithAttributeSet(sets[k.set]))
	}
	return nil
}
