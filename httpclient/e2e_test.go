package httpclient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/httpclient"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// This file drives the transport end to end against a server that enforces
// a real limit with httplimit's middleware (real headers, real 429s),
// inside a testing/synctest bubble so that no test sleeps: the middleware's
// clock.New() reads time.Now, which is the bubble's fake clock.
//
// The server is an http.Handler called in memory (inProcess, below) rather
// than an httptest.Server: a server on a real socket blocks in network I/O,
// which is not durably blocking, so a bubble's fake clock could not advance
// while requests are in flight.

// inProcess is a RoundTripper that serves each request with a handler,
// in memory, after a one-way latency each way (fake time in a bubble), so
// that requests overlap as they do over a network.
type inProcess struct {
	h       http.Handler
	latency time.Duration
}

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if p.latency > 0 {
		time.Sleep(p.latency)
		defer time.Sleep(p.latency)
	}
	p.h.ServeHTTP(rec, r)
	if r.Body != nil {
		r.Body.Close()
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// limitServer enforces l on every request with httplimit, writing the
// headers of the given dialects, and logs arrivals, the requests that
// reached the handler, and every wait it announced in a Retry-After.
type limitServer struct {
	h http.Handler // the middleware around the handler

	mu       sync.Mutex
	arrivals []time.Time
	holds    []hold // every Retry-After it sent
	served   int    // requests that reached the handler
	refused  int    // 429s
}

type hold struct{ from, until time.Time }

func newLimitServer(t *testing.T, l ratekit.Limiter, headers httplimit.Dialect) *limitServer {
	t.Helper()
	s := &limitServer{}
	m, err := httplimit.New(httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "api", Limiter: httplimit.Shared(l)}},
		Headers: headers,
		Clock:   clock.New(), // fake time in the bubble
	})
	require.NoError(t, err)
	s.h = m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.served++
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	return s
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (s *limitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now() // the instant the middleware judges the request at
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	s.h.ServeHTTP(sw, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrivals = append(s.arrivals, now)
	if sw.status == http.StatusTooManyRequests {
		s.refused++
		secs, err := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
		if err != nil || secs <= 0 {
			panic(fmt.Sprintf("429 with Retry-After %q", w.Header().Get("Retry-After")))
		}
		s.holds = append(s.holds, hold{now, now.Add(time.Duration(secs) * time.Second)})
	}
}

// requireNoArrivalDuringHold checks that no request reached the server
// during a wait it had announced, once the client could know of it: with a
// one-way latency l, the 429 sent at x reaches the client at x+l, and a
// request it sends then arrives at x+2l. Requests arriving earlier were on
// their way before the client knew.
func (s *limitServer) requireNoArrivalDuringHold(t *testing.T, latency time.Duration) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.arrivals {
		for _, h := range s.holds {
			if a.After(h.from.Add(2*latency)) && a.Before(h.until) {
				t.Fatalf("a request arrived at %v, during the wait announced from %v until %v",
					a.Format(time.StampMilli), h.from.Format(time.StampMilli), h.until.Format(time.StampMilli))
			}
		}
	}
}

// naive is the client the seed docs warn against: on a 429 it waits a fixed
// quarter second and tries again, forever.
type naive struct{ base http.RoundTripper }

func (n naive) RoundTrip(r *http.Request) (*http.Response, error) {
	for {
		resp, err := n.base.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(250 * time.Millisecond) // fake time, in the bubble
	}
}

// burst sends total GETs over workers goroutines through rt, and returns
// how many succeeded.
func burst(t *testing.T, rt http.RoundTripper, workers, total int) int {
	t.Helper()
	client := &http.Client{Transport: rt}
	var mu sync.Mutex
	okCount := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				resp, err := client.Get(fmt.Sprintf("https://api.example.com/v2/messages?page=%d", i))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					okCount++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return okCount
}

// skipTo2026 moves a bubble's fake clock, which starts at 2000-01-01 UTC,
// to 2026: httpclient reads a reset below 1e9 (2001-09-09 as a Unix time)
// as delta seconds, so the Unix-time resets of the XRateLimitUnix and
// Sentry dialects need a date no real server precedes.
func skipTo2026() {
	time.Sleep(time.Until(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
}

// TestBurstAgainstLimitingServer: 1,000 requests over 20 goroutines against
// a server that admits 100 per 10 seconds. Every request succeeds, none
// reaches the server during a wait it announced, and the transport draws
// far fewer 429s than the naive client.
func TestBurstAgainstLimitingServer(t *testing.T) {
	const workers, total = 20, 1000
	for _, lim := range []struct {
		name    string
		new     func() ratekit.Limiter
		headers httplimit.Dialect // NoHeaders: Retry-After on 429s only
		latency time.Duration
	}{
		{"fixed window 100 per 10s", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimit, 0},
		// Rollbar's windows: opened by the first request, 100 per 10 s.
		{"rolling 100 per 10s", func() ratekit.Limiter {
			return must(rolling.New(rolling.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimit, 0},
		{"rolling 100 per 10s, 25ms latency", func() ratekit.Limiter {
			return must(rolling.New(rolling.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimit, 25 * time.Millisecond},
		// A token bucket: 10 per second, 50 at once.
		{"token bucket 10/s burst 50, 25ms latency", func() ratekit.Limiter {
			return must(tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 50}))
		}, httplimit.XRateLimit, 25 * time.Millisecond},
		// The mail API's sliding minute, scaled down: 100 in any 10 s.
		{"sliding log 100 per 10s, 25ms latency", func() ratekit.Limiter {
			return must(slidingwindow.NewLog(slidingwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimit, 25 * time.Millisecond},
		{"sliding counter 100 per 10s", func() ratekit.Limiter {
			return must(slidingwindow.NewCounter(slidingwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimit, 0},
		// Fewer per window than there are workers: the first burst, sent
		// before any header is known, draws 429s, and the hold-off they
		// announce must be kept by every goroutine.
		{"fixed window 10 per 1s", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 10, Window: time.Second}))
		}, httplimit.XRateLimit, 0},
		{"fixed window 100 per 10s, Retry-After only", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.NoHeaders, 0},
		// With a network latency, requests overlap: responses describe the
		// server before requests still on their way, which the transport
		// must count against the budget itself.
		{"fixed window 100 per 10s, 25ms latency", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimit, 25 * time.Millisecond},
		{"fixed window 10 per 1s, 25ms latency", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 10, Window: time.Second}))
		}, httplimit.XRateLimit, 25 * time.Millisecond},
		{"fixed window 100 per 10s, Retry-After only, 25ms latency", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.NoHeaders, 25 * time.Millisecond},
		// Every other dialect httplimit writes and httpclient reads.
		{"fixed window 100 per 10s, X-RateLimit-Reset as Unix time", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimitUnix, 25 * time.Millisecond},
		{"fixed window 100 per 10s, X-RateLimit-Reset as RFC 3339", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.XRateLimitRFC3339, 25 * time.Millisecond},
		{"fixed window 100 per 10s, Sentry headers", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.Sentry, 25 * time.Millisecond},
		{"rolling 100 per 10s, Rollbar headers", func() ratekit.Limiter {
			return must(rolling.New(rolling.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.Rollbar, 25 * time.Millisecond},
		{"sliding counter 100 per 10s, Sanity headers", func() ratekit.Limiter {
			return must(slidingwindow.NewCounter(slidingwindow.Config{Limit: 100, Window: 10 * time.Second}))
		}, httplimit.Sanity, 25 * time.Millisecond},
		{"token bucket 10/s burst 50, IETF headers", func() ratekit.Limiter {
			return must(tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 50}))
		}, httplimit.IETF, 25 * time.Millisecond},
		{"fixed window 10 per 1s, IETF headers", func() ratekit.Limiter {
			return must(fixedwindow.New(fixedwindow.Config{Limit: 10, Window: time.Second}))
		}, httplimit.IETF, 0},
	} {
		t.Run(lim.name, func(t *testing.T) {
			var naive429, ours429 int
			var naiveTime, oursTime time.Duration
			synctest.Test(t, func(t *testing.T) {
				skipTo2026()
				srv := newLimitServer(t, lim.new(), lim.headers)
				start := time.Now()
				require.Equal(t, total, burst(t, naive{inProcess{srv, lim.latency}}, workers, total))
				naive429, naiveTime = srv.refused, time.Since(start)
			})
			synctest.Test(t, func(t *testing.T) {
				skipTo2026()
				srv := newLimitServer(t, lim.new(), lim.headers)
				tr, err := httpclient.New(httpclient.Config{Base: inProcess{srv, lim.latency}, MaxWait: time.Minute})
				require.NoError(t, err)
				start := time.Now()
				require.Equal(t, total, burst(t, tr, workers, total))
				ours429, oursTime = srv.refused, time.Since(start)
				require.Equal(t, total, srv.served)
				srv.requireNoArrivalDuringHold(t, lim.latency)
			})
			t.Logf("429s: naive %d in %v, httpclient %d in %v", naive429, naiveTime, ours429, oursTime)
			require.Less(t, ours429*20, naive429, "far fewer 429s than the naive client")
		})
	}
}
