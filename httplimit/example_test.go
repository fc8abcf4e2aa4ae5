package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Example wraps a mail API in three tiers. Two limits are the mail API's
// docs: 600 requests per sliding minute per org, shared by all the org's
// keys (test keys at 10% of that), and a per-IP block of clients that keep
// failing authentication (here after 3 failures in a minute opened by the
// first). Two are this service's own: a token bucket per key (bursts of
// 100, refilled at 100 a minute), and 25 requests in any second per client
// IP, as Sanity limits mutations. A mock clock drives it from 13:01:23, so
// the output is fixed.
func Example() {
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 3, 18, 13, 1, 23, 0, time.UTC))

	// The service's API keys and the org each belongs to.
	type apiKey struct {
		org  string
		test bool
	}
	keys := map[string]apiKey{
		"sk_live_1": {org: "acme"},
		"sk_test_1": {org: "acme", test: true},
	}
	// The key functions look the token up, so unknown tokens create no
	// limiters: they are skipped here, answered 401 by the handler, and
	// counted by the failure tier.
	orgOf := func(r *http.Request) (string, bool) {
		tok, _ := httplimit.Bearer(r)
		k, found := keys[tok]
		if k.test {
			return k.org + "/test", found
		}
		return k.org, found
	}
	tokenOf := func(r *http.Request) (string, bool) {
		tok, _ := httplimit.Bearer(r)
		_, found := keys[tok]
		return tok, found
	}
	ipOf, err := httplimit.ClientIP(httplimit.IPConfig{}) // no proxy in front
	if err != nil {
		panic(err)
	}

	// One limiter per key, in ratekit.Keyed stores: the org's sliding minute
	// (an exact log, as the mail API's limit slides), a token bucket per API
	// key, the IP's sliding second (as Sanity's 25 mutations per second per
	// IP slide), and a rolling minute of authentication failures per IP. Each
	// store's factory calls New: limiters of equal Configs share their
	// parameters. MaxKeys bounds memory under a flood of new keys (random
	// addresses, say).
	keyed := ratekit.KeyedConfig{MaxKeys: 100_000}
	liveOrg := slidingwindow.Config{Limit: 600, Window: time.Minute, Name: "org"}
	testOrg := slidingwindow.Config{Limit: 60, Window: time.Minute, Name: "org"} // 10% of live
	orgs := ratekit.NewKeyed(func(org string) *slidingwindow.Log {
		if strings.HasSuffix(org, "/test") {
			return must(slidingwindow.NewLog(testOrg))
		}
		return must(slidingwindow.NewLog(liveOrg))
	}, keyed)
	perToken := tokenbucket.Config{Limit: 100, Window: time.Minute, Burst: 100, Name: "token"}
	tokens := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return must(tokenbucket.New(perToken)) }, keyed)
	perIP := slidingwindow.Config{Limit: 25, Window: time.Second, Name: "ip"}
	ips := ratekit.NewKeyed(func(string) *slidingwindow.Log { return must(slidingwindow.NewLog(perIP)) }, keyed)
	authFailures := rolling.Config{Limit: 3, Window: time.Minute, Name: "auth"}
	failures := ratekit.NewKeyed(func(string) *rolling.Limiter { return must(rolling.New(authFailures)) }, keyed)

	m, err := httplimit.New(httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "org", Key: orgOf, Limiter: httplimit.Per(orgs.Get), Detail: "Too many requests for this organization."},
			{Name: "token", Key: tokenOf, Limiter: httplimit.Per(tokens.Get)},
			{Name: "ip", Key: ipOf, Limiter: httplimit.Per(ips.Get)},
		},
		Failure:     &httplimit.FailureTier{Name: "auth", Key: ipOf, Limiter: httplimit.Per(failures.Get)},
		Headers:     httplimit.XRateLimit | httplimit.IETF,
		Clock:       clk,
		ProblemType: "https://api.sendops.dev/errors/rate_limit",
	})
	if err != nil {
		panic(err)
	}
	api := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, known := tokenOf(r); !known {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, `{"id": "msg_1"}`)
	}))

	send := func(ip, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/messages", nil)
		r.RemoteAddr = ip + ":4711"
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return w
	}

	w := send("203.0.113.5", "sk_live_1")
	fmt.Println(w.Code, "X-RateLimit-Remaining:", w.Header().Get("X-RateLimit-Remaining"))
	fmt.Println("RateLimit-Policy:", w.Header().Get("RateLimit-Policy"))
	fmt.Println("RateLimit:", w.Header().Get("RateLimit"))

	w = send("203.0.113.5", "sk_test_1")
	fmt.Println(w.Code, "RateLimit:", w.Header().Get("RateLimit"))

	// A client retrying a bad key trips the IP block, even for a valid key.
	for range 3 {
		send("198.51.100.66", "sk_live_typo")
	}
	clk.Add(27 * time.Second) // 13:01:50
	w = send("198.51.100.66", "sk_live_1")
	fmt.Println(w.Code, "Retry-After:", w.Header().Get("Retry-After"))
	fmt.Print(w.Body)

	// Valid keys elsewhere carry on.
	w = send("203.0.113.5", "sk_live_1")
	fmt.Println(w.Code, "RateLimit:", w.Header().Get("RateLimit"))

	// Output:
	// 200 X-RateLimit-Remaining: 24
	// RateLimit-Policy: "org";q=600;w=60, "token";q=100;w=60, "ip";q=25;w=1
	// RateLimit: "org";r=599;t=60, "token";r=99;t=1, "ip";r=24;t=1
	// 200 RateLimit: "org";r=59;t=60, "token";r=99;t=1, "ip";r=23;t=1
	// 429 Retry-After: 33
	// {"type":"https://api.sendops.dev/errors/rate_limit","title":"Rate limit exceeded","status":429,"detail":"Too many failed requests from this client. Retry in 33 seconds.","retry_after":33,"violated-policies":["auth"]}
	// 200 RateLimit: "org";r=598;t=60, "token";r=99;t=1, "ip";r=24;t=1
}

// must returns v, or panics with err: for the Example's constructors.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
