package httplimit_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// counting wraps a limiter and counts the calls the middleware makes.
type counting struct {
	l                     ratekit.Limiter
	takes, peeks, refunds int
}

func (c *counting) Take(now time.Time, n int) ratekit.Decision { c.takes++; return c.l.Take(now, n) }
func (c *counting) Peek(now time.Time, n int) ratekit.Decision { c.peeks++; return c.l.Peek(now, n) }
func (c *counting) Refund(at time.Time, n int)                 { c.refunds++; c.l.Refund(at, n) }

// TestOnePassPerRequest checks item 1 of #18: a request refused by tier 2
// of 3 costs a Take of tiers 1 and 2, tier 1's rollback and a Peek of tier
// 3, and no more (before: 7 limiter calls); an admitted one costs a Take
// per tier, with the per-policy IETF dialect too.
func TestOnePassPerRequest(t *testing.T) {
	for _, headers := range []httplimit.Dialect{httplimit.XRateLimit, httplimit.XRateLimit | httplimit.IETF} {
		org := &counting{l: newWindow("org", 100, time.Minute)}
		tok := &counting{l: newWindow("token", 1, time.Minute)}
		ip := &counting{l: newWindow("ip", 100, time.Minute)}
		h := mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{
				{Name: "org", Limiter: httplimit.Shared(org)},
				{Name: "token", Limiter: httplimit.Shared(tok)},
				{Name: "ip", Limiter: httplimit.Shared(ip)},
			},
			Headers: headers,
			Clock:   mockAt(t0),
		}).Wrap(ok)
		serve(h, newReq("192.0.2.1:1"))
		if got := [...]int{org.takes, org.peeks, tok.takes, tok.peeks, ip.takes, ip.peeks}; got != [6]int{1, 0, 1, 0, 1, 0} {
			t.Errorf("dialect %v, admitted: calls (take, peek) org, token, ip = %v, want a Take each", headers, got)
		}
		*org, *tok, *ip = counting{l: org.l}, counting{l: tok.l}, counting{l: ip.l}
		w := serve(h, newReq("192.0.2.1:1"))
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("second request: %d", w.Code)
		}
		// Per-policy dialects report what remains in every tier: a Peek of
		// 0 for the tiers that did not refuse (org after its rollback, ip
		// whose verdict was a Peek of the cost).
		calls := [...]int{org.takes, org.refunds, org.peeks, tok.takes, tok.peeks, tok.refunds, ip.takes, ip.peeks, ip.refunds}
		want := [...]int{1, 1, 0, 1, 0, 0, 0, 1, 0}
		if headers&httplimit.IETF != 0 {
			want[2], want[7] = 1, 2
		}
		if calls != want {
			t.Errorf("dialect %v, refused: calls (org take, refund, peek; token take, peek, refund; ip take, peek, refund) = %v, want %v", headers, calls, want)
		}
	}
}

// TestTierCost checks item 3 of #18: a bytes tier and a request tier on
// one route, each charged its own cost, all or none.
func TestTierCost(t *testing.T) {
	bytes := newWindow("upload", 1000, time.Minute)
	reqs := newWindow("requests", 3, time.Minute)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "upload", Limiter: httplimit.Shared(bytes), Unit: "content-bytes",
				Cost: func(r *http.Request) int { return int(r.ContentLength) }},
			{Name: "requests", Limiter: httplimit.Shared(reqs)},
		},
		Headers: httplimit.IETF,
		Clock:   mockAt(t0),
	}).Wrap(ok)
	upload := func(size int) *http.Response {
		r := newReq("192.0.2.1:1")
		r.ContentLength = int64(size)
		return serve(h, r).Result()
	}
	if w := upload(600); w.StatusCode != 200 ||
		w.Header.Get("RateLimit") != `"upload";r=400;t=12, "requests";r=2;t=12` ||
		w.Header.Get("RateLimit-Policy") != `"upload";q=1000;qu="content-bytes";w=60, "requests";q=3;w=60` {
		t.Fatalf("600 bytes: %d %q %q", w.StatusCode, w.Header.Get("RateLimit"), w.Header.Get("RateLimit-Policy"))
	}
	if w := upload(500); w.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("500 bytes with 400 left: %d, want 429", w.StatusCode)
	}
	if used(bytes, t0) != 600 || used(reqs, t0) != 1 {
		t.Errorf("used %d bytes and %d requests, want 600 and 1: a refusal charges neither", used(bytes, t0), used(reqs, t0))
	}
	if w := upload(2000); w.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2000 bytes: %d, want 413", w.StatusCode)
	}
	upload(0)
	upload(0)
	if w := upload(0); w.StatusCode != http.StatusTooManyRequests || used(bytes, t0) != 600 {
		t.Errorf("fourth request: %d (want 429, the request tier), bytes used %d", w.StatusCode, used(bytes, t0))
	}
}

// TestChainedMiddlewares checks item 4 of #18: a global and a per-route
// middleware act as one.
func TestChainedMiddlewares(t *testing.T) {
	global := newWindow("global", 100, time.Minute)
	route := newWindow("route", 2, time.Minute)
	outer := mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "global", Limiter: httplimit.Shared(global)}},
		Headers: httplimit.XRateLimit | httplimit.IETF,
		Clock:   mockAt(t0),
	})
	inner := mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "route", Limiter: httplimit.Shared(route)}},
		Headers: httplimit.XRateLimit | httplimit.IETF,
		Clock:   mockAt(t0),
	})
	h := outer.Wrap(inner.Wrap(ok))
	w := serve(h, newReq("192.0.2.1:1"))
	if w.Code != 200 {
		t.Fatalf("first request: %d", w.Code)
	}
	if got := w.Header().Values("RateLimit-Policy"); strings.Join(got, ", ") != `"global";q=100;w=60, "route";q=2;w=60` {
		t.Errorf("RateLimit-Policy %q: want the outer's item, then the inner's", got)
	}
	if got := w.Header().Values("RateLimit"); strings.Join(got, ", ") != `"global";r=99;t=12, "route";r=1;t=12` {
		t.Errorf("RateLimit %q", got)
	}
	wantHeaders(t, w.Header(), map[string]string{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1"})

	// With the binding policy outside, the single-policy headers say so.
	w = serve(outer.Wrap(mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "roomy", Limiter: httplimit.Shared(newWindow("roomy", 1000, time.Minute))}},
		Clock: mockAt(t0),
	}).Wrap(ok)), newReq("192.0.2.1:1"))
	wantHeaders(t, w.Header(), map[string]string{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "98"})

	serve(h, newReq("192.0.2.1:1"))
	before := used(global, t0)
	w = serve(h, newReq("192.0.2.1:1"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want the inner's 429", w.Code)
	}
	if used(global, t0) != before {
		t.Errorf("global used %d, want %d: a request the inner refuses is charged to no outer tier", used(global, t0), before)
	}
	if p := decodeProblem(t, w); !equalJSON(p["violated-policies"], []any{"route"}) {
		t.Errorf("problem %v", p)
	}
}

// TestFailureBudgetOn401 checks item 5 of #18: a 401, from the handler or
// for a missing key, carries the FailureTier's budget.
func TestFailureBudgetOn401(t *testing.T) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	fails := newWindow("auth", 5, time.Minute)
	h := mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Missing: httplimit.MissingReject, Limiter: httplimit.Shared(newWindow("token", 100, time.Minute))}},
		Failure: &httplimit.FailureTier{Name: "auth", Key: ipKey, Limiter: httplimit.Shared(fails)},
		Headers: httplimit.XRateLimit | httplimit.IETF,
		Clock:   mockAt(t0),
	}).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, _ := httplimit.Bearer(r); k != "good" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer bad"))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", w.Code)
	}
	wantHeaders(t, w.Header(), map[string]string{
		"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "12",
		"RateLimit":        `"token";r=99;t=12, "auth";r=4;t=12`,
		"RateLimit-Policy": `"token";q=100;w=60, "auth";q=5;w=60`,
	})
	w = serve(h, newReq("192.0.2.1:1"))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no key: %d", w.Code)
	}
	wantHeaders(t, w.Header(), map[string]string{"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "3"})
	if w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer good")); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "100" {
		t.Errorf("good key: %d, limit %q: a success reports the tiers", w.Code, w.Header().Get("X-RateLimit-Limit"))
	}
}

// TestPartitionKeys checks the opt-in pk parameter: a Byte Sequence that
// tells keys apart, the same for the same key, never the key itself.
func TestPartitionKeys(t *testing.T) {
	tokens := newKeyed(func(string) *window { return newWindow("token", 10, time.Minute) })
	h := mustNew(t, httplimit.Config{
		Tiers:              []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Headers:            httplimit.IETF,
		PartitionKeys:      true,
		PartitionKeySecret: []byte("0123456789abcdef"),
		Clock:              mockAt(t0),
	}).Wrap(ok)
	pk := regexp.MustCompile(`;pk=:([A-Za-z0-9+/=]+):`)
	get := func(tok string) string {
		w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer "+tok))
		v := w.Header().Get("RateLimit")
		m := pk.FindStringSubmatch(v)
		if m == nil || strings.Contains(v, tok) || !strings.Contains(w.Header().Get("RateLimit-Policy"), m[0]) {
			t.Fatalf("RateLimit %q, RateLimit-Policy %q: want a pk on both, without the key", v, w.Header().Get("RateLimit-Policy"))
		}
		return m[1]
	}
	a1, b, a2 := get("sk_live_a"), get("sk_live_b"), get("sk_live_a")
	if a1 != a2 || a1 == b {
		t.Errorf("pk a=%q, b=%q, a again=%q: want one per key", a1, b, a2)
	}
	if _, err := httplimit.New(httplimit.Config{Tiers: []httplimit.Tier{{Name: "t", Limiter: httplimit.Shared(newWindow("t", 1, time.Minute))}},
		PartitionKeys: true, PartitionKeySecret: []byte("short")}); err == nil {
		t.Error("a 5-byte PartitionKeySecret was accepted")
	}
	// Off by default.
	w := serve(mustNew(t, httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Headers: httplimit.IETF, Clock: mockAt(t0),
	}).Wrap(ok), newReq("192.0.2.1:1", "Authorization", "Bearer x"))
	if strings.Contains(w.Header().Get("RateLimit"), "pk=") {
		t.Errorf("pk sent without PartitionKeys: %q", w.Header().Get("RateLimit"))
	}
}
