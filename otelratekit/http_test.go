package otelratekit_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/otelratekit"
)

// Two tiers, an org limit of 2 a minute and a roomy per-IP one: two
// admitted requests and one refusal, counted per request, per tier, with
// the refusal's RetryAfter and one limit-reached episode.
func TestHTTPDecisions(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	org, ip := window("org", 2), window("ip", 100)
	var userDecisions, userReached int
	cfg := httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Shared(org)},
			{Name: "ip", Limiter: httplimit.Shared(ip)},
		},
		Clock:          mockAt(t0),
		OnDecision:     func(*http.Request, ratekit.Decision, []httplimit.TierDecision) { userDecisions++ },
		OnLimitReached: func(string, string, ratekit.Decision) { userReached++ },
	}
	m.InstrumentHTTP(&cfg)
	h := mustWrap(t, cfg)

	for i, want := range []int{200, 200, 429, 429} {
		if got := get(h, "X-Org", "acme"); got != want {
			t.Fatalf("request %d: %d, want %d", i, got, want)
		}
	}
	if got := get(h); got != 200 { // no org: only the ip tier applies, and it admits
		t.Fatalf("request without org: %d", got)
	}
	if userDecisions != 5 || userReached != 1 {
		t.Errorf("the config's own hooks ran %d and %d times, want 5 and 1", userDecisions, userReached)
	}

	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed": 3,
		"ratekit.outcome=refused": 2,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=allowed,ratekit.policy=org": 2,
		"ratekit.outcome=refused,ratekit.policy=org": 2,
		"ratekit.outcome=allowed,ratekit.policy=ip":  3,
	})
	s.want(t, "ratekit.limit_reached", map[string]int64{"ratekit.policy=org": 1})
	if got := s.hists["ratekit.retry_after"]; len(got) != 1 || got["ratekit.policy=org"] != (hist{2, 24}) {
		t.Errorf("ratekit.retry_after = %+v, want org: 2 refusals of 12s", got)
	}
}

func mustWrap(tb testing.TB, cfg httplimit.Config) http.Handler {
	tb.Helper()
	mw, err := httplimit.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return mw.Wrap(ok)
}

// Shadow mode serves would-be refusals and counts them as shadow, with
// their RetryAfter.
func TestHTTPShadow(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	cfg := httplimit.Config{
		Tiers:  []httplimit.Tier{{Name: "org", Limiter: httplimit.Shared(window("org", 1))}},
		Clock:  mockAt(t0),
		Shadow: true,
		Cost: func(r *http.Request) int {
			n, _ := strconv.Atoi(r.Header.Get("X-Cost"))
			return n
		},
	}
	m.InstrumentHTTP(&cfg)
	h := mustWrap(t, cfg)
	for _, cost := range []string{"1", "1", "5"} {
		if got := get(h, "X-Cost", cost); got != 200 {
			t.Fatalf("cost %s: %d, want 200 in shadow mode", cost, got)
		}
	}
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed": 1,
		"ratekit.outcome=shadow":  2,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=allowed,ratekit.policy=org": 1,
		"ratekit.outcome=shadow,ratekit.policy=org":  2,
	})
	if got := s.hists["ratekit.retry_after"]["ratekit.policy=org"]; got != (hist{1, 12}) {
		t.Errorf("retry_after{org} = %+v, want the one curable would-be refusal, 12s", got)
	}
}

// Every other outcome: 413 (never), 401 for a missing key, a FailureTier's
// refusal, a request no tier applies to.
func TestHTTPOutcomes(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	exempt := func(key string) ratekit.Limiter {
		if key == "internal" {
			return nil
		}
		return window("token", 3)
	}
	auth := ratekit.NewKeyed(func(string) ratekit.Limiter { return window("auth", 1) }, ratekit.KeyedConfig{})
	cfg := httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "token", Key: httplimit.Bearer, Missing: httplimit.MissingReject, Limiter: exempt},
		},
		Failure: &httplimit.FailureTier{
			Name:    "auth",
			Key:     httplimit.Header("X-Client"),
			Limiter: auth.Get,
		},
		Clock: mockAt(t0),
		Cost: func(r *http.Request) int {
			if r.Header.Get("X-Big") != "" {
				return 10
			}
			return 1
		},
	}
	m.InstrumentHTTP(&cfg)
	h := mustWrap(t, cfg)
	steps := []struct {
		headers []string
		want    int
	}{
		{[]string{"Authorization", "Bearer a", "X-Client", "c"}, 200},            // allowed: token and auth
		{[]string{"Authorization", "Bearer a", "X-Big", "1"}, 413},               // never
		{[]string{"Authorization", "Bearer internal"}, 200},                      // no tier applies
		{[]string{"X-Client", "c"}, 401},                                         // missing key; charges auth
		{[]string{"Authorization", "Bearer a", "X-Client", "c"}, 429},            // auth refuses
		{[]string{"Authorization", "Bearer internal", "X-Client", "other"}, 200}, // only auth applies, admits
	}
	for i, st := range steps {
		if got := get(h, st.headers...); got != st.want {
			t.Fatalf("step %d: %d, want %d", i, got, st.want)
		}
	}
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed":      2,
		"ratekit.outcome=never":        1,
		"ratekit.outcome=unlimited":    1,
		"ratekit.outcome=unauthorized": 1,
		"ratekit.outcome=refused":      1,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=allowed,ratekit.policy=token": 1,
		"ratekit.outcome=never,ratekit.policy=token":   1,
		"ratekit.outcome=allowed,ratekit.policy=auth":  2,
		"ratekit.outcome=refused,ratekit.policy=auth":  1,
	})
	if got := s.hists["ratekit.retry_after"]; len(got) != 1 || got["ratekit.policy=auth"] != (hist{1, 12}) {
		t.Errorf("ratekit.retry_after = %+v, want one auth refusal of 12s (no 413)", got)
	}
}

// KeyAttribute adds the key to ratekit.limit_reached, and only there.
func TestKeyAttribute(t *testing.T) {
	for _, withKey := range []bool{false, true} {
		m, r := newMetrics(t, otelratekit.Config{KeyAttribute: withKey})
		orgs := ratekit.NewKeyed(func(string) ratekit.Limiter { return window("org", 1) }, ratekit.KeyedConfig{})
		cfg := httplimit.Config{
			Tiers: []httplimit.Tier{{Name: "org", Key: httplimit.Header("X-Org"), Limiter: orgs.Get}},
			Clock: mockAt(t0),
		}
		m.InstrumentHTTP(&cfg)
		h := mustWrap(t, cfg)
		for _, org := range []string{"a", "a", "b", "b", "b"} {
			get(h, "X-Org", org)
		}
		s := collect(t, r)
		want := map[string]int64{"ratekit.policy=org": 2}
		if withKey {
			want = map[string]int64{"ratekit.key=a,ratekit.policy=org": 1, "ratekit.key=b,ratekit.policy=org": 1}
		}
		s.want(t, "ratekit.limit_reached", want)
		s.want(t, "ratekit.decisions", map[string]int64{
			"ratekit.outcome=allowed,ratekit.policy=org": 2,
			"ratekit.outcome=refused,ratekit.policy=org": 3,
		})
	}
}

// The metrics leave the middleware's allocations as they were.
func TestHTTPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for _, c := range benchCases() {
		bare, instrumented := benchHandlers(t, c, false), benchHandlers(t, c, true)
		r, w := benchRequest()
		a := testing.AllocsPerRun(200, func() { clear(w.h); bare.ServeHTTP(w, r) })
		b := testing.AllocsPerRun(200, func() { clear(w.h); instrumented.ServeHTTP(w, r) })
		if a != b {
			t.Errorf("%s: %v allocations per request with metrics, %v without", c.name, b, a)
		}
	}
}

// With more tiers than fit a mask of counters, admitted requests are
// counted per tier instead, to the same totals.
func TestHTTPManyTiers(t *testing.T) {
	for _, n := range []int{6, 7, 9} {
		m, r := newMetrics(t, otelratekit.Config{})
		var tiers []httplimit.Tier
		for i := range n {
			name := "t" + strconv.Itoa(i)
			// Odd tiers apply to requests with an X-Odd header, even ones
			// to those with X-Even.
			key := httplimit.Header("X-Even")
			if i%2 == 1 {
				key = httplimit.Header("X-Odd")
			}
			tiers = append(tiers, httplimit.Tier{Name: name, Key: key, Limiter: httplimit.Shared(window(name, 100))})
		}
		cfg := httplimit.Config{Tiers: tiers, Clock: mockAt(t0)}
		m.InstrumentHTTP(&cfg)
		h := mustWrap(t, cfg)
		for range 3 {
			get(h, "X-Odd", "1", "X-Even", "1")
		}
		get(h, "X-Even", "1")
		get(h) // no tier applies
		s := collect(t, r)
		s.want(t, "ratekit.requests", map[string]int64{"ratekit.outcome=allowed": 4, "ratekit.outcome=unlimited": 1})
		want := map[string]int64{}
		for i := range n {
			v := int64(4)
			if i%2 == 1 {
				v = 3
			}
			want["ratekit.outcome=allowed,ratekit.policy=t"+strconv.Itoa(i)] = v
		}
		s.want(t, "ratekit.decisions", want)
	}
}
