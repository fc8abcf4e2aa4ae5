package otelratekit_test

import (
	"context"
	"fmt"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/otelratekit"
)

// GRPCHooks wires the metrics into grpclimit's server and client
// interceptors. This module does not depend on grpclimit (it would bring
// grpc-go), so the wiring is shown in comments; the hooks are then called
// here with a call grpclimit would report: one admitted by the "org" tier.
func ExampleMetrics_GRPCHooks() {
	reader := sdkmetric.NewManualReader()
	m, err := otelratekit.New(otelratekit.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		panic(err)
	}
	h := m.GRPCHooks(otelratekit.GRPCConfig{RejectMissing: []string{"token"}})

	// Server side:
	//
	//	cfg := grpclimit.Config{Tiers: []grpclimit.Tier{
	//		{Name: "org", Key: grpclimit.Metadata("x-org"), Limiter: httplimit.Per(orgs.Get)},
	//		{Name: "token", Key: grpclimit.Bearer, Missing: httplimit.MissingReject, Limiter: httplimit.Per(tokens.Get)},
	//	}}
	//	cfg.OnDecision, cfg.OnLimitReached = h.OnDecision, h.OnLimitReached
	//	cfg.TierDecisionsOnRefusal = h.TierDecisionsOnRefusal
	//	ic, err := grpclimit.New(cfg)
	//
	// Client side (the status is grpc-go's, so the code is passed on):
	//
	//	rc := grpclimit.RetryConfig{Idempotent: idempotent}
	//	rc.OnWait = func(method string, attempt int, wait time.Duration, st *status.Status) {
	//		h.OnRetryWait(method, attempt, wait, uint32(st.Code()))
	//	}
	h.OnDecision(context.Background(), "/chat.Messages/Send",
		ratekit.Decision{Allowed: true, Limit: 600, Remaining: 599, Window: time.Minute, Policy: "org"},
		[]httplimit.TierDecision{
			{Tier: "org", Key: "acme", Applied: true, Cost: 1, Decision: ratekit.Decision{Allowed: true, Limit: 600, Remaining: 599}},
			{Tier: "token", Key: "sk_live_1", Applied: true, Cost: 1, Decision: ratekit.Decision{Allowed: true, Limit: 6000, Remaining: 5999}},
		})
	h.OnRetryWait("/chat.Messages/Send", 1, 12*time.Second, 8) // codes.ResourceExhausted

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, md := range rm.ScopeMetrics[0].Metrics {
		switch data := md.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range data.DataPoints {
				policy, _ := dp.Attributes.Value(otelratekit.AttrPolicy)
				outcome, _ := dp.Attributes.Value(otelratekit.AttrOutcome)
				system, _ := dp.Attributes.Value(otelratekit.AttrRPCSystem)
				if md.Name == "ratekit.decisions" {
					fmt.Println(md.Name, policy.String(), outcome.String(), system.String(), dp.Value)
				}
			}
		case metricdata.Histogram[float64]:
			for _, dp := range data.DataPoints {
				method, _ := dp.Attributes.Value(otelratekit.AttrRPCMethod)
				fmt.Println(md.Name, method.String(), dp.Count, dp.Sum)
			}
		}
	}
	// Unordered output:
	// ratekit.decisions org allowed grpc 1
	// ratekit.decisions token allowed grpc 1
	// ratekit.rpc.client.retry_wait /chat.Messages/Send 1 12
}
