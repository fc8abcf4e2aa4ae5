package httplimit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
)

// This file is a user's check of the seeds' promises to clients, end to end:
// a small real server per seed (net/http through httptest.NewServer, the
// limits judged on a clock.Mock that stands still during a burst) driven by
// real http.Clients, and, at 8 times a limit, by a load generator of
// goroutines whose answers are counted exactly. Nothing depends on timing:
// while the clock stands still every request is judged at the same instant,
// so the counts are exact however the goroutines interleave.

// reply is one response as the load generator saw it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// load sends n requests made by mk from workers goroutines over client and
// returns the replies in the order they came back.
func load(t *testing.T, client *http.Client, workers, n int, mk func(i int) *http.Request) []reply {
	t.Helper()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		replies []reply
		wg      sync.WaitGroup
		errs    = make(chan error, workers)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				resp, err := client.Do(mk(i))
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				replies = append(replies, reply{resp.StatusCode, resp.Header, body})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(replies) != n {
		t.Fatalf("%d replies to %d requests", len(replies), n)
	}
	return replies
}

// statuses counts replies by status.
func statuses(rs []reply) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.status]++
	}
	return m
}

// intHeader reads a header that must hold a non-negative integer.
func intHeader(t *testing.T, h http.Header, name string) int64 {
	t.Helper()
	v := h.Values(name)
	if len(v) != 1 {
		t.Fatalf("%s: %q, want one value", name, v)
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("%s: %q is not a non-negative integer", name, v[0])
	}
	return n
}

// problemOf decodes a refusal's application/problem+json body.
func problemOf(t *testing.T, r reply) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%d: Content-Type %q, want application/problem+json", r.status, ct)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	if p["status"] != float64(r.status) {
		t.Errorf("problem status %v in a %d", p["status"], r.status)
	}
	return p
}

// proxied makes the servers below believe X-Forwarded-For from loopback, so
// that one machine can play clients of many addresses.
func proxied(t *testing.T) httplimit.KeyFunc {
	ipOf, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		t.Fatal(err)
	}
	return ipOf
}

func mustLog(cfg slidingwindow.Config) *slidingwindow.Log {
	l, err := slidingwindow.NewLog(cfg)
	if err != nil {
		panic(err)
	}
	return l
}

func request(t *testing.T, method, url string, header ...string) *http.Request {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// The mail API: 600 per sliding minute per org for live keys, 60 for test
// keys, shared by the org's keys; X-RateLimit-* and (here) the IETF fields on
// every response; a 429 with Retry-After equal to X-RateLimit-Reset and the
// body's retry_after; failed authentications limited per IP, after which
// valid keys from that IP are refused too; limits changed at runtime.
func TestSeedMailAPI(t *testing.T) {
	clk := mockAt(t0)
	live := slidingwindow.Config{Name: "org", Limit: 600, Window: time.Minute}
	test := live
	test.Limit = 60
	orgs := newKeyed(func(org string) *slidingwindow.Log {
		if strings.HasSuffix(org, "/test") {
			return mustLog(test)
		}
		return mustLog(live)
	})
	fails := newKeyed(func(string) *slidingwindow.Log {
		return mustLog(slidingwindow.Config{Name: "auth", Limit: 10, Window: time.Minute})
	})
	keys := map[string]string{"sk_live_1": "acme", "sk_live_2": "acme", "sk_test_1": "acme/test"}
	orgOf := func(r *http.Request) (string, bool) {
		tok, _ := httplimit.Bearer(r)
		org, ok := keys[tok]
		return org, ok
	}
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "org", Key: orgOf, Missing: httplimit.MissingReject,
			Limiter: httplimit.Per(orgs.Get), Detail: "Too many requests for this organization."}},
		Failure:     &httplimit.FailureTier{Name: "auth", Key: proxied(t), Limiter: httplimit.Per(fails.Get)},
		Headers:     httplimit.XRateLimit | httplimit.IETF,
		Clock:       clk,
		ProblemType: "https://api.sendops.dev/errors/rate_limit",
	})
	srv := httptest.NewServer(m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})))
	defer srv.Close()
	client := srv.Client()
	send := func(tok, ip string) *http.Request {
		return request(t, "POST", srv.URL+"/v1/messages", "Authorization", "Bearer "+tok, "X-Forwarded-For", ip)
	}

	// 8x the test keys' limit at one instant: exactly 60 admitted.
	rs := load(t, client, 16, 8*60, func(int) *http.Request { return send("sk_test_1", "10.0.0.1") })
	if got := statuses(rs); got[http.StatusAccepted] != 60 || got[http.StatusTooManyRequests] != 420 {
		t.Fatalf("statuses at 8x: %v, want 60 admitted and 420 refused", got)
	}
	var remaining []int
	for _, r := range rs {
		limit, rem, reset := intHeader(t, r.header, "X-RateLimit-Limit"), intHeader(t, r.header, "X-RateLimit-Remaining"), intHeader(t, r.header, "X-RateLimit-Reset")
		if limit != 60 || reset < 1 || reset > 60 {
			t.Fatalf("%d: X-RateLimit-Limit %d, Reset %d", r.status, limit, reset)
		}
		checkIETF(t, r.header, "org", 60, 60, rem, reset)
		if r.status == http.StatusAccepted {
			remaining = append(remaining, int(rem))
			continue
		}
		// "The same value also appears in X-RateLimit-Reset and the
		// problem body's retry_after."
		ra := intHeader(t, r.header, "Retry-After")
		p := problemOf(t, r)
		if rem != 0 || ra != reset || p["retry_after"] != float64(ra) || ra != 60 {
			t.Fatalf("429: Remaining %d, Retry-After %d, Reset %d, retry_after %v; want 0 and 60 thrice", rem, ra, reset, p["retry_after"])
		}
		if p["type"] != "https://api.sendops.dev/errors/rate_limit" || p["detail"] != "Too many requests for this organization. Retry in 60 seconds." {
			t.Fatalf("problem %v", p)
		}
	}
	slices.Sort(remaining)
	for i, r := range remaining {
		if r != i {
			t.Fatalf("the admitted requests' Remaining %v, want each of 0..59 once", remaining)
		}
	}

	// The live keys of an org share its budget; the test keys' refusals
	// did not use it.
	for i, tok := range []string{"sk_live_1", "sk_live_2", "sk_live_1"} {
		rs := load(t, client, 1, 1, func(int) *http.Request { return send(tok, "10.0.0.1") })
		if rs[0].status != http.StatusAccepted || intHeader(t, rs[0].header, "X-RateLimit-Remaining") != int64(599-i) {
			t.Fatalf("live request %d: %d, Remaining %q", i, rs[0].status, rs[0].header.Get("X-RateLimit-Remaining"))
		}
	}

	// Repeated 401s from one IP trip a block of every request from it,
	// valid keys included; another IP is unaffected. Each 401 carries the
	// failure budget (the seed: headers on every response).
	for i := range 10 {
		rs := load(t, client, 1, 1, func(int) *http.Request { return send("sk_bogus", "10.0.0.66") })
		if rs[0].status != http.StatusUnauthorized || intHeader(t, rs[0].header, "X-RateLimit-Remaining") != int64(9-i) {
			t.Fatalf("bad key %d: %d, Remaining %q", i, rs[0].status, rs[0].header.Get("X-RateLimit-Remaining"))
		}
	}
	rs = load(t, client, 4, 8*10, func(int) *http.Request { return send("sk_live_1", "10.0.0.66") })
	if got := statuses(rs); got[http.StatusTooManyRequests] != 80 {
		t.Fatalf("valid key from a blocked IP: %v, want 80 refusals", got)
	}
	if p := problemOf(t, rs[0]); p["retry_after"] != float64(intHeader(t, rs[0].header, "Retry-After")) {
		t.Fatalf("blocked IP's problem %v", p)
	}
	rs = load(t, client, 1, 1, func(int) *http.Request { return send("sk_live_1", "10.0.0.2") })
	if rs[0].status != http.StatusAccepted || intHeader(t, rs[0].header, "X-RateLimit-Remaining") != 596 {
		t.Fatalf("valid key from another IP: %d, Remaining %q (the blocked IP's requests must not count)", rs[0].status, rs[0].header.Get("X-RateLimit-Remaining"))
	}

	// A limit changed at runtime applies to the next request: the org is
	// raised to 1000, and the 4 it used stay counted.
	if err := orgs.Get("acme").Reconfigure(slidingwindow.Config{Name: "org", Limit: 1000, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	rs = load(t, client, 1, 1, func(int) *http.Request { return send("sk_live_2", "10.0.0.2") })
	if intHeader(t, rs[0].header, "X-RateLimit-Limit") != 1000 || intHeader(t, rs[0].header, "X-RateLimit-Remaining") != 995 {
		t.Fatalf("after Reconfigure: Limit %q Remaining %q, want 1000 and 995", rs[0].header.Get("X-RateLimit-Limit"), rs[0].header.Get("X-RateLimit-Remaining"))
	}
	// Lowered below what is used, the next request is refused at once.
	if err := orgs.Get("acme").Reconfigure(slidingwindow.Config{Name: "org", Limit: 5, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	rs = load(t, client, 1, 1, func(int) *http.Request { return send("sk_live_2", "10.0.0.2") })
	if rs[0].status != http.StatusTooManyRequests || intHeader(t, rs[0].header, "X-RateLimit-Limit") != 5 {
		t.Fatalf("after lowering to 5 with 5 used: %d, Limit %q", rs[0].status, rs[0].header.Get("X-RateLimit-Limit"))
	}

	// A minute later the window has slid past it all.
	clk.Add(time.Minute)
	rs = load(t, client, 1, 1, func(int) *http.Request { return send("sk_test_1", "10.0.0.66") })
	if rs[0].status != http.StatusAccepted || intHeader(t, rs[0].header, "X-RateLimit-Remaining") != 59 {
		t.Fatalf("a minute later: %d, Remaining %q", rs[0].status, rs[0].header.Get("X-RateLimit-Remaining"))
	}
}

// checkIETF parses RateLimit-Policy and RateLimit with the independent
// parser and checks the item of policy name: quota q per w seconds, r
// remaining, t seconds to reset, and that it is the only item.
func checkIETF(t *testing.T, h http.Header, name string, q, w, r, reset int64) {
	t.Helper()
	pol, err := parseSFList(h.Values("RateLimit-Policy"))
	if err != nil || len(pol) != 1 {
		t.Fatalf("RateLimit-Policy %q: %v, %d items", h.Values("RateLimit-Policy"), err, len(pol))
	}
	rl, err := parseSFList(h.Values("RateLimit"))
	if err != nil || len(rl) != 1 {
		t.Fatalf("RateLimit %q: %v, %d items", h.Values("RateLimit"), err, len(rl))
	}
	if pol[0].Value != name || rl[0].Value != name {
		t.Fatalf("policy names %v and %v, want the String %q", pol[0].Value, rl[0].Value, name)
	}
	for _, c := range []struct {
		it   sfItem
		key  string
		want int64
	}{{pol[0], "q", q}, {pol[0], "w", w}, {rl[0], "r", r}, {rl[0], "t", reset}} {
		if v, _ := c.it.param(c.key); v != c.want {
			t.Fatalf("%s=%v, want %d (RateLimit-Policy %q, RateLimit %q)", c.key, v, c.want, h.Values("RateLimit-Policy"), h.Values("RateLimit"))
		}
	}
}

// Sentry: X-Sentry-Rate-Limit-Limit, -Remaining and -Reset (a Unix time) on
// every response; a 429 with Retry-After in seconds.
func TestSeedSentry(t *testing.T) {
	clk := mockAt(t0) // 13:01:48: the minute's window ends in 12 s
	orgs := newKeyed(func(string) *fixedwindow.Limiter { return newWindow("org", 40, time.Minute) })
	m := mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "org", Key: httplimit.Bearer, Limiter: httplimit.Per(orgs.Get)}},
		Headers: httplimit.Sentry,
		Clock:   clk,
	})
	srv := httptest.NewServer(m.Wrap(ok))
	defer srv.Close()
	get := func(int) *http.Request {
		return request(t, "GET", srv.URL+"/api/0/organizations/acme/issues/", "Authorization", "Bearer sntrys_1")
	}
	rs := load(t, srv.Client(), 8, 8*40, get)
	if got := statuses(rs); got[200] != 40 || got[429] != 280 {
		t.Fatalf("statuses: %v", got)
	}
	end := t0.Truncate(time.Minute).Add(time.Minute).Unix()
	for _, r := range rs {
		if l, reset := intHeader(t, r.header, "X-Sentry-Rate-Limit-Limit"), intHeader(t, r.header, "X-Sentry-Rate-Limit-Reset"); l != 40 || reset != end {
			t.Fatalf("%d: Limit %d, Reset %d, want 40 and %d", r.status, l, reset, end)
		}
		intHeader(t, r.header, "X-Sentry-Rate-Limit-Remaining")
		if r.status == 429 {
			if ra := intHeader(t, r.header, "Retry-After"); ra != 12 {
				t.Fatalf("Retry-After %d, want 12", ra)
			}
			problemOf(t, r)
		}
	}
	// The seed's own client: sleep Retry-After, retry, succeed.
	clk.Add(12 * time.Second)
	if rs := load(t, srv.Client(), 1, 1, get); rs[0].status != 200 || intHeader(t, rs[0].header, "X-Sentry-Rate-Limit-Remaining") != 39 {
		t.Fatalf("after Retry-After: %d, %v", rs[0].status, rs[0].header)
	}
	// A plan change at runtime, through the keyed store (whose slot holds
	// a fixed window's state): the next request is judged by it.
	if err := orgs.Get("sntrys_1").Reconfigure(fixedwindow.Config{Name: "org", Limit: 100, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	rs = load(t, srv.Client(), 8, 8*100, get)
	if got := statuses(rs); got[200] != 99 {
		t.Fatalf("after raising the limit to 100 with 1 used: %v", got)
	}
	for _, r := range rs {
		if intHeader(t, r.header, "X-Sentry-Rate-Limit-Limit") != 100 {
			t.Fatalf("Limit %q after the change", r.header.Get("X-Sentry-Rate-Limit-Limit"))
		}
	}
}

// Rollbar: a system limit and a user-defined limit per access token, both
// windows that open at the first occurrence, tracked independently; whichever
// is hit first takes effect, and occurrences refused by one count against
// neither. A notice when a limit is first reached, once per window. Changes
// to the user limit (adding, modifying, removing) take effect immediately.
func TestSeedRollbar(t *testing.T) {
	clk := mockAt(t0)
	// Rollbar's example scaled down 500 times: a user limit of 200 per day
	// and a system limit of 11 per minute.
	system := newKeyed(func(string) *rolling.Limiter {
		return must(rolling.New(rolling.Config{Name: "system", Limit: 11, Window: time.Minute}))
	})
	var users sync.Map // token → *rolling.Limiter; absent: no user limit
	users.Store("tok_a", must(rolling.New(rolling.Config{Name: "user", Limit: 200, Window: 24 * time.Hour})))
	var (
		mu      sync.Mutex
		notices []string
	)
	token := httplimit.Header("X-Rollbar-Access-Token")
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "system", Key: token, Limiter: httplimit.Per(system.Get)},
			{Name: "user", Key: token, Limiter: func(k string) ratekit.Limiter {
				if l, ok := users.Load(k); ok {
					return l.(*rolling.Limiter)
				}
				return nil
			}},
		},
		Headers: httplimit.Rollbar,
		Clock:   clk,
		OnLimitReached: func(policy, key string, d ratekit.Decision) {
			mu.Lock()
			notices = append(notices, fmt.Sprintf("%s %s at %s", policy, key, clk.Now().Sub(t0)))
			mu.Unlock()
		},
	})
	srv := httptest.NewServer(m.Wrap(ok))
	defer srv.Close()
	post := func(tok string) func(int) *http.Request {
		return func(int) *http.Request {
			return request(t, "POST", srv.URL+"/api/1/item/", "X-Rollbar-Access-Token", tok)
		}
	}
	admitted := 0
	// 20 minutes at 8 times what the system limit admits, sent at each
	// minute's start (the clock stands still during a burst: it is the count
	// that matters).
	for minute := range 20 {
		rs := load(t, srv.Client(), 8, 8*11, post("tok_a"))
		got := statuses(rs)
		admitted += got[200]
		want := 11
		if minute == 18 {
			want = 200 - 18*11 // 2: then the user limit is hit
		} else if minute == 19 {
			want = 0
		}
		if got[200] != want || got[429] != 8*11-want {
			t.Fatalf("minute %d: %v, want %d admitted", minute, got, want)
		}
		for _, r := range rs {
			for _, h := range []string{"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset", "X-Rate-Limit-Remaining-Seconds"} {
				intHeader(t, r.header, h)
			}
			if r.status == 429 {
				intHeader(t, r.header, "Retry-After")
				problemOf(t, r)
			}
		}
		clk.Add(time.Minute)
	}
	if admitted != 200 {
		t.Fatalf("admitted %d in 20 minutes, want the user limit's 200", admitted)
	}
	// Refused occurrences counted against neither: the system window of
	// minute 19 holds nothing, the user's exactly 200.
	if d := system.Get("tok_a").Peek(clk.Now(), 0); d.Remaining != 11 {
		t.Errorf("system window after minute 19: %d remaining, want 11 (refused occurrences counted)", d.Remaining)
	}
	ul, _ := users.Load("tok_a")
	if d := ul.(*rolling.Limiter).Peek(clk.Now(), 0); d.Remaining != 0 || d.Limit != 200 {
		t.Errorf("user window: %+v", d)
	}
	// One notice per window that reached its limit: 18 system windows,
	// then the user's day (minute 18: the user limit refused first; minute
	// 19 is the same user window, no second notice).
	mu.Lock()
	got := len(notices)
	var user []string
	for _, n := range notices {
		if strings.HasPrefix(n, "user ") {
			user = append(user, n)
		}
	}
	mu.Unlock()
	if got != 19 || len(user) != 1 || user[0] != "user tok_a at 18m0s" {
		t.Errorf("notices: %d, user ones %q; want 18 system and one user at 18m", got, user)
	}

	// Modifying the user limit takes effect at once: raised to 220, the
	// next 11 (the system limit's) go through.
	if err := ul.(*rolling.Limiter).Reconfigure(rolling.Config{Name: "user", Limit: 220, Window: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := statuses(load(t, srv.Client(), 4, 80, post("tok_a"))); got[200] != 11 {
		t.Fatalf("after raising the user limit: %v, want 11 admitted", got)
	}
	// Removing it: only the system limit applies, from the next request.
	clk.Add(time.Minute)
	users.Delete("tok_a")
	rs := load(t, srv.Client(), 4, 80, post("tok_a"))
	if got := statuses(rs); got[200] != 11 {
		t.Fatalf("after removing the user limit: %v, want 11 admitted", got)
	}
	// Adding one to a token that had none: a user limit of 3 per minute.
	clk.Add(time.Minute)
	users.Store("tok_a", must(rolling.New(rolling.Config{Name: "user", Limit: 3, Window: time.Minute})))
	rs = load(t, srv.Client(), 4, 80, post("tok_a"))
	if got := statuses(rs); got[200] != 3 {
		t.Fatalf("after adding a user limit of 3: %v", got)
	}
	for _, r := range rs {
		if r.status == 429 && intHeader(t, r.header, "X-Rate-Limit-Limit") != 3 {
			t.Fatalf("refusal by the new user limit reports Limit %q", r.header.Get("X-Rate-Limit-Limit"))
		}
	}
}

// Sender: 60 per minute per account, shared by its tokens; X-RateLimit-*
// with Reset as an RFC 3339 time on every successful and error response.
func TestSeedSender(t *testing.T) {
	clk := mockAt(t0)
	accounts := newKeyed(func(string) *fixedwindow.Limiter { return newWindow("account", 60, time.Minute) })
	acct := map[string]string{"tok_1": "acct_42", "tok_2": "acct_42"}
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "account", Missing: httplimit.MissingReject, Limiter: httplimit.Per(accounts.Get),
			Key: func(r *http.Request) (string, bool) {
				tok, _ := httplimit.Bearer(r)
				a, ok := acct[tok]
				return a, ok
			}}},
		Headers: httplimit.XRateLimitRFC3339,
		Clock:   clk,
	})
	// The handler answers by path: the API's error responses.
	srv := httptest.NewServer(m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/v2/status/"))
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
	})))
	defer srv.Close()
	codes := []int{200, 400, 401, 422, 500, 503}
	rs := load(t, srv.Client(), 8, 8*60, func(i int) *http.Request {
		return request(t, "GET", fmt.Sprintf("%s/v2/status/%d", srv.URL, codes[i%len(codes)]), "Authorization", "Bearer tok_"+strconv.Itoa(1+i%2))
	})
	n429 := 0
	reset := t0.Truncate(time.Minute).Add(time.Minute).Format(time.RFC3339)
	for _, r := range rs {
		if r.status == 429 {
			n429++
			if intHeader(t, r.header, "Retry-After") != 12 {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}
		if r.header.Get("X-RateLimit-Limit") != "60" || r.header.Get("X-RateLimit-Reset") != reset {
			t.Fatalf("%d: Limit %q Reset %q, want 60 and %s", r.status, r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Reset"), reset)
		}
		intHeader(t, r.header, "X-RateLimit-Remaining")
	}
	if n429 != 420 {
		t.Fatalf("%d refusals, want 420 (the account's 60 shared by both tokens)", n429)
	}
}

// Sanity: per client IP 25 mutations a second; per dataset a ceiling of
// concurrent mutations (100 in the docs, 10 here), units held while the
// mutation runs; Sanity's x-ratelimit-limit-<policy>,
// x-ratelimit-remaining-<policy>, ratelimit-reset and retry-after.
func TestSeedSanity(t *testing.T) {
	clk := mockAt(t0)
	ips := newKeyed(func(string) *slidingwindow.Log {
		return mustLog(slidingwindow.Config{Name: "ip", Limit: 25, Window: time.Second})
	})
	datasets := newKeyed(func(string) *concurrency.Limiter {
		return must(concurrency.New(concurrency.Config{Name: "dataset", Limit: 10}))
	})
	var (
		entered = make(chan struct{}, 100)
		release = make(chan struct{})
	)
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "ip", Key: proxied(t), Limiter: httplimit.Per(ips.Get)},
			{Name: "dataset", Key: func(r *http.Request) (string, bool) { return r.PathValue("ds"), true }, Limiter: httplimit.Per(datasets.Get)},
		},
		Headers: httplimit.Sanity,
		Clock:   clk,
	})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/data/mutate/{ds}", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-release
		}
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mutate := func(ip string, hold bool) *http.Request {
		r := request(t, "POST", srv.URL+"/v1/data/mutate/production", "X-Forwarded-For", ip)
		if hold {
			r.Header.Set("X-Hold", "1")
		}
		return r
	}

	// 8x the per-IP limit from one address.
	rs := load(t, srv.Client(), 8, 8*25, func(int) *http.Request { return mutate("10.1.0.1", false) })
	if got := statuses(rs); got[200] != 25 || got[429] != 175 {
		t.Fatalf("per IP at 8x: %v", got)
	}
	for _, r := range rs {
		if intHeader(t, r.header, "X-RateLimit-Limit-Ip") != 25 || intHeader(t, r.header, "X-RateLimit-Limit-Dataset") != 10 {
			t.Fatalf("%d: %v", r.status, r.header)
		}
		intHeader(t, r.header, "X-RateLimit-Remaining-Ip")
		intHeader(t, r.header, "X-RateLimit-Remaining-Dataset")
		intHeader(t, r.header, "RateLimit-Reset")
		if r.status == 429 && intHeader(t, r.header, "Retry-After") != 1 {
			t.Fatalf("Retry-After %q, want 1", r.header.Get("Retry-After"))
		}
	}

	// 8x the dataset's concurrency from 80 addresses, every admitted
	// mutation held: exactly 10 run at once, 70 are refused, and the
	// refused are charged to none of their IPs.
	const n = 80
	type result struct {
		ip string
		r  reply
	}
	results := make(chan result, n)
	for i := range n {
		ip := fmt.Sprintf("10.2.0.%d", i)
		go func() {
			resp, err := srv.Client().Do(mutate(ip, true))
			if err != nil {
				results <- result{ip, reply{status: -1}}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{ip, reply{status: resp.StatusCode, header: resp.Header}}
		}()
	}
	var refused []result
	for in := 0; in+len(refused) < n; {
		select {
		case <-entered:
			in++
			if in > 10 {
				t.Fatalf("%d mutations in flight, the limit is 10", in)
			}
		case r := <-results:
			if r.r.status != 429 {
				t.Fatalf("a mutation that was not held answered %d", r.r.status)
			}
			refused = append(refused, r)
		}
	}
	close(release)
	for range 10 {
		if r := <-results; r.r.status != 200 {
			t.Fatalf("held mutation: %d", r.r.status)
		}
	}
	if len(refused) != 70 {
		t.Fatalf("%d refused", len(refused))
	}
	for _, r := range refused {
		if rem := intHeader(t, r.r.header, "X-RateLimit-Remaining-Dataset"); rem != 0 {
			t.Fatalf("refusal by the dataset reports %d remaining", rem)
		}
		if d := ips.Get(r.ip).Peek(clk.Now(), 0); d.Remaining != 25 {
			t.Fatalf("IP %s of a refused mutation has %d remaining, want 25", r.ip, d.Remaining)
		}
	}
	if d := datasets.Get("production").Peek(clk.Now(), 0); d.Remaining != 10 {
		t.Fatalf("dataset after the mutations: %d free, want 10", d.Remaining)
	}
}

// The IETF fields with partition keys, read by the independent parser: pk is
// a 12-byte Byte Sequence, the same in RateLimit-Policy and RateLimit and
// for every request of a key, different for another key, and never the key.
func TestSeedIETFPartitionKeys(t *testing.T) {
	orgs := newKeyed(func(string) *fixedwindow.Limiter { return newWindow("org", 600, time.Minute) })
	m := mustNew(t, httplimit.Config{
		Tiers:         []httplimit.Tier{{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Per(orgs.Get)}},
		Headers:       httplimit.IETF,
		Clock:         mockAt(t0),
		PartitionKeys: true,
	})
	srv := httptest.NewServer(m.Wrap(ok))
	defer srv.Close()
	pkOf := func(org string) string {
		rs := load(t, srv.Client(), 1, 1, func(int) *http.Request { return request(t, "GET", srv.URL, "X-Org", org) })
		var pks []string
		for _, f := range []string{"RateLimit-Policy", "RateLimit"} {
			items, err := parseSFList(rs[0].header.Values(f))
			if err != nil || len(items) != 1 {
				t.Fatalf("%s %q: %v", f, rs[0].header.Values(f), err)
			}
			pk, _ := items[0].param("pk")
			b, isBytes := pk.([]byte)
			if !isBytes || len(b) != 12 || strings.Contains(string(b), org) {
				t.Fatalf("%s pk %#v, want 12 bytes", f, pk)
			}
			pks = append(pks, string(b))
		}
		if pks[0] != pks[1] {
			t.Fatalf("pk differs between RateLimit-Policy and RateLimit")
		}
		return pks[0]
	}
	a := pkOf("acme")
	if pkOf("acme") != a || pkOf("globex") == a {
		t.Fatal("pk is not one per key")
	}
}

// The mail API's auth ceiling when the handler, not a key lookup, finds the
// key invalid: each 401 it writes carries the failure budget after that
// failure, and the ceiling then blocks the IP, valid keys included.
func TestSeedHandler401(t *testing.T) {
	tokens := newKeyed(func(string) *fixedwindow.Limiter { return newWindow("token", 600, time.Minute) })
	fails := newKeyed(func(string) *slidingwindow.Log {
		return mustLog(slidingwindow.Config{Name: "auth", Limit: 3, Window: time.Minute})
	})
	m := mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Failure: &httplimit.FailureTier{Name: "auth", Key: proxied(t), Limiter: httplimit.Per(fails.Get)},
		Clock:   mockAt(t0),
	})
	srv := httptest.NewServer(m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, _ := httplimit.Bearer(r); tok != "sk_live_1" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})))
	defer srv.Close()
	send := func(tok string) reply {
		return load(t, srv.Client(), 1, 1, func(int) *http.Request {
			return request(t, "GET", srv.URL, "Authorization", "Bearer "+tok, "X-Forwarded-For", "10.9.0.1")
		})[0]
	}
	for i := range 3 {
		r := send("sk_guess_" + strconv.Itoa(i))
		if r.status != 401 || intHeader(t, r.header, "X-RateLimit-Limit") != 3 || intHeader(t, r.header, "X-RateLimit-Remaining") != int64(2-i) {
			t.Fatalf("guess %d: %d, Limit %q Remaining %q; want 401 with the failure budget", i, r.status, r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
		}
	}
	if r := send("sk_live_1"); r.status != 429 || problemOf(t, r)["type"] != httplimit.ProblemAbnormalUsage {
		t.Fatalf("valid key from the blocked IP: %d %s", r.status, r.body)
	}
}
