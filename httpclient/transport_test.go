package httpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httpclient"
)

// rtFunc is a base RoundTripper made of a function.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// body is a response body that records whether it was read to the end and
// closed, to prove the transport leaks no connection.
type body struct {
	r      *strings.Reader
	closed atomic.Bool
	eof    atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *body) Close() error { b.closed.Store(true); return nil }

// script is a fake server: it answers requests in turn with the responses
// its steps describe, records when each request arrived and what body it
// carried, and keeps every response body it handed out.
type script struct {
	mu       sync.Mutex
	steps    []step
	arrivals []time.Time
	bodies   []string
	handed   []*body
}

type step struct {
	status int
	header []string
	body   string
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var reqBody string
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		reqBody = string(b)
	}
	s.arrivals = append(s.arrivals, time.Now())
	s.bodies = append(s.bodies, reqBody)
	st := s.steps[min(len(s.arrivals)-1, len(s.steps)-1)]
	b := &body{r: strings.NewReader(st.body)}
	s.handed = append(s.handed, b)
	resp := &http.Response{
		StatusCode: st.status, Status: fmt.Sprintf("%d %s", st.status, http.StatusText(st.status)),
		Header: header(st.header...), Body: b, Request: r,
	}
	return resp, nil
}

// gaps returns the time between successive arrivals.
func (s *script) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(s.arrivals); i++ {
		g = append(g, s.arrivals[i].Sub(s.arrivals[i-1]))
	}
	return g
}

// requireClosed checks that every body the script handed out, except the
// ones returned to the caller (open), was closed.
func (s *script) requireClosed(t *testing.T, open ...int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.handed {
		want := true
		for _, o := range open {
			if o == i {
				want = false
			}
		}
		require.Equal(t, want, b.closed.Load(), "body %d closed", i)
	}
}

var (
	tooMany = func(h ...string) step { return step{status: 429, header: h, body: `{"title":"Rate limit exceeded"}`} }
	ok      = step{status: 200, body: "ok"}
)

// waitLog records OnWait calls.
type waitLog struct {
	mu    sync.Mutex
	waits []string
}

func (w *waitLog) hook(_ *http.Request, r httpclient.Reason, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, fmt.Sprintf("%s %s", r, d))
}

func (w *waitLog) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.waits...)
}

func newTransport(t *testing.T, s http.RoundTripper, cfg httpclient.Config) *httpclient.Transport {
	t.Helper()
	cfg.Base = s
	if cfg.Rand == nil {
		cfg.Rand = rand.NewPCG(1, 2)
	}
	tr, err := httpclient.New(cfg)
	require.NoError(t, err)
	return tr
}

func get(t *testing.T, tr http.RoundTripper) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v2/subscribers", nil)
	require.NoError(t, err)
	return tr.RoundTrip(req)
}

func TestRetryAfterIsAFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "3"), tooMany("Retry-After", "3"), ok}}
		var log waitLog
		tr := newTransport(t, s, httpclient.Config{OnWait: log.hook})
		resp, err := get(t, tr)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		s.requireClosed(t, 2)
		resp.Body.Close()
		g := s.gaps()
		require.Len(t, g, 2)
		// Retry 1: 3 s plus equal jitter of e = 1 s, in [0.5 s, 1 s].
		require.GreaterOrEqual(t, g[0], 3500*time.Millisecond)
		require.LessOrEqual(t, g[0], 4*time.Second)
		// Retry 2: 3 s plus equal jitter of e = 2 s, in [1 s, 2 s].
		require.GreaterOrEqual(t, g[1], 4*time.Second)
		require.LessOrEqual(t, g[1], 5*time.Second)
		require.Equal(t, []string{"retry-after " + g[0].String(), "retry-after " + g[1].String()}, log.get())
	})
}

func TestRetryAfterHTTPDate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
		s := &script{steps: []step{tooMany("Retry-After", at), ok}}
		tr := newTransport(t, s, httpclient.Config{BaseDelay: time.Millisecond, MaxWait: 2 * time.Minute})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		require.GreaterOrEqual(t, s.gaps()[0], 90*time.Second)
		require.LessOrEqual(t, s.gaps()[0], 90*time.Second+time.Millisecond)
	})
}

func TestBackoffWithoutRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany(), tooMany(), tooMany(), tooMany(), ok}}
		tr := newTransport(t, s, httpclient.Config{})
		resp, err := get(t, tr)
		require.NoError(t, err)
		s.requireClosed(t, 4)
		resp.Body.Close()
		g := s.gaps()
		require.Len(t, g, 4)
		for i, e := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
			require.GreaterOrEqual(t, g[i], e/2, "retry %d", i+1)
			require.LessOrEqual(t, g[i], e, "retry %d", i+1)
		}
	})
}

func TestBackoffCappedAtMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany(), tooMany(), tooMany("Retry-After", "50"), ok}}
		tr := newTransport(t, s, httpclient.Config{BaseDelay: 40 * time.Second, MaxWait: 60 * time.Second})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		g := s.gaps()
		require.GreaterOrEqual(t, g[0], 20*time.Second)
		require.LessOrEqual(t, g[0], 40*time.Second)
		require.GreaterOrEqual(t, g[1], 30*time.Second) // e = min(80 s, 60 s)
		require.LessOrEqual(t, g[1], 60*time.Second)
		require.Equal(t, 60*time.Second, g[2], "50 s + backoff, capped at MaxWait")
	})
}

func TestGiveUpAfterMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "1", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1")}}
		tr := newTransport(t, s, httpclient.Config{MaxAttempts: 3})
		// Through http.Client, as callers use it: the error is a *url.Error.
		resp, err := tr.Client().Get("https://api.example.com/x?token=secret")
		require.Nil(t, resp)
		var re *httpclient.RetryError
		require.ErrorAs(t, err, &re)
		require.ErrorIs(t, err, httpclient.ErrRetriesExhausted)
		require.Equal(t, 429, re.StatusCode)
		require.Equal(t, "429 Too Many Requests", re.Status)
		require.Equal(t, 3, re.Attempts)
		require.Equal(t, time.Second, re.RetryAfter)
		require.Equal(t, "0", re.Header.Get("X-RateLimit-Remaining"))
		require.Equal(t, `{"title":"Rate limit exceeded"}`, string(re.Body))
		require.Equal(t, "GET", re.Method)
		require.Equal(t, "https://api.example.com/x?token=secret", re.URL)
		require.Contains(t, re.Error(), "429 Too Many Requests after 3 attempts (Retry-After 1s): httpclient: attempts exhausted")
		require.Len(t, s.arrivals, 3)
		s.requireClosed(t)
		for _, b := range s.handed {
			require.True(t, b.eof.Load(), "drained")
		}
	})
}

func TestRetryAfterLongerThanMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "3600"), ok}}
		tr := newTransport(t, s, httpclient.Config{})
		start := time.Now()
		_, err := get(t, tr)
		require.ErrorIs(t, err, httpclient.ErrWaitTooLong)
		var re *httpclient.RetryError
		require.ErrorAs(t, err, &re)
		require.Equal(t, time.Hour, re.RetryAfter)
		require.Equal(t, start, time.Now(), "gave up at once")
		s.requireClosed(t)

		// The host asked everyone to hold off for an hour: the next request
		// fails at once too, without reaching the server.
		_, err = get(t, tr)
		require.ErrorIs(t, err, httpclient.ErrWaitTooLong)
		var we *httpclient.WaitError
		require.ErrorAs(t, err, &we)
		require.Equal(t, httpclient.ReasonHoldOff, we.Reason)
		require.Equal(t, "api.example.com", we.Host)
		require.Equal(t, time.Hour, we.Wait)
		require.Len(t, s.arrivals, 1)
	})
}

func TestNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header []string
	}{
		{"401", 401, nil},
		{"401 with Retry-After", 401, []string{"Retry-After", "1"}},
		{"403", 403, []string{"Retry-After", "1"}},
		{"503 without Retry-After", 503, nil},
		{"500", 500, []string{"Retry-After", "1"}},
		{"200", 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: []step{{status: tc.status, header: tc.header, body: "x"}, ok}}
				tr := newTransport(t, s, httpclient.Config{})
				resp, err := get(t, tr)
				require.NoError(t, err)
				require.Equal(t, tc.status, resp.StatusCode)
				b, _ := io.ReadAll(resp.Body)
				require.Equal(t, "x", string(b), "the body is handed over unread")
				resp.Body.Close()
				require.Len(t, s.arrivals, 1)
				// And a Retry-After on a status that is not retried holds
				// nobody off.
				start := time.Now()
				resp, err = get(t, tr)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, start, time.Now())
			})
		})
	}
}

func Test503WithRetryAfterIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{{status: 503, header: []string{"Retry-After", "2"}}, ok}}
		tr := newTransport(t, s, httpclient.Config{})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.GreaterOrEqual(t, s.gaps()[0], 2*time.Second)
	})
}

func post(t *testing.T, tr http.RoundTripper, b io.Reader, h ...string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v2/subscribers", b)
	require.NoError(t, err)
	for i := 0; i < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	return tr.RoundTrip(req)
}

func TestNonIdempotentMethods(t *testing.T) {
	t.Run("POST is not retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{steps: []step{tooMany("Retry-After", "1"), ok}}
			tr := newTransport(t, s, httpclient.Config{})
			resp, err := post(t, tr, strings.NewReader(`{"email":"a@b.c"}`))
			require.NoError(t, err)
			require.Equal(t, 429, resp.StatusCode, "returned as is")
			resp.Body.Close()
			require.Len(t, s.arrivals, 1)
		})
	})
	for _, tc := range []struct {
		name string
		cfg  httpclient.Config
		h    []string
	}{
		{"Idempotency-Key", httpclient.Config{}, []string{"Idempotency-Key", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`}},
		{"X-Idempotency-Key", httpclient.Config{}, []string{"X-Idempotency-Key", "k1"}},
		{"opt in", httpclient.Config{RetryNonIdempotent: true}, nil},
	} {
		t.Run("POST with "+tc.name+" is retried, body rewound", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: []step{tooMany("Retry-After", "1"), tooMany("Retry-After", "1"), ok}}
				tr := newTransport(t, s, tc.cfg)
				resp, err := post(t, tr, strings.NewReader(`{"email":"a@b.c"}`), tc.h...)
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				resp.Body.Close()
				require.Equal(t, []string{`{"email":"a@b.c"}`, `{"email":"a@b.c"}`, `{"email":"a@b.c"}`}, s.bodies)
			})
		})
	}
}

// onceReader is a body http.NewRequest cannot make a GetBody for.
type onceReader struct{ io.Reader }

func TestBodyNotReplayable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "1"), ok}}
		tr := newTransport(t, s, httpclient.Config{})
		req, err := http.NewRequest(http.MethodPut, "https://api.example.com/doc/1", onceReader{strings.NewReader("v2")})
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		resp, err := tr.RoundTrip(req)
		require.Nil(t, resp)
		require.ErrorIs(t, err, httpclient.ErrBodyNotReplayable)
		var re *httpclient.RetryError
		require.ErrorAs(t, err, &re)
		require.Equal(t, 1, re.Attempts)
		require.Equal(t, 429, re.StatusCode)
		require.Len(t, s.arrivals, 1)
		s.requireClosed(t)

		// A failing GetBody ends the retry with its error.
		req, err = http.NewRequest(http.MethodPut, "https://api.example.com/doc/1", strings.NewReader("v2"))
		require.NoError(t, err)
		boom := errors.New("boom")
		req.GetBody = func() (io.ReadCloser, error) { return nil, boom }
		s2 := &script{steps: []step{tooMany("Retry-After", "1"), ok}}
		tr = newTransport(t, s2, httpclient.Config{})
		_, err = tr.RoundTrip(req)
		require.ErrorIs(t, err, boom)
		require.ErrorAs(t, err, &re)
	})
}

func TestContextDeadline(t *testing.T) {
	t.Run("retry wait past the deadline fails at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{steps: []step{tooMany("Retry-After", "5"), ok}}
			tr := newTransport(t, s, httpclient.Config{})
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
			start := time.Now()
			_, err := tr.RoundTrip(req)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorIs(t, err, ratekit.ErrWaitExceedsDeadline)
			var re *httpclient.RetryError
			require.ErrorAs(t, err, &re)
			require.Equal(t, start, time.Now(), "no wait was begun")
			s.requireClosed(t)
		})
	})
	t.Run("hold-off past the deadline fails at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{steps: []step{{status: 503, header: []string{"Retry-After", "30"}}, ok}}
			tr := newTransport(t, s, httpclient.Config{MaxAttempts: 1})
			_, err := get(t, tr)
			require.ErrorIs(t, err, httpclient.ErrRetriesExhausted)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
			start := time.Now()
			_, err = tr.RoundTrip(req)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var we *httpclient.WaitError
			require.ErrorAs(t, err, &we)
			require.Equal(t, httpclient.ReasonHoldOff, we.Reason)
			require.Equal(t, start, time.Now())
			require.Len(t, s.arrivals, 1)
		})
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{steps: []step{tooMany("Retry-After", "5"), ok}}
			tr := newTransport(t, s, httpclient.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				time.Sleep(2 * time.Second) // fake time: the bubble's clock
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
			start := time.Now()
			_, err := tr.RoundTrip(req)
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, 2*time.Second, time.Since(start))
		})
	})
	t.Run("request body closed when never sent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{steps: []step{{status: 503, header: []string{"Retry-After", "30"}}, ok}}
			tr := newTransport(t, s, httpclient.Config{MaxAttempts: 1})
			_, _ = get(t, tr)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b := &body{r: strings.NewReader("payload")}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "https://api.example.com/", b)
			_, err := tr.RoundTrip(req)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.True(t, b.closed.Load())
		})
	})
}

func TestNetworkErrorNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("connection reset")
		calls := 0
		tr := newTransport(t, rtFunc(func(*http.Request) (*http.Response, error) {
			calls++
			return nil, boom
		}), httpclient.Config{})
		_, err := get(t, tr)
		require.ErrorIs(t, err, boom)
		require.Equal(t, 1, calls)
	})
}

// TestHoldOffIsShared: a 429 with Retry-After to one request holds off every
// other request to the same host, and no other host.
func TestHoldOffIsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "10"), ok}}
		var log waitLog
		tr := newTransport(t, s, httpclient.Config{MaxAttempts: 1, OnWait: log.hook})
		_, err := get(t, tr)
		require.ErrorIs(t, err, httpclient.ErrRetriesExhausted)
		start := time.Now()
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				resp, err := get(t, tr)
				require.NoError(t, err)
				resp.Body.Close()
			})
		}
		wg.Wait()
		require.Equal(t, 10*time.Second, time.Since(start))
		for _, a := range s.arrivals[1:] {
			require.Equal(t, start.Add(10*time.Second), a)
		}
		require.Equal(t, []string{"hold-off 10s", "hold-off 10s", "hold-off 10s", "hold-off 10s", "hold-off 10s"}, log.get())

		// Another host is not held off.
		other := &script{steps: []step{ok}}
		tr2 := newTransport(t, rtFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "other.example.com" {
				return other.RoundTrip(r)
			}
			return s.RoundTrip(r)
		}), httpclient.Config{MaxAttempts: 1})
		_, _ = get(t, tr2)
		_ = s // the first host is now held off in tr2 (ok was answered; no hold-off)
		req, _ := http.NewRequest(http.MethodGet, "https://other.example.com/", nil)
		resp, err := tr2.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
	})
}

// TestQuotaExhausted: Remaining 0 makes the next request wait for Reset.
func TestQuotaExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{
			{status: 200, header: []string{"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "30"}},
			ok,
		}}
		var log waitLog
		tr := newTransport(t, s, httpclient.Config{OnWait: log.hook})
		for range 2 {
			resp, err := get(t, tr)
			require.NoError(t, err)
			resp.Body.Close()
		}
		require.Equal(t, []time.Duration{30 * time.Second}, s.gaps())
		require.Equal(t, []string{"quota-exhausted 30s"}, log.get())
	})
}

func TestQuotaResetBeyondMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Rollbar: a daily quota used up, with 5 hours to go.
		s := &script{steps: []step{
			{status: 200, header: []string{"X-Rate-Limit-Limit", "100000", "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Remaining-Seconds", "18000"}},
		}}
		tr := newTransport(t, s, httpclient.Config{})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		_, err = get(t, tr)
		require.ErrorIs(t, err, httpclient.ErrWaitTooLong)
		var we *httpclient.WaitError
		require.ErrorAs(t, err, &we)
		require.Equal(t, httpclient.ReasonExhausted, we.Reason)
		require.Equal(t, 5*time.Hour, we.Wait)
		require.Contains(t, we.Error(), "quota-exhausted wait of 5h0m0s")
	})
}

// fixedWindow is a fake server with a fixed window of limit requests per
// window, aligned to its start, that sends X-RateLimit-* on every response.
type fixedWindow struct {
	mu       sync.Mutex
	start    time.Time
	limit    int
	window   time.Duration
	used     map[int64]int
	arrivals []time.Time
	refused  int
}

func (f *fixedWindow) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.arrivals = append(f.arrivals, now)
	w := int64(now.Sub(f.start) / f.window)
	reset := f.start.Add(time.Duration(w+1) * f.window).Sub(now)
	status := 200
	if f.used[w] >= f.limit {
		status = 429
		f.refused++
	} else {
		f.used[w]++
	}
	secs := int64((reset + time.Second - 1) / time.Second)
	h := header("X-RateLimit-Limit", fmt.Sprint(f.limit), "X-RateLimit-Remaining", fmt.Sprint(f.limit-f.used[w]),
		"X-RateLimit-Reset", fmt.Sprint(secs))
	if status == 429 {
		h.Set("Retry-After", fmt.Sprint(secs))
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: r}, nil
}

// TestPacingSpreadsTheLastOfTheQuota: with 20 of 100 left and 10 s to the
// reset, the 20 go 0.5 s apart rather than at once.
func TestPacingSpreadsTheLastOfTheQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fixedWindow{start: time.Now(), limit: 100, window: 10 * time.Second, used: map[int64]int{0: 79}}
		tr := newTransport(t, f, httpclient.Config{})
		resp, err := get(t, tr) // learns: 20 left, reset in 10 s
		require.NoError(t, err)
		resp.Body.Close()
		var wg sync.WaitGroup
		for range 25 {
			wg.Go(func() {
				resp, err := get(t, tr)
				require.NoError(t, err)
				resp.Body.Close()
			})
		}
		wg.Wait()
		require.Zero(t, f.refused)
		require.Len(t, f.arrivals, 26)
		for i, a := range f.arrivals[1:21] {
			require.Equal(t, f.start.Add(time.Duration(i)*500*time.Millisecond), a, "request %d", i)
		}
		// The rest wait for the reset. The 20th response, at 9.5 s, said
		// "Reset: 1" (servers round up to whole seconds), but the horizon
		// of the spreading was the reset first announced, 10 s: one probe
		// goes then, learns that the window has reset, and the rest follow.
		for _, a := range f.arrivals[21:] {
			require.Equal(t, f.start.Add(10*time.Second), a, "the rest at the reset")
		}
	})
}

func TestPacingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fixedWindow{start: time.Now(), limit: 100, window: 10 * time.Second, used: map[int64]int{0: 79}}
		tr := newTransport(t, f, httpclient.Config{PaceBelow: -1})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		var wg sync.WaitGroup
		for range 25 {
			wg.Go(func() {
				resp, err := get(t, tr)
				require.NoError(t, err)
				resp.Body.Close()
			})
		}
		wg.Wait()
		require.Zero(t, f.refused)
		require.Len(t, f.arrivals, 26)
		// No spreading: every request goes at once or, past the budget, at
		// the reset, none in between. How many go at once depends on the
		// order in which the concurrent responses are recorded: one
		// recorded after a later-served one counts requests the server had
		// already counted as still in flight, which holds back one request
		// more, never one less (record's arithmetic). So at most the 20
		// left go at once, and most do.
		atOnce := 0
		for i, a := range f.arrivals[1:] {
			if a.Equal(f.start) {
				atOnce++
				continue
			}
			require.Equal(t, f.start.Add(10*time.Second), a, "request %d: at once or at the reset, no spreading", i+1)
		}
		require.LessOrEqual(t, atOnce, 20)
		require.GreaterOrEqual(t, atOnce, 13, "most of the 20 left go at once")
	})
}

func TestMaxHosts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{ok}}
		tr := newTransport(t, s, httpclient.Config{MaxHosts: 3})
		for i := range 10 {
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://h%d.example.com/", i), nil)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.LessOrEqual(t, tr.Hosts(), 3)
		}
	})
}

func TestKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Sender: the quota is per account, shared by all its hosts.
		s := &script{steps: []step{tooMany("Retry-After", "7"), ok}}
		tr := newTransport(t, s, httpclient.Config{MaxAttempts: 1, Key: func(*http.Request) string { return "account-1" }})
		_, err := get(t, tr)
		require.Error(t, err)
		start := time.Now()
		req, _ := http.NewRequest(http.MethodGet, "https://eu.example.com/", nil)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 7*time.Second, time.Since(start))
	})
}

func TestOnResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "1"), ok}}
		var got []string
		tr := newTransport(t, s, httpclient.Config{OnResponse: func(req *http.Request, resp *http.Response, attempt int) {
			got = append(got, fmt.Sprintf("%s %d #%d", req.Method, resp.StatusCode, attempt))
		}})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, []string{"GET 429 #1", "GET 200 #2"}, got)
	})
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]httpclient.Config{
		"MaxAttempts": {MaxAttempts: -1},
		"BaseDelay":   {BaseDelay: -time.Second},
		"MaxWait":     {MaxWait: -1},
		"MaxWait big": {MaxWait: 11 * 365 * 24 * time.Hour},
		"PaceBelow":   {PaceBelow: 101},
		"MaxHosts":    {MaxHosts: -2},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := httpclient.New(cfg)
			require.ErrorIs(t, err, ratekit.ErrInvalidConfig)
			require.ErrorContains(t, err, name[:5])
		})
	}
	tr, err := httpclient.New(httpclient.Config{})
	require.NoError(t, err)
	require.NotNil(t, tr.Client())
}

func TestZeroTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{tooMany("Retry-After", "1"), ok}}
		tr := &httpclient.Transport{}
		// The zero Transport sends through http.DefaultTransport; give the
		// request a scheme it cannot dial to prove it is used, then check
		// the defaults through a configured one.
		req, _ := http.NewRequest(http.MethodGet, "nope://x/", nil)
		_, err := tr.RoundTrip(req)
		require.Error(t, err)
		tr2, err := httpclient.New(httpclient.Config{Base: s})
		require.NoError(t, err)
		resp, err := get(t, tr2)
		require.NoError(t, err)
		resp.Body.Close()
	})
}
