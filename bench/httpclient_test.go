package bench

import (
	"net/http"
	"testing"

	"golang.org/x/time/rate"

	"github.com/ratekit/ratekit/httpclient"
)

// The client side: what a request costs in the RoundTripper that paces it,
// against a base that answers in memory at once, so that only the pacing
// layer is measured. ratekit's httpclient.Transport reads the quota headers
// of every response and keeps per-host state; the peer is the do-it-yourself
// alternative, an x/time/rate Limiter whose Wait gates each request (and
// which reads no headers). Both are configured never to wait.

// staticBase answers every request with a fixed header.
type staticBase struct{ h http.Header }

func (s staticBase) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: s.h, Body: http.NoBody, Request: r}, nil
}

// xrateTransport is the peer: rate.Limiter.Wait, then the base.
type xrateTransport struct {
	lim  *rate.Limiter
	base http.RoundTripper
}

func (x xrateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := x.lim.Wait(r.Context()); err != nil {
		return nil, err
	}
	return x.base.RoundTrip(r)
}

// BenchmarkClientRoundTrip is one request through the pacing transport,
// on one goroutine ("serial") or all ("parallel"). Both read the real clock.
func BenchmarkClientRoundTrip(b *testing.B) {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "1000000000")
	h.Set("X-RateLimit-Remaining", "999999999")
	h.Set("X-RateLimit-Reset", "37")
	base := staticBase{h}
	tr, err := httpclient.New(httpclient.Config{Base: base, PaceBelow: -1})
	if err != nil {
		b.Fatal(err)
	}
	impls := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"ratekit", tr},
		{"xrate", xrateTransport{lim: rate.NewLimiter(1e9, 1e9), base: base}},
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v2/subscribers", nil)
	for _, mode := range []string{"serial", "parallel"} {
		for _, impl := range impls {
			b.Run(mode+"/"+impl.name, func(b *testing.B) {
				do := func() bool {
					resp, err := impl.rt.RoundTrip(req)
					if err != nil {
						panic(err)
					}
					resp.Body.Close()
					return true
				}
				if mode == "serial" {
					loop(b, impl.name, false, do)
					return
				}
				parallel(b, impl.name, false, func() func() bool { return do })
			})
		}
	}
}
