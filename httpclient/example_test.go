package httpclient_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/httpclient"
)

// Sender's headers: a per-minute limit with the reset as an RFC 3339 time.
func ExampleParseQuota() {
	now := time.Date(2026, 3, 18, 13, 1, 30, 0, time.UTC)
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "60")
	h.Set("X-RateLimit-Remaining", "45")
	h.Set("X-RateLimit-Reset", "2026-03-18T13:02:00Z")
	q, _ := httpclient.ParseQuota(h, now)
	fmt.Printf("%d of %d left, back in full in %s\n", q.Remaining, q.Limit, q.Reset)
	// Output: 45 of 60 left, back in full in 30s
}

// The IETF fields with two policies: the daily one binds, having less left.
func ExampleParseQuotas() {
	h := http.Header{}
	h.Set("RateLimit-Policy", `"burst";q=100;w=60, "daily";q=1000;w=86400`)
	h.Set("RateLimit", `"burst";r=80;t=10, "daily";r=12;t=3600`)
	for _, q := range httpclient.ParseQuotas(h, time.Now()) {
		fmt.Printf("%s: %d/%d per %s, reset in %s\n", q.Policy, q.Remaining, q.Limit, q.Window, q.Reset)
	}
	q, _ := httpclient.ParseQuota(h, time.Now())
	fmt.Println("binding:", q.Policy)
	// Output:
	// burst: 80/100 per 1m0s, reset in 10s
	// daily: 12/1000 per 24h0m0s, reset in 1h0m0s
	// binding: daily
}

// Retry-After as delta seconds and as an HTTP-date, which is read against
// the response's Date header so that clock skew does not matter.
func ExampleParseRetryAfter() {
	h := http.Header{}
	h.Set("Retry-After", "12")
	d, _ := httpclient.ParseRetryAfter(h, time.Now())
	fmt.Println(d)
	h.Set("Retry-After", "Wed, 18 Mar 2026 13:02:00 GMT")
	h.Set("Date", "Wed, 18 Mar 2026 13:01:30 GMT")
	d, _ = httpclient.ParseRetryAfter(h, time.Now())
	fmt.Println(d)
	// Output:
	// 12s
	// 30s
}

// The mail API's 429: the transport waits Retry-After plus jittered backoff
// and retries. A mock clock stands in for time: the OnWait hook, called once
// the wait's timer is armed, moves it on.
func ExampleTransport() {
	mock := clock.NewMock()
	start := mock.Now()
	attempts := 0
	api := rtFunc(func(req *http.Request) (*http.Response, error) {
		attempts++
		h := http.Header{}
		h.Set("X-RateLimit-Limit", "600")
		if attempts == 1 {
			h.Set("Retry-After", "12")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", "12")
			return &http.Response{StatusCode: 429, Header: h, Body: io.NopCloser(strings.NewReader(
				`{"title":"Rate limit exceeded","status":429,"retry_after":12}`))}, nil
		}
		h.Set("X-RateLimit-Remaining", "599")
		h.Set("X-RateLimit-Reset", "60")
		return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}, nil
	})
	tr, err := httpclient.New(httpclient.Config{
		Base:  api,
		Clock: mock,
		Rand:  rand.NewPCG(1, 2), // deterministic jitter
		OnWait: func(req *http.Request, why httpclient.Reason, d time.Duration) {
			fmt.Printf("waiting %s: %s\n", d, why)
			mock.Add(d)
		},
	})
	if err != nil {
		panic(err)
	}
	resp, err := tr.Client().Get("https://api.sendops.dev/v1/messages")
	if err != nil {
		var rl *httpclient.RetryError
		if errors.As(err, &rl) {
			fmt.Println("gave up:", rl.Status, string(rl.Body))
		}
		return
	}
	resp.Body.Close()
	fmt.Printf("%d after %d attempts, %s\n", resp.StatusCode, attempts, mock.Since(start))
	// Output:
	// waiting 12.884686635s: retry-after
	// 200 after 2 attempts, 12.884686635s
}
