// Package otelratekit records OpenTelemetry metrics of ratekit's limiters,
// fed from the hooks the library already has. It is a module of its own
// (github.com/ratekit/ratekit/otelratekit), so that the embedded library
// downloads no OpenTelemetry; its name follows OpenTelemetry's contrib
// instrumentation (otelhttp, otelgrpc) and never shadows the otel package
// imported beside it.
//
// # Basics
//
// Make a Metrics with New (on a MeterProvider, the global one by default),
// then wire each part in with one line:
//
//	m, err := otelratekit.New(otelratekit.Config{MeterProvider: provider})
//	cfg := httplimit.Config{Tiers: tiers}
//	m.InstrumentHTTP(&cfg)              // sets OnDecision and OnLimitReached
//	mw, err := httplimit.New(cfg)
//	h := m.GRPCHooks(otelratekit.GRPCConfig{Shadow: gcfg.Shadow})
//	gcfg.OnDecision, gcfg.OnLimitReached = h.OnDecision, h.OnLimitReached // a grpclimit.Config
//	gcfg.TierDecisionsOnRefusal = h.TierDecisionsOnRefusal
//	stop := m.ObserveKeyed("orgs", orgs) // a *ratekit.Keyed: keys held, evictions
//	d, err := m.Wait(ctx, clk, l, n)     // ratekit.Wait, timed
//	opts := persist.Options{}
//	m.InstrumentPersist("quota", &opts)  // checkpoint durations
//	store, err := persist.Open(path, opts)
//	m.ObserveStore("quota", store)       // checkpoints, failures, states written
//	adapterCfg.OnError = m.OnStoreError("redis", redisstore.FailFallback)
//
// Metrics lists the instruments. Hooks that already exist in a config are
// kept: InstrumentHTTP and InstrumentPersist call them after their own.
// GRPCHooks returns funcs typed without gRPC packages, so that neither this
// module nor grpclimit depends on the other; a Retrier's OnWait passes its
// status's code on (see GRPCHooks).
//
// # What is measured
//
// Per request through httplimit, and per call through grpclimit's
// interceptors: its outcome (allowed, refused, never, shadow, unauthorized,
// unlimited); per tier, what the tier decided; the RetryAfter of refusals
// as a histogram; keys reaching a tier's limit. Both transports count
// through the same code. Per gRPC client Retrier: its waits before
// retrying. Per
// Keyed: the keys it holds and its evictions, idle (harmless) and busy (a
// key's state lost: MaxKeys is too small). Per persist store: each
// checkpoint's duration and outcome, and the states written and deleted.
// Per shared store (redisstore): the calls it did not answer, each one
// decided by the failure policy. Per Wait: the time spent and how it ended.
//
// # Cardinality
//
// Attributes hold only names from configuration (tier and limiter Names,
// the names passed to the adapters) and fixed sets of values (outcomes,
// eviction kinds, error types): never a key. A token or an IP address as an
// attribute would make a time series per key, and a flood of random
// addresses would grow the exporter without bound. Config.KeyAttribute
// adds the key to ratekit.limit_reached alone, with that cost spelled out;
// prefer logging keys from the hooks.
//
// Series from grpclimit carry rpc.system="grpc" and so double at most those
// of the same tiers over HTTP; the server's counts carry no method. Only
// ratekit.rpc.client.retry_wait carries the full method name and the
// status code: a client calls the methods of its own code, a bounded set.
//
// # Cost
//
// An admitted request pays one atomic add, on a counter striped so that
// cores do not share it, allocates nothing, and asks the limiters nothing
// more (InstrumentHTTP sets httplimit's TierDecisionsOnRefusal; GRPCHooks
// carries the same setting for a grpclimit.Config). The counts
// reach OpenTelemetry through observable instruments read at collection.
// Refusals also record a histogram value. BenchmarkHTTPOverhead measures it
// against the bare middleware; the numbers are in bench/RESULTS.md.
package otelratekit
