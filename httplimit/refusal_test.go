package httplimit_test

import (
	"net/http"
	"slices"
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
// writer, which renders parts of a 429 ahead of time and keeps the last
// one of each tier to write again, to exactly what WriteProblem writes for
// the same refusal: headers and body, byte for byte. Each case is refused
// again at the same instant (a repeat: the kept 429), and later, when the
// Retry-After differs (the kept one must not be used), in each dialect.
func TestRefusalBodyMatchesWriteProblem(t *testing.T) {
	for _, dialect := range []httplimit.Dialect{httplimit.XRateLimit, httplimit.XRateLimitUnix | httplimit.Rollbar, httplimit.XRateLimitRFC3339 | httplimit.Sentry, httplimit.Sanity | httplimit.IETF} {
		for name, mk := range refusalConfigs(t) {
			t.Run(name, func(t *testing.T) {
				cfg, r := mk()
				ownClock := mockAt(t0)
				cfg.Clock, cfg.Headers = ownClock, dialect
				own := mustNew(t, cfg).Wrap(ok)
				cfg, _ = mk()
				wantClock := mockAt(t0)
				cfg.Clock, cfg.Headers = wantClock, dialect
				cfg.Problem = httplimit.WriteProblem
				want := mustNew(t, cfg).Wrap(ok)
				for _, at := range []time.Duration{0, 0, 300 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond} {
					ownClock.Set(t0.Add(at))
					wantClock.Set(t0.Add(at))
					o, w := serve(own, r.Clone(r.Context())), serve(want, r.Clone(r.Context()))
					if o.Code == http.StatusOK || o.Code != w.Code {
						t.Fatalf("at +%v: status %d, WriteProblem's %d", at, o.Code, w.Code)
					}
					decodeProblem(t, o) // valid JSON
					if o.Body.String() != w.Body.String() {
						t.Errorf("at +%v: body\n%s\nWriteProblem's\n%s", at, o.Body, w.Body)
					}
					for k, v := range w.Header() {
						if got := o.Header()[k]; !slices.Equal(got, v) {
							t.Errorf("at +%v: header %s = %q, WriteProblem's %q", at, k, got, v)
						}
					}
					if len(o.Header()) != len(w.Header()) {
						t.Errorf("at +%v: headers %v, WriteProblem's %v", at, o.Header(), w.Header())
					}
				}
			})
		}
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

// TestRefusalAllocs pins a repeated 429 (a flood of refusals, the same
// tier and Retry-After) at no allocation: its headers and body are the
// ones the tier kept.
func TestRefusalAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	cfg, r := refusalConfigs(t)["one tier"]()
	cfg.Clock = mockAt(t0)
	h := mustNew(t, cfg).Wrap(ok)
	w := &discard{h: make(http.Header)}
	h.ServeHTTP(w, r) // the first refusal is rendered, and kept
	got := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	})
	if got != 0 || w.h.Get("Retry-After") != "12" {
		t.Errorf("%v allocations per refusal (Retry-After %q), want 0", got, w.h.Get("Retry-After"))
	}
}
