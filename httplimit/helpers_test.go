package httplimit_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/httplimit"
)

// t0 is the instant most tests run at: 12 seconds before a minute boundary,
// so a per-minute window resets 12 s later, as in the mail API's example.
var t0 = time.Date(2026, 3, 18, 13, 1, 48, 0, time.UTC)

func mockAt(t time.Time) *clock.Mock {
	c := clock.NewMock()
	c.Set(t)
	return c
}

func mustNew(tb testing.TB, cfg httplimit.Config) *httplimit.Middleware {
	tb.Helper()
	m, err := httplimit.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return m
}

// ok is the handler behind the middleware in most tests. It allocates
// nothing, so benchmarks see only the middleware's allocations.
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write(okBody)
})

var okBody = []byte("ok")

// status returns a handler that answers with code.
func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

// newReq returns a GET request from remote with the given header pairs.
func newReq(remote string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/messages", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantHeaders fails unless every name in want has exactly that value in h
// ("" meaning absent).
func wantHeaders(tb testing.TB, h http.Header, want map[string]string) {
	tb.Helper()
	for k, v := range want {
		got, present := h[http.CanonicalHeaderKey(k)]
		switch {
		case v == "" && present:
			tb.Errorf("header %s = %q, want absent", k, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			tb.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func decodeProblem(tb testing.TB, w *httptest.ResponseRecorder) map[string]any {
	tb.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		tb.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return p
}
