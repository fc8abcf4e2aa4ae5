package otelratekit_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/otelratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// discard is a ResponseWriter that keeps nothing, reused across requests.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchRequest() (*http.Request, *discard) {
	r := httptest.NewRequest(http.MethodGet, "/v1/messages", nil)
	r.RemoteAddr = "203.0.113.9:4711"
	r.Header.Set("Authorization", "Bearer sk_live_1")
	r.Header.Set("X-Org", "acme")
	return r, &discard{h: make(http.Header)}
}

type benchCase struct {
	name  string
	tiers int
}

func benchCases() []benchCase { return []benchCase{{"1tier", 1}, {"3tiers", 3}} }

// benchHandlers returns httplimit's middleware over tiers that admit every
// request, each looking its key up in a ratekit.Keyed as a service would
// (httplimit's own BenchmarkMiddleware cases), with or without metrics
// exported through a real SDK provider.
func benchHandlers(tb testing.TB, c benchCase, metrics bool) http.Handler {
	ip, err := httplimit.ClientIP(httplimit.IPConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	keyed := func(name string) func(string) ratekit.Limiter {
		k := ratekit.NewKeyed(func(string) ratekit.Limiter {
			l, err := tokenbucket.New(tokenbucket.Config{Limit: 1 << 30, Window: time.Second, Burst: 1 << 30, Name: name})
			if err != nil {
				panic(err)
			}
			return l
		}, ratekit.KeyedConfig{})
		return k.Get
	}
	tiers := []httplimit.Tier{
		{Name: "ip", Key: ip, Limiter: keyed("ip")},
		{Name: "org", Key: httplimit.Header("X-Org"), Limiter: keyed("org")},
		{Name: "token", Key: httplimit.Bearer, Limiter: keyed("token")},
	}[:c.tiers]
	cfg := httplimit.Config{Tiers: tiers}
	if metrics {
		m, err := otelratekit.New(otelratekit.Config{
			MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
		})
		if err != nil {
			tb.Fatal(err)
		}
		m.InstrumentHTTP(&cfg)
	}
	mw, err := httplimit.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(okBody) }))
}

var okBody = []byte("ok")

// BenchmarkHTTP measures an admitted request through httplimit's
// middleware with the metrics off and on, serially and in parallel.
func BenchmarkHTTP(b *testing.B) {
	for _, c := range benchCases() {
		for _, metrics := range []bool{false, true} {
			name := c.name + "/metrics=off"
			if metrics {
				name = c.name + "/metrics=on"
			}
			b.Run(name, func(b *testing.B) {
				h := benchHandlers(b, c, metrics)
				r, w := benchRequest()
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					clear(w.h)
					h.ServeHTTP(w, r)
				}
				reportCPU(b, cpu)
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				h := benchHandlers(b, c, metrics)
				b.ReportAllocs()
				cpu := cpuTime()
				defer reportCPU(b, cpu)
				b.RunParallel(func(pb *testing.PB) {
					r, w := benchRequest()
					for pb.Next() {
						clear(w.h)
						h.ServeHTTP(w, r)
					}
				})
			})
		}
	}
}

// reportCPU reports the process's CPU time per operation since start, in
// all threads (GC included), as cpu-ns/op: on a busy shared machine it
// varies far less than ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 && b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkHTTPOverhead measures the metrics' cost as a paired comparison,
// which a busy shared machine blurs far less than two separate benchmarks:
// it serves blocks of requests through the middleware without and with
// metrics in turn (alternating which goes first), times each block, and
// reports the median per-request time of each (off-ns/op, on-ns/op) and the
// median of the blocks' ratios as overhead-%. Its ns/op column is the
// harness's (both variants, and the time other processes held the cores):
// ignore it.
func BenchmarkHTTPOverhead(b *testing.B) {
	const block = 256
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			off, on := benchHandlers(b, c, false), benchHandlers(b, c, true)
			r, w := benchRequest()
			run := func(h http.Handler) time.Duration {
				start := time.Now()
				for range block {
					clear(w.h)
					h.ServeHTTP(w, r)
				}
				return time.Since(start)
			}
			var offs, ons, ratios []float64
			b.ResetTimer()
			for k := 0; k < max(1, b.N/block); k++ {
				var a, o time.Duration
				if k%2 == 0 {
					a, o = run(off), run(on)
				} else {
					o, a = run(on), run(off)
				}
				offs = append(offs, float64(a)/block)
				ons = append(ons, float64(o)/block)
				ratios = append(ratios, float64(o)/float64(a))
			}
			b.ReportMetric(median(offs), "off-ns/op")
			b.ReportMetric(median(ons), "on-ns/op")
			b.ReportMetric(100*(median(ratios)-1), "overhead-%")
		})
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
