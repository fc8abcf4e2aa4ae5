package otelratekit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/otelratekit"
)

// t0 is 12 seconds before a minute boundary: a per-minute window refuses
// with RetryAfter 12s.
var t0 = time.Date(2026, 3, 18, 13, 1, 48, 0, time.UTC)

func mockAt(t time.Time) *clock.Mock {
	c := clock.NewMock()
	c.Set(t)
	return c
}

// newMetrics returns Metrics on a fresh SDK provider and the reader that
// collects from it.
func newMetrics(tb testing.TB, cfg otelratekit.Config) (*otelratekit.Metrics, *sdkmetric.ManualReader) {
	tb.Helper()
	r := sdkmetric.NewManualReader()
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	m, err := otelratekit.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m, r
}

func window(name string, limit int) *fixedwindow.Limiter {
	l, err := fixedwindow.New(fixedwindow.Config{Name: name, Limit: limit, Window: time.Minute})
	if err != nil {
		panic(err)
	}
	return l
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })

func get(h http.Handler, headers ...string) int {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// snapshot is one collection: counter and gauge values, and histogram
// counts and sums, by metric name and attributes ("k=v,k=v", sorted).
type snapshot struct {
	values map[string]map[string]int64
	hists  map[string]map[string]hist
}

type hist struct {
	count uint64
	sum   float64
}

func collect(tb testing.TB, r *sdkmetric.ManualReader) snapshot {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	s := snapshot{values: map[string]map[string]int64{}, hists: map[string]map[string]hist{}}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelratekit.ScopeName {
			tb.Errorf("scope %q, want %q", sm.Scope.Name, otelratekit.ScopeName)
		}
		for _, md := range sm.Metrics {
			switch data := md.Data.(type) {
			case metricdata.Sum[int64]:
				if !data.IsMonotonic || data.Temporality != metricdata.CumulativeTemporality {
					tb.Errorf("%s: not a cumulative monotonic sum", md.Name)
				}
				for _, dp := range data.DataPoints {
					put(s.values, md.Name, attrs(dp.Attributes.ToSlice()), dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range data.DataPoints {
					put(s.values, md.Name, attrs(dp.Attributes.ToSlice()), dp.Value)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					if s.hists[md.Name] == nil {
						s.hists[md.Name] = map[string]hist{}
					}
					s.hists[md.Name][attrs(dp.Attributes.ToSlice())] = hist{dp.Count, dp.Sum}
				}
			default:
				tb.Errorf("%s: unexpected data %T", md.Name, md.Data)
			}
		}
	}
	return s
}

func put(m map[string]map[string]int64, name, attrs string, v int64) {
	if m[name] == nil {
		m[name] = map[string]int64{}
	}
	m[name][attrs] = v
}

// attrs encodes an attribute list as "k=v,k=v" (ToSlice sorts it by key).
func attrs(kvs []attribute.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = string(kv.Key) + "=" + kv.Value.String()
	}
	return strings.Join(parts, ",")
}

// want fails unless the series of metric name are exactly want.
func (s snapshot) want(tb testing.TB, name string, want map[string]int64) {
	tb.Helper()
	got := s.values[name]
	keys := func(m map[string]int64) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if len(got) != len(want) {
		tb.Errorf("%s: series %q, want %q", name, keys(got), keys(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			tb.Errorf("%s{%s} = %d (present %v), want %d", name, k, g, ok, v)
		}
	}
}
