package httpclient_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/httpclient"
	"github.com/ratekit/ratekit/httplimit"
)

// This file is a user's check of the seeds' advice to clients, run over real
// sockets (httptest.Server): the server judges on a clock.Mock, and the
// transport waits on the same mock, which its OnWait hook moves on by the
// wait announced (the hook runs after the wait's timer is armed), so
// nothing sleeps and every count is exact.

// seedServer records what reached it.
type seedServer struct {
	*httptest.Server
	clk *clock.Mock

	mu       sync.Mutex
	arrivals []time.Time // on clk
	bodies   []string
	refused  int // 429s the middleware wrote
}

func (s *seedServer) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.arrivals = append(s.arrivals, s.clk.Now())
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
}

// newSeedServer serves /limited behind httplimit (3 requests per minute,
// windows at :00, the Sender-style X-RateLimit-* with an RFC 3339 Reset),
// and handler on every other path.
func newSeedServer(t *testing.T, handler func(s *seedServer, w http.ResponseWriter, r *http.Request)) *seedServer {
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 3, 18, 13, 1, 48, 0, time.UTC))
	s := &seedServer{clk: clk}
	l := must(fixedwindow.New(fixedwindow.Config{Name: "account", Limit: 3, Window: time.Minute}))
	m := must(httplimit.New(httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "account", Limiter: httplimit.Shared(l)}},
		Headers: httplimit.XRateLimitRFC3339,
		Clock:   clk,
		OnDecision: func(_ *http.Request, d ratekit.Decision, _ []httplimit.TierDecision) {
			if !d.Allowed {
				s.mu.Lock()
				s.refused++
				s.mu.Unlock()
			}
		},
	}))
	mux := http.NewServeMux()
	mux.Handle("/limited", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		handler(s, w, r)
	})
	// Every response's Date is the server's clock, as a real server's is,
	// so that the client reads absolute times (an RFC 3339 Reset, an
	// HTTP-date Retry-After) against it.
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// waits is an OnWait hook that logs each wait and moves the mock on by it,
// unless cancel is set: then it cancels the request's wait instead.
type waits struct {
	clk    *clock.Mock
	mu     sync.Mutex
	log    []httpclient.Reason
	d      []time.Duration
	cancel context.CancelFunc
}

func (w *waits) hook(_ *http.Request, r httpclient.Reason, d time.Duration) {
	w.mu.Lock()
	w.log, w.d = append(w.log, r), append(w.d, d)
	cancel := w.cancel
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		return
	}
	w.clk.Add(d)
}

func seedTransport(t *testing.T, s *seedServer, w *waits, cfg httpclient.Config) *http.Client {
	cfg.Base, cfg.Clock, cfg.OnWait = s.Client().Transport, s.clk, w.hook
	cfg.Rand = rand.NewPCG(7, 8)
	return must(httpclient.New(cfg)).Client()
}

// Sender's step 4: pace from Remaining and Reset rather than react to 429s.
// 8 times the limit, sent one after another: every request succeeds, the
// server refuses none (the first request went blind, and there was room),
// and each wait ends at a window's reset.
func TestSeedClientPacesFromRemaining(t *testing.T) {
	s := newSeedServer(t, nil)
	w := &waits{clk: s.clk}
	client := seedTransport(t, s, w, httpclient.Config{})
	for i := range 8 * 3 {
		resp, err := client.Get(s.URL + "/limited")
		require.NoError(t, err, "request %d", i)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "request %d", i)
	}
	require.Zero(t, s.refused, "429s drawn")
	require.Len(t, s.arrivals, 24)
	// Three in each minute's window, none early.
	for i, at := range s.arrivals {
		require.Equal(t, s.arrivals[0].Truncate(time.Minute).Add(time.Duration(i/3)*time.Minute), at.Truncate(time.Minute), "arrival %d at %v", i, at)
	}
}

// Retry-After as an HTTP-date (read against the response's Date) is a
// floor, as delta seconds are; a 503 with Retry-After is retried too.
func TestSeedClientRetryAfterForms(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		value  func(now time.Time) string
	}{
		{"delta seconds", 429, func(time.Time) string { return "7" }},
		{"HTTP-date", 429, func(now time.Time) string { return now.Add(7 * time.Second).UTC().Format(http.TimeFormat) }},
		{"HTTP-date on a 503", 503, func(now time.Time) string { return now.Add(7 * time.Second).UTC().Format(http.TimeFormat) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeedServer(t, func(s *seedServer, w http.ResponseWriter, r *http.Request) {
				if len(s.arrivals) == 1 {
					w.Header().Set("Retry-After", tc.value(s.clk.Now()))
					w.WriteHeader(tc.status)
				}
			})
			w := &waits{clk: s.clk}
			resp, err := seedTransport(t, s, w, httpclient.Config{}).Get(s.URL + "/x")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			require.Len(t, s.arrivals, 2)
			require.Equal(t, []httpclient.Reason{httpclient.ReasonRetryAfter}, w.log)
			require.GreaterOrEqual(t, s.arrivals[1].Sub(s.arrivals[0]), 7*time.Second)
		})
	}
}

// Sender's "Retry logic causes duplicate operations": a POST without an
// idempotency key is never retried (the 429 comes back as it is); with one
// it is retried, its body sent whole each time.
func TestSeedClientNonIdempotent(t *testing.T) {
	const payload = `{"email":"a@example.com","groups":["g1"]}`
	refuseTwice := func(s *seedServer, w http.ResponseWriter, r *http.Request) {
		if len(s.arrivals) <= 2 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(429)
			io.WriteString(w, `{"status":429}`)
		}
	}
	s := newSeedServer(t, refuseTwice)
	client := seedTransport(t, s, &waits{clk: s.clk}, httpclient.Config{})
	resp, err := client.Post(s.URL+"/v2/subscribers", "application/json", strings.NewReader(payload))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 429, resp.StatusCode)
	require.Equal(t, `{"status":429}`, string(b), "the 429's body is the caller's to read")
	require.Len(t, s.arrivals, 1, "not retried")

	s = newSeedServer(t, refuseTwice)
	client = seedTransport(t, s, &waits{clk: s.clk}, httpclient.Config{})
	req := must(http.NewRequest("POST", s.URL+"/v2/subscribers", strings.NewReader(payload)))
	req.Header.Set("Idempotency-Key", "c3f1b8c2")
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, []string{payload, payload, payload}, s.bodies)
}

// Capped retries with exponential backoff and jitter: a server that keeps
// refusing gets MaxAttempts requests, each retry no sooner than Retry-After
// and later than the one before by at least half the doubled backoff.
func TestSeedClientCappedRetries(t *testing.T) {
	s := newSeedServer(t, func(s *seedServer, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(429)
	})
	w := &waits{clk: s.clk}
	_, err := seedTransport(t, s, w, httpclient.Config{}).Get(s.URL + "/x")
	var re *httpclient.RetryError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, httpclient.ErrRetriesExhausted)
	require.Equal(t, httpclient.DefaultMaxAttempts, re.Attempts)
	require.Len(t, s.arrivals, httpclient.DefaultMaxAttempts)
	for k, d := range w.d { // retry k+1: e = 1s·2^k, wait in [1s + e/2, 1s + e]
		e := time.Second << k
		require.GreaterOrEqual(t, d, time.Second+e/2, "wait %d", k+1)
		require.LessOrEqual(t, d, time.Second+e, "wait %d", k+1)
		require.GreaterOrEqual(t, s.arrivals[k+1].Sub(s.arrivals[k]), d)
	}
}

// A context cancelled during a wait ends the request at once with its
// error, sends nothing more, and the host's hold-off stays for the next
// request, which fails at once when its deadline is sooner.
func TestSeedClientCancelledWait(t *testing.T) {
	s := newSeedServer(t, func(s *seedServer, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(429)
	})
	ctx, cancel := context.WithCancel(context.Background())
	w := &waits{clk: s.clk, cancel: cancel}
	client := seedTransport(t, s, w, httpclient.Config{})
	_, err := client.Do(must(http.NewRequestWithContext(ctx, "GET", s.URL+"/x", nil)))
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, s.arrivals, 1)

	dctx, dcancel := s.clk.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	_, err = client.Do(must(http.NewRequestWithContext(dctx, "GET", s.URL+"/x", nil)))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var we *httpclient.WaitError
	require.ErrorAs(t, err, &we)
	require.Equal(t, httpclient.ReasonHoldOff, we.Reason)
	require.Len(t, s.arrivals, 1, "nothing sent during the hold-off")
	require.False(t, errors.Is(err, context.Canceled))
}
