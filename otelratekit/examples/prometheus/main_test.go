package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The server on a loopback listener: five requests from one IP (three
// admitted, two refused), then a scrape of /metrics, parsed as Prometheus
// parses it.
func TestScrape(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC))
	h, err := newServer(clk)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	base := "http://" + ln.Addr().String()

	for i, want := range []int{200, 200, 200, 429, 429} {
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("no metric family %q in the scrape", name)
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue()
				case m.Gauge != nil:
					return m.GetGauge().GetValue()
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		t.Fatalf("%s has no series with %v", name, labels)
		return 0
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ratekit_requests_total", map[string]string{"ratekit_outcome": "allowed"}, 3},
		{"ratekit_requests_total", map[string]string{"ratekit_outcome": "refused"}, 2},
		{"ratekit_decisions_total", map[string]string{"ratekit_policy": "ip", "ratekit_outcome": "allowed"}, 3},
		{"ratekit_decisions_total", map[string]string{"ratekit_policy": "ip", "ratekit_outcome": "refused"}, 2},
		{"ratekit_limit_reached_total", map[string]string{"ratekit_policy": "ip"}, 1},
		{"ratekit_retry_after_seconds", map[string]string{"ratekit_policy": "ip"}, 2},
		{"ratekit_keyed_keys", map[string]string{"ratekit_keyed": "ips"}, 1},
	}
	for _, c := range checks {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The refusals' RetryAfter: a token of 3 an hour comes back in 20 min.
	h20 := families["ratekit_retry_after_seconds"].GetMetric()[0].GetHistogram()
	if h20.GetSampleSum() != 2*1200 {
		t.Errorf("retry_after sum %v, want two refusals of 1200s", h20.GetSampleSum())
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}
