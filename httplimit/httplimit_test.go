package httplimit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

func TestNewRejectsBadConfig(t *testing.T) {
	lim := httplimit.Shared(newWindow("w", 1, time.Second))
	tier := func(name string) httplimit.Tier { return httplimit.Tier{Name: name, Limiter: lim} }
	for name, cfg := range map[string]httplimit.Config{
		"no tiers":           {},
		"no name":            {Tiers: []httplimit.Tier{tier("")}},
		"bad name":           {Tiers: []httplimit.Tier{tier("per org")}},
		"long name":          {Tiers: []httplimit.Tier{tier(strings.Repeat("a", 65))}},
		"duplicate":          {Tiers: []httplimit.Tier{tier("a"), tier("a")}},
		"no limiter":         {Tiers: []httplimit.Tier{{Name: "a"}}},
		"bad missing":        {Tiers: []httplimit.Tier{{Name: "a", Limiter: lim, Missing: 7}}},
		"bad unit":           {Tiers: []httplimit.Tier{{Name: "a", Limiter: lim, Unit: `x"y`}}},
		"failure dup name":   {Tiers: []httplimit.Tier{tier("a")}, Failure: &httplimit.FailureTier{Name: "a", Key: httplimit.Bearer, Limiter: lim}},
		"failure no key":     {Failure: &httplimit.FailureTier{Name: "f", Limiter: lim}},
		"two x-ratelimit":    {Tiers: []httplimit.Tier{tier("a")}, Headers: httplimit.XRateLimit | httplimit.XRateLimitUnix},
		"noheaders and more": {Tiers: []httplimit.Tier{tier("a")}, Headers: httplimit.NoHeaders | httplimit.IETF},
		"unknown dialect":    {Tiers: []httplimit.Tier{tier("a")}, Headers: 1 << 12},
	} {
		if _, err := httplimit.New(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%s: error %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestAllOrNone checks that a request refused by one tier is charged to
// none, and that an admitted one is charged to all.
func TestAllOrNone(t *testing.T) {
	org := newWindow("org", 10, time.Minute)
	tok := newWindow("token", 2, time.Minute)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "org", Limiter: httplimit.Shared(org)},
			{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(tok)},
		},
		Clock: mockAt(t0),
	}).Wrap(ok)
	var codes []int
	for range 4 {
		codes = append(codes, serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer a")).Code)
	}
	if want := []int{200, 200, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("codes %v, want %v", codes, want)
	}
	if used(org, t0) != 2 || used(tok, t0) != 2 {
		t.Errorf("used org=%d token=%d, want 2 and 2: refusals must charge nothing", used(org, t0), used(tok, t0))
	}
}

// TestCost checks request weights: the cost is taken from every tier, 0 is
// free, and a cost no tier can ever admit gets a distinct 413 answer.
func TestCost(t *testing.T) {
	l := newWindow("batch", 100, time.Minute)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "events", Limiter: httplimit.Shared(l), Unit: "events"}},
		Cost: func(r *http.Request) int {
			var n int
			_, _ = fmt.Sscan(r.URL.Query().Get("n"), &n)
			return n
		},
		Headers: httplimit.XRateLimit | httplimit.IETF,
		Clock:   mockAt(t0),
	}).Wrap(ok)
	get := func(n int) *httptest.ResponseRecorder {
		r := newReq("192.0.2.1:1")
		r.URL.RawQuery = fmt.Sprintf("n=%d", n)
		return serve(h, r)
	}
	// X-RateLimit-* count requests of this one's cost: the 40 events left
	// admit no more request of 60; a request of 0 counts them as they are.
	if w := get(60); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "0" || w.Header().Get("X-RateLimit-Limit") != "1" {
		t.Fatalf("cost 60: %d, limit %q, remaining %q", w.Code, w.Header().Get("X-RateLimit-Limit"), w.Header().Get("X-RateLimit-Remaining"))
	}
	if w := get(0); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "40" {
		t.Fatalf("cost 0: %d, remaining %q", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	w := get(50)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "12" {
		t.Fatalf("cost 50 with 40 left: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	wantHeaders(t, w.Header(), map[string]string{
		"RateLimit-Policy": `"events";q=100;w=60;ratekit-unit="events"`, "RateLimit": `"events";r=40;t=12`,
	})

	// More than the tier admits at once: 413, no Retry-After, its own
	// problem type; nothing taken. No count of such requests means
	// anything: the headers keep the tier's units, as the detail does.
	w = get(101)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("cost 101: status %d, want 413", w.Code)
	}
	wantHeaders(t, w.Header(), map[string]string{"Retry-After": "", "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "40",
		"RateLimit-Policy": `"events";q=100;w=60;ratekit-unit="events"`, "RateLimit": `"events";r=40;t=12`})
	p := decodeProblem(t, w)
	if p["type"] != httplimit.ProblemExceedsLimit || p["status"] != 413.0 || p["retry_after"] != nil ||
		p["detail"] != `The request costs 101 units; policy "events" admits at most 100 at once.` {
		t.Errorf("problem %v", p)
	}
	if w := get(-1); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("cost -1: status %d, want 413", w.Code)
	}
	if used(l, t0) != 60 {
		t.Errorf("used %d, want 60", used(l, t0))
	}
}

// TestMissingKey checks the three behaviours of a tier whose key is absent:
// skip it, fall back to another key, or reject with 401.
func TestMissingKey(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	t.Run("Skip", func(t *testing.T) {
		tokens := newKeyed(func(string) *window { return newWindow("token", 1, time.Minute) })
		h := mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
			Clock: mockAt(t0),
		}).Wrap(ok)
		for range 3 {
			if w := serve(h, newReq("192.0.2.1:1")); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
				t.Fatalf("anonymous request: %d, headers %v", w.Code, w.Header())
			}
		}
		if len(keysOf(tokens)) != 0 {
			t.Errorf("keys %q, want none", keysOf(tokens))
		}
	})
	t.Run("Fallback", func(t *testing.T) {
		tokens := newKeyed(func(string) *window { return newWindow("token", 1, time.Minute) })
		h := mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Fallback: ipKey, Limiter: httplimit.Per(tokens.Get)}},
			Clock: mockAt(t0),
		}).Wrap(ok)
		if w := serve(h, newReq("192.0.2.1:1")); w.Code != 200 {
			t.Fatalf("first anonymous request: %d", w.Code)
		}
		if w := serve(h, newReq("192.0.2.1:2")); w.Code != 429 {
			t.Fatalf("second anonymous request from the same IP: %d, want 429", w.Code)
		}
		// A client naming the address as its token does not share (or
		// exhaust) that address's fallback limit.
		if w := serve(h, newReq("203.0.113.5:1", "Authorization", "Bearer 192.0.2.1")); w.Code != 200 {
			t.Fatalf("token equal to an address: %d, want 200", w.Code)
		}
		keys := keysOf(tokens)
		if want := []string{"\x00192.0.2.1", "192.0.2.1"}; !slices.Equal(keys, want) {
			t.Errorf("keys %q, want %q", keys, want)
		}
	})
	t.Run("Reject", func(t *testing.T) {
		fails := newKeyed(func(string) *window { return newWindow("auth", 2, time.Minute) })
		called := false
		h := mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Missing: httplimit.MissingReject,
				Limiter: httplimit.Shared(newWindow("token", 10, time.Minute))}},
			Failure: &httplimit.FailureTier{Name: "auth", Key: ipKey, Limiter: httplimit.Per(fails.Get)},
			Clock:   mockAt(t0),
		}).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
		w := serve(h, newReq("192.0.2.1:1"))
		if w.Code != http.StatusUnauthorized || called {
			t.Fatalf("status %d (handler called: %v), want 401 without the handler", w.Code, called)
		}
		wantHeaders(t, w.Header(), map[string]string{"WWW-Authenticate": "Bearer", "Retry-After": "",
			"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1"})
		if p := decodeProblem(t, w); p["type"] != httplimit.ProblemMissingKey || p["status"] != 401.0 {
			t.Errorf("problem %v", p)
		}
		// The 401s count as failures of the IP: the third request is
		// refused by the failure tier even with a key.
		serve(h, newReq("192.0.2.1:1"))
		if w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer good")); w.Code != http.StatusTooManyRequests || called {
			t.Errorf("after two 401s: status %d, want 429", w.Code)
		}
	})
}

// TestFailureTier follows the mail API's auth-failure limit: a client that
// keeps sending a bad key trips an IP block that refuses even its valid
// keys, while valid keys from other addresses carry on.
func TestFailureTier(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	fails := newKeyed(func(string) *window { return newWindow("auth-failures", 3, time.Minute) })
	tok := newWindow("token", 100, time.Minute)
	var reached []string
	clk := mockAt(t0)
	h := mustNew(t, httplimit.Config{
		Tiers:          []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(tok)}},
		Failure:        &httplimit.FailureTier{Name: "auth-failures", Key: ipKey, Limiter: httplimit.Per(fails.Get)},
		Headers:        httplimit.XRateLimit | httplimit.IETF,
		Clock:          clk,
		OnLimitReached: func(policy, key string, _ ratekit.Decision) { reached = append(reached, policy+" "+key) },
	}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, _ := httplimit.Bearer(r); k != "good" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	const bad, good = "198.51.100.66:1", "203.0.113.5:1"
	for i := range 3 {
		if w := serve(h, newReq(bad, "Authorization", "Bearer wrong")); w.Code != 401 {
			t.Fatalf("bad key %d: %d, want 401 from the handler", i, w.Code)
		}
	}
	if w := serve(h, newReq(good, "Authorization", "Bearer good")); w.Code != 200 {
		t.Fatalf("valid key elsewhere: %d", w.Code)
	}
	before := used(tok, t0)
	w := serve(h, newReq(bad, "Authorization", "Bearer good"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("valid key from the blocked IP: %d, want 429", w.Code)
	}
	wantHeaders(t, w.Header(), map[string]string{
		"Retry-After": "12", "X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12",
		"RateLimit-Policy": `"token";q=100;w=60, "auth-failures";q=3;w=60`,
		"RateLimit":        `"token";r=96;t=12, "auth-failures";r=0;t=12`,
	})
	p := decodeProblem(t, w)
	if p["detail"] != "Too many failed requests from this client. Retry in 12 seconds." ||
		!equalJSON(p["violated-policies"], []any{"auth-failures"}) {
		t.Errorf("problem %v", p)
	}
	if used(tok, t0) != before {
		t.Errorf("a request refused by the failure tier was charged to the token tier")
	}
	serve(h, newReq(bad, "Authorization", "Bearer good"))
	if want := []string{"auth-failures 198.51.100.66"}; !slices.Equal(reached, want) {
		t.Errorf("OnLimitReached calls %q, want %q", reached, want)
	}
	if w := serve(h, newReq(good, "Authorization", "Bearer good")); w.Code != 200 {
		t.Errorf("valid key elsewhere after the block: %d", w.Code)
	}
	// The next minute the IP is free again.
	clk.Add(12 * time.Second)
	if w := serve(h, newReq(bad, "Authorization", "Bearer good")); w.Code != 200 {
		t.Errorf("after the window: %d, want 200", w.Code)
	}
}

// TestPanicReleases checks that a panicking handler gives its concurrency
// units back, is not counted as a failure, and that the panic reaches the
// caller (net/http's server recovers it).
func TestPanicReleases(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	conc := newConc(t, 1)
	fails := newWindow("fail", 1, time.Minute)
	m := mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "conc", Limiter: httplimit.Shared(conc)}},
		Failure: &httplimit.FailureTier{Name: "fail", Key: ipKey, Limiter: httplimit.Shared(fails), Counts: func(int) bool { return true }},
		Refund:  func(int) bool { return true },
		Clock:   mockAt(t0),
	})
	boom := errors.New("boom")
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		panic(boom)
	}))
	func() {
		defer func() {
			if v := recover(); v != boom {
				t.Errorf("recovered %v, want the handler's panic", v)
			}
		}()
		serve(h, newReq("192.0.2.1:1"))
		t.Error("no panic")
	}()
	if conc.Held() != 0 {
		t.Errorf("held %d after a panic, want 0", conc.Held())
	}
	if used(fails, t0) != 0 {
		t.Errorf("a panicking handler was counted as a failure")
	}

	// Through a real server, which recovers the panic and drops the
	// connection; the unit must be free for the next request.
	srv := httptest.NewUnstartedServer(m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler) // aborts without a log line
		}
	})))
	srv.Start()
	defer srv.Close()
	if _, err := http.Get(srv.URL + "/panic"); err == nil {
		t.Error("a panicking handler's response arrived")
	}
	resp, err := http.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || conc.Held() != 0 {
		t.Errorf("after a panic: status %d, held %d", resp.StatusCode, conc.Held())
	}
}

// TestCancelledRequest checks that a request whose client goes away while
// the handler runs gives its concurrency unit back when the handler returns.
func TestCancelledRequest(t *testing.T) {
	conc := newConc(t, 1)
	entered := make(chan struct{})
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "conc", Limiter: httplimit.Shared(conc)}},
		Clock: mockAt(t0),
	}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-r.Context().Done()
			return
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		r := newReq("192.0.2.1:1").WithContext(ctx)
		r.URL.Path = "/slow"
		done <- serve(h, r).Code
	}()
	<-entered
	if w := serve(h, newReq("192.0.2.1:2")); w.Code != http.StatusTooManyRequests {
		t.Errorf("second request while the first holds the unit: %d, want 429", w.Code)
	}
	cancel()
	<-done
	if conc.Held() != 0 {
		t.Fatalf("held %d after the cancelled request returned", conc.Held())
	}
	if w := serve(h, newReq("192.0.2.1:2")); w.Code != 200 {
		t.Errorf("after the cancelled request: %d, want 200", w.Code)
	}
}

// TestShadow checks that shadow mode refuses nothing, charges exactly what
// enforcement would, and still reports the would-be refusals.
func TestShadow(t *testing.T) {
	l := newWindow("org", 2, time.Minute)
	var denied, reached atomic.Int32
	h := mustNew(t, httplimit.Config{
		Tiers:  []httplimit.Tier{{Name: "org", Limiter: httplimit.Shared(l)}},
		Shadow: true,
		Clock:  mockAt(t0),
		OnDecision: func(_ *http.Request, d ratekit.Decision, _ []httplimit.TierDecision) {
			if !d.Allowed {
				denied.Add(1)
			}
		},
		OnLimitReached: func(string, string, ratekit.Decision) { reached.Add(1) },
	}).Wrap(ok)
	for i := range 4 {
		w := serve(h, newReq("192.0.2.1:1"))
		if w.Code != 200 || w.Body.String() != "ok" {
			t.Fatalf("request %d: %d %q, want the handler's answer", i, w.Code, w.Body)
		}
		if i >= 2 {
			wantHeaders(t, w.Header(), map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12", "Retry-After": ""})
		}
	}
	if denied.Load() != 2 || reached.Load() != 1 || used(l, t0) != 2 {
		t.Errorf("would-be refusals %d (want 2), limit reached %d (want 1), used %d (want 2)", denied.Load(), reached.Load(), used(l, t0))
	}
}

// TestOnDecision checks the hook's arguments: the binding decision and one
// entry per tier.
func TestOnDecision(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	org := newWindow("org", 600, time.Minute)
	ip := newWindow("ip", 25, time.Second)
	var got []string
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Shared(org)},
			{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(newWindow("t", 5, time.Minute))},
			{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(ip)},
		},
		Clock: mockAt(t0),
		OnDecision: func(r *http.Request, d ratekit.Decision, tiers []httplimit.TierDecision) {
			got = append(got, fmt.Sprintf("binding %s remaining=%d", d.Policy, d.Remaining))
			for _, td := range tiers {
				got = append(got, fmt.Sprintf("%s key=%q applied=%v missing=%v remaining=%d", td.Tier, td.Key, td.Applied, td.Missing, td.Decision.Remaining))
			}
		},
	}).Wrap(ok)
	serve(h, newReq("192.0.2.1:1", "X-Org", "acme"))
	want := []string{
		"binding ip remaining=24",
		`org key="acme" applied=true missing=false remaining=599`,
		`token key="" applied=false missing=true remaining=0`,
		`ip key="192.0.2.1" applied=true missing=false remaining=24`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("OnDecision saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestOnLimitReached checks the deduplication: one notice per tier and key
// per episode, a new one once the key is back at full capacity, none for
// requests that can never be admitted.
func TestOnLimitReached(t *testing.T) {
	tokens := newKeyed(func(string) *window { return newWindow("token", 1, time.Minute) })
	var mu sync.Mutex
	var got []string
	clk := mockAt(t0)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Cost: func(r *http.Request) int {
			if r.URL.Path == "/big" {
				return 5
			}
			return 1
		},
		Clock: clk,
		OnLimitReached: func(policy, key string, d ratekit.Decision) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %s retry=%v", policy, key, d.RetryAfter))
		},
	}).Wrap(ok)
	get := func(tok, path string) {
		r := newReq("192.0.2.1:1", "Authorization", "Bearer "+tok)
		r.URL.Path = path
		serve(h, r)
	}
	for range 3 {
		get("a", "/")
		get("b", "/")
	}
	get("c", "/big") // can never fit: not a limit being reached
	clk.Add(20 * time.Second)
	get("a", "/") // the next minute: admitted
	get("a", "/") // refused again: a new episode
	want := []string{"token a retry=12s", "token b retry=12s", "token a retry=52s"}
	if !slices.Equal(got, want) {
		t.Errorf("OnLimitReached calls %q, want %q", got, want)
	}
}

// TestRefund checks Config.Refund: units of requests answered with a status
// it accepts are given back.
func TestRefund(t *testing.T) {
	l := newWindow("org", 10, time.Minute)
	m := mustNew(t, httplimit.Config{
		Tiers:  []httplimit.Tier{{Name: "org", Limiter: httplimit.Shared(l)}},
		Refund: func(code int) bool { return code >= 500 },
		Clock:  mockAt(t0),
	})
	serve(m.Wrap(status(http.StatusServiceUnavailable)), newReq("192.0.2.1:1"))
	serve(m.Wrap(status(http.StatusCreated)), newReq("192.0.2.1:1"))
	if used(l, t0) != 1 {
		t.Errorf("used %d, want 1: the 503 is refunded, the 201 is not", used(l, t0))
	}
}

// TestClockReadOnce checks that the middleware reads the clock once per
// request, whatever it has to do.
func TestClockReadOnce(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	clk := &countingClock{Mock: mockAt(t0)}
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "org", Limiter: httplimit.Shared(newWindow("org", 1, time.Minute))},
			{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(newWindow("ip", 5, time.Second))},
		},
		Failure:        &httplimit.FailureTier{Name: "fail", Key: ipKey, Limiter: httplimit.Shared(newWindow("f", 5, time.Minute))},
		Headers:        httplimit.IETF | httplimit.XRateLimitRFC3339 | httplimit.Sentry,
		Clock:          clk,
		OnLimitReached: func(string, string, ratekit.Decision) {},
	}).Wrap(status(401))
	clk.n.Store(0)                  // New may read it once, for an epoch
	serve(h, newReq("192.0.2.1:1")) // admitted, a failure
	serve(h, newReq("192.0.2.1:1")) // refused
	if n := clk.n.Load(); n != 2 {
		t.Errorf("%d clock readings for 2 requests, want 2", n)
	}
}

type countingClock struct {
	*clock.Mock
	n atomic.Int32
}

func (c *countingClock) Now() time.Time {
	c.n.Add(1)
	return c.Mock.Now()
}

// TestRecorderPassesThrough checks that wrapping the ResponseWriter (done
// for the failure tier) keeps Flush and http.ResponseController working.
func TestRecorderPassesThrough(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	h := mustNew(t, httplimit.Config{
		Failure: &httplimit.FailureTier{Name: "fail", Key: ipKey, Limiter: httplimit.Shared(newWindow("f", 5, time.Minute))},
		Clock:   mockAt(t0),
	}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			t.Errorf("ResponseController: %v", err)
		}
		_, _ = io.WriteString(w, "part")
		w.(http.Flusher).Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "part" {
		t.Errorf("body %q", body)
	}
}

// TestConcurrentRequests runs many requests at once through three tiers
// (with -race): the tiers together admit exactly what the tightest allows,
// and every concurrency unit comes back.
func TestConcurrentRequests(t *testing.T) {
	org := newWindow("org", 50, time.Minute)
	conc := newConc(t, 8)
	tok := newWindow("token", 1000, time.Minute)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "conc", Limiter: httplimit.Shared(conc)},
			{Name: "org", Limiter: httplimit.Shared(org)},
			{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(tok)},
		},
		Headers: httplimit.IETF | httplimit.XRateLimit,
		Clock:   mockAt(t0),
	}).Wrap(ok)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer a")).Code == 200 {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 50 || used(org, t0) != 50 || used(tok, t0) != 50 || conc.Held() != 0 {
		t.Errorf("admitted %d, org %d, token %d, held %d; want 50, 50, 50, 0",
			admitted.Load(), used(org, t0), used(tok, t0), conc.Held())
	}
}

// TestFailureChargedToCurrentLimiter checks that a failure is charged to
// the limiter its key has when the response is known, even if the one found
// when the request arrived was dropped from the store meanwhile.
func TestFailureChargedToCurrentLimiter(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	fails := newKeyed(func(string) *window { return newWindow("auth", 5, time.Minute) })
	h := mustNew(t, httplimit.Config{
		Failure: &httplimit.FailureTier{Name: "auth", Key: ipKey, Limiter: httplimit.Per(fails.Get)},
		Clock:   mockAt(t0),
	}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fails.Delete("192.0.2.1") // swept or evicted while the handler ran
		w.WriteHeader(http.StatusUnauthorized)
	}))
	serve(h, newReq("192.0.2.1:1"))
	if got := used(fails.Get("192.0.2.1"), t0); got != 1 {
		t.Errorf("the key's limiter has %d failures, want 1", got)
	}
}
