package httplimit_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// TestContentLengthCostOverflow is issue #16's attack over HTTP: tiers whose
// Cost is Content-Length, a Shared concurrency tier ahead of a rate tier,
// and one request with Content-Length 2⁶³−1 sent while another holds units.
// It wrapped the concurrency tier's held+n, reached the handler, and left
// both tiers broken (the releases panicked, every later request got 429).
// It must be refused like any cost above a tier's limit (413) and leave
// every tier as it was.
func TestContentLengthCostOverflow(t *testing.T) {
	const inFlight, perMinute = 1 << 20, 1 << 24 // bytes
	conc := newConc(t, inFlight)
	rate := newWindow("upload", perMinute, time.Minute)
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "conc", Limiter: httplimit.Shared(conc), Unit: "content-bytes"},
			{Name: "upload", Limiter: httplimit.Shared(rate), Unit: "content-bytes"},
		},
		Cost:  func(r *http.Request) int { return int(r.ContentLength) },
		Clock: mockAt(t0),
	})
	upload := func(size int64) *http.Request {
		r := httptest.NewRequest(http.MethodPut, "/v1/blobs", strings.NewReader(""))
		r.RemoteAddr = "192.0.2.1:1"
		r.ContentLength = size
		return r
	}
	reached := 0
	var huge *httptest.ResponseRecorder
	var h http.Handler
	h = m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		if r.ContentLength == 100 && huge == nil {
			// While this upload holds 100 units of the concurrency tier.
			huge = serve(h, upload(math.MaxInt64))
		}
		w.WriteHeader(http.StatusNoContent)
	}))

	if w := serve(h, upload(100)); w.Code != http.StatusNoContent {
		t.Fatalf("first upload: status %d, want 204", w.Code)
	}
	if reached != 1 {
		t.Fatalf("the handler was reached %d times, want once: the 2⁶³−1 byte upload got through", reached)
	}
	if huge.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("Content-Length 2⁶³−1 with units held: status %d, want 413", huge.Code)
	}
	if p := decodeProblem(t, huge); p["type"] != httplimit.ProblemExceedsLimit || p["status"] != 413.0 {
		t.Errorf("problem %v", p)
	}
	if conc.Held() != 0 {
		t.Errorf("concurrency tier holds %d after every request ended, want 0", conc.Held())
	}
	if got := used(rate, t0); got != 100 {
		t.Errorf("rate tier used %d, want 100: only the first upload counts", got)
	}
	// Every tier still admits exactly what it should.
	if w := serve(h, upload(inFlight)); w.Code != http.StatusNoContent {
		t.Errorf("an upload of the whole concurrency limit: status %d, want 204", w.Code)
	}
	if conc.Held() != 0 || used(rate, t0) != 100+inFlight {
		t.Errorf("after it: held %d, rate used %d; want 0 and %d", conc.Held(), used(rate, t0), 100+inFlight)
	}
}
