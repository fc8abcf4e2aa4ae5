package httplimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// refusalConfigs are middlewares whose refusals cover every problem the
// middleware writes: 429s from one tier, from two at once and from the
// FailureTier, with default and custom types and details (some with
// characters JSON must escape), a 413 and a 401.
func refusalConfigs(t *testing.T) map[string]func() (httplimit.Config, *http.Request) {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	full := func(name string, limit int) ratekit.Limiter {
		w := newWindow(name, limit, time.Minute)
		w.Take(t0, limit)
		return w
	}
	req := func() *http.Request { return newReq("203.0.113.9:1", "Authorization", "Bearer k", "X-Org", "acme") }
	return map[string]func() (httplimit.Config, *http.Request){
		"one tier": func() (httplimit.Config, *http.Request) {
			return httplimit.Config{Tiers: []httplimit.Tier{
				{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Shared(newWindow("org", 5, time.Minute))},
				{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(full("token", 2))},
				{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(newWindow("ip", 5, time.Minute))},
			}}, req()
		},
		"two tiers, custom type and details": func() (httplimit.Config, *http.Request) {
			return httplimit.Config{ProblemType: `https://api.example/errors?kind=<rate>&"q"`, Tiers: []httplimit.Tier{
				{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Shared(full("org", 3)), Detail: "Too many requests for \"acme\" <org> & co.\n\x01 é"},
				{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(full("token", 2)), Detail: `Back\slash.`},
			}}, req()
		},
		"failure tier": func() (httplimit.Config, *http.Request) {
			return httplimit.Config{
				Tiers:   []httplimit.Tier{{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(newWindow("ip", 5, time.Minute))}},
				Failure: &httplimit.FailureTier{Name: "auth", Key: ipKey, Limiter: httplimit.Shared(full("auth", 1))},
			}, req()
		},
		"failure tier, custom detail": func() (httplimit.Config, *http.Request) {
			return httplimit.Config{
				ProblemType: "urn:x",
				Tiers:       []httplimit.Tier{{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(newWindow("ip", 5, time.Minute))}},
				Failure:     &httplimit.FailureTier{Name: "auth", Key: ipKey, Limiter: httplimit.Shared(full("auth", 1)), Detail: `Blocked "you".`},
			}, req()
		},
		"413": func() (httplimit.Config, *http.Request) {
			return httplimit.Config{Tiers: []httplimit.Tier{
				{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(newWindow("ip", 5, time.Minute)), Cost: func(*http.Request) int { return 9 }},
			}}, req()
		},
		"401": func() (httplimit.Config, *http.Request) {
			return httplimit.Config{Tiers: []httplimit.Tier{
				{Name: "key", Key: httplimit.Header("X-Api-Key"), Missing: httplimit.MissingReject, Limiter: httplimit.Shared(newWindow("key", 5, time.Minute))},
			}}, req()
		},
	}
}

// TestRefusalBodyMatchesWriteProblem holds the middleware's own refusal
// writer, which renders parts of a 429 ahead of time, to exactly what
// WriteProblem writes for the same refusal: headers and body, byte for
// byte.
func TestRefusalBodyMatchesWriteProblem(t *testing.T) {
	for name, mk := range refusalConfigs(t) {
		t.Run(name, func(t *testing.T) {
			cfg, r := mk()
			cfg.Clock = mockAt(t0)
			own := serve(mustNew(t, cfg).Wrap(ok), r)
			cfg, r = mk()
			cfg.Clock = mockAt(t0)
			cfg.Problem = httplimit.WriteProblem
			want := serve(mustNew(t, cfg).Wrap(ok), r)
			if own.Code == http.StatusOK || own.Code != want.Code {
				t.Fatalf("status %d, WriteProblem's %d", own.Code, want.Code)
			}
			decodeProblem(t, own) // valid JSON
			if own.Body.String() != want.Body.String() {
				t.Errorf("body\n%s\nWriteProblem's\n%s", own.Body, want.Body)
			}
			for k, v := range want.Header() {
				if got := own.Header()[k]; len(got) != len(v) || len(v) > 0 && got[0] != v[0] {
					t.Errorf("header %s = %q, WriteProblem's %q", k, got, v)
				}
			}
			if len(own.Header()) != len(want.Header()) {
				t.Errorf("headers %v, WriteProblem's %v", own.Header(), want.Header())
			}
		})
	}
}

// TestCustomProblemNotReused checks that the *Problem a Config.Problem is
// handed is its own: a func that keeps it (to log it later, or hand it to
// another goroutine) does not see it change under later refusals.
func TestCustomProblemNotReused(t *testing.T) {
	var kept []*httplimit.Problem
	var snap []httplimit.Problem
	org := newWindow("org", 1, time.Minute)
	tok := newWindow("token", 1, time.Minute)
	m := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Shared(org)},
			{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Shared(tok)},
		},
		Problem: func(w http.ResponseWriter, r *http.Request, p *httplimit.Problem) {
			kept = append(kept, p)
			snap = append(snap, *p)
			snap[len(snap)-1].ViolatedPolicies = append([]string(nil), p.ViolatedPolicies...)
			httplimit.WriteProblem(w, r, p)
		},
		Clock: mockAt(t0),
	})
	h := m.Wrap(ok)
	serve(h, newReq("203.0.113.9:1", "X-Org", "a", "Authorization", "Bearer k")) // admitted: both full now
	serve(h, newReq("203.0.113.9:1", "X-Org", "a", "Authorization", "Bearer k")) // refused by both
	serve(h, newReq("203.0.113.9:1", "Authorization", "Bearer k"))               // refused by token
	serve(h, newReq("203.0.113.9:1", "X-Org", "a"))                              // refused by org
	if len(kept) != 3 {
		t.Fatalf("%d refusals, want 3", len(kept))
	}
	for i, p := range kept {
		if p.Detail != snap[i].Detail || len(p.ViolatedPolicies) != len(snap[i].ViolatedPolicies) {
			t.Fatalf("refusal %d's problem changed after its call: %+v, was %+v", i, *p, snap[i])
		}
		for j := range p.ViolatedPolicies {
			if p.ViolatedPolicies[j] != snap[i].ViolatedPolicies[j] {
				t.Fatalf("refusal %d's violated-policies changed after its call: %q, was %q", i, p.ViolatedPolicies, snap[i].ViolatedPolicies)
			}
		}
	}
}
