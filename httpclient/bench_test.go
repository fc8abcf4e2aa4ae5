package httpclient_test

import (
	"net/http"
	"testing"

	"github.com/ratekit/ratekit/httpclient"
)

// headerCases are response headers in each dialect, as servers send them,
// but with more remaining than any benchmark sends: the transport takes a
// Remaining at its word for the whole time to its reset, so a fixed header
// with a small Remaining would (rightly) make it wait for the reset.
var headerCases = []struct {
	name string
	h    http.Header
}{
	{"none", header()},
	{"x-ratelimit", header("X-RateLimit-Limit", "1000000000", "X-RateLimit-Remaining", "999999999", "X-RateLimit-Reset", "37")},
	{"sender-rfc3339", header("X-RateLimit-Limit", "1000000000", "X-RateLimit-Remaining", "999999999", "X-RateLimit-Reset", "2026-03-18T13:02:00Z")},
	{"rollbar", header("X-Rate-Limit-Limit", "1000000000", "X-Rate-Limit-Remaining", "999999999", "X-Rate-Limit-Remaining-Seconds", "59", "X-Rate-Limit-Reset", "1773838927")},
	{"sanity-per-policy", header("X-RateLimit-Limit-Second", "1000000000", "X-RateLimit-Remaining-Second", "999999999", "RateLimit-Reset", "1")},
	{"ietf-2-policies", header("RateLimit-Policy", `"burst";q=1000000000;w=60, "daily";q=1000000000;w=86400`, "RateLimit", `"burst";r=999999999;t=10, "daily";r=999999998;t=3600`)},
}

func BenchmarkParseQuota(b *testing.B) {
	for _, tc := range headerCases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				httpclient.ParseQuota(tc.h, now)
			}
		})
	}
}

// static is a base transport that answers at once with a fixed header.
type static struct{ h http.Header }

func (s static) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: s.h, Body: http.NoBody, Request: r}, nil
}

// BenchmarkRoundTrip measures the transport's own cost per request against
// a base that answers in memory at once: "base" is the base alone.
func BenchmarkRoundTrip(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v2/subscribers", nil)
	for _, tc := range headerCases {
		for _, mode := range []string{"base", "httpclient"} {
			var rt http.RoundTripper = static{tc.h}
			if mode == "httpclient" {
				// PaceBelow -1: a static Remaining never runs out, and
				// spreading would make the benchmark measure sleeps.
				tr, err := httpclient.New(httpclient.Config{Base: rt, PaceBelow: -1})
				if err != nil {
					b.Fatal(err)
				}
				rt = tr
			}
			b.Run(tc.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := rt.RoundTrip(req)
						if err != nil {
							b.Fatal(err)
						}
						resp.Body.Close()
					}
				})
			})
		}
	}
}

// TestAllocs pins the transport's allocation budget: reading the common
// dialects allocates nothing, and a round trip allocates nothing beyond
// what the base transport does (here, the response).
func TestAllocs(t *testing.T) {
	for _, tc := range headerCases[:4] {
		if n := testing.AllocsPerRun(100, func() { httpclient.ParseQuota(tc.h, now) }); n != 0 {
			t.Errorf("ParseQuota(%s) allocates %v times", tc.name, n)
		}
		tr, err := httpclient.New(httpclient.Config{Base: static{tc.h}, PaceBelow: -1})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/", nil)
		if n := testing.AllocsPerRun(100, func() {
			resp, _ := tr.RoundTrip(req)
			resp.Body.Close()
		}); n != 1 {
			t.Errorf("RoundTrip(%s) allocates %v times, want 1 (the base's response)", tc.name, n)
		}
	}
}
