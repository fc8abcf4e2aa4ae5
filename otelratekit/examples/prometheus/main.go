// Command prometheus serves an API limited by httplimit and exports
// ratekit's metrics to Prometheus through OpenTelemetry's Prometheus
// exporter, on /metrics:
//
//	go run ./examples/prometheus     # from otelratekit/
//	curl -i localhost:8080/           # 3 an hour per client IP, then 429
//	curl localhost:8080/metrics      # ratekit_requests_total, ...
package main

import (
	"log"
	"net"
	"net/http"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/otelratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

func main() {
	h, err := newServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "localhost:8080")
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving on http://%s/ and http://%s/metrics", ln.Addr(), ln.Addr())
	log.Fatal(http.Serve(ln, h))
}

// newServer returns the API behind its limits, and /metrics. clk is the
// middleware's clock (nil: the real one).
func newServer(clk clock.Clock) (http.Handler, error) {
	// OpenTelemetry's SDK, read by the Prometheus exporter into a registry
	// of its own, which /metrics serves.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	metrics, err := otelratekit.New(otelratekit.Config{MeterProvider: provider})
	if err != nil {
		return nil, err
	}

	// 3 requests an hour per client IP, in a bounded keyed set.
	perIP := tokenbucket.Config{Limit: 3, Window: time.Hour, Burst: 3, Name: "ip"}
	if err := perIP.Validate(); err != nil {
		return nil, err
	}
	// New in the factory: the limiters of one Config share its parameters.
	ips := ratekit.NewKeyed(func(string) *tokenbucket.Limiter {
		l, _ := tokenbucket.New(perIP) // validated above: New cannot fail
		return l
	}, ratekit.KeyedConfig{MaxKeys: 100_000})
	metrics.ObserveKeyed("ips", ips)
	clientIP, err := httplimit.ClientIP(httplimit.IPConfig{})
	if err != nil {
		return nil, err
	}

	cfg := httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "ip", Key: clientIP, Limiter: httplimit.Per(ips.Get)}},
		Clock: clk,
	}
	metrics.InstrumentHTTP(&cfg) // the one line that wires the metrics in
	limit, err := httplimit.New(cfg)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/", limit.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("hello\n"))
	})))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, nil
}
