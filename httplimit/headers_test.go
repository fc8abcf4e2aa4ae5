package httplimit_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// orgTier is the mail API's per-org limit: 600 requests per minute, shared
// by every key of the org (here: one org, "acme").
func orgTier(l *window) httplimit.Tier {
	return httplimit.Tier{
		Name:    "org",
		Key:     func(*http.Request) (string, bool) { return "acme", true },
		Limiter: httplimit.Shared(l),
		Detail:  "Too many requests for this organization.",
	}
}

// TestDialects checks each dialect's headers on an admitted request and on
// a refused one, against the shapes in the seed docs.
func TestDialects(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	minuteEnd := at("2026-03-18T13:02:00Z").Unix()
	unix := func(v int64) string { return strconv.FormatInt(v, 10) }

	tests := []struct {
		name    string
		dialect httplimit.Dialect
		limit   int
		used    int       // units taken before the admitted request
		allowAt time.Time // the admitted request
		denyAt  time.Time // the refused request, after draining
		allowed map[string]string
		denied  map[string]string
	}{
		{
			name: "XRateLimit/mail-API", dialect: httplimit.XRateLimit, limit: 600, used: 187,
			allowAt: at("2026-03-18T13:01:23Z"), denyAt: at("2026-03-18T13:01:48Z"),
			allowed: map[string]string{"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "412", "X-RateLimit-Reset": "37", "Retry-After": ""},
			denied:  map[string]string{"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12", "Retry-After": "12"},
		},
		{
			name: "XRateLimitRFC3339/Sender", dialect: httplimit.XRateLimitRFC3339, limit: 60, used: 14,
			allowAt: at("2026-03-18T13:01:07.25Z"), denyAt: at("2026-03-18T13:01:30Z"),
			allowed: map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "45", "X-RateLimit-Reset": "2026-03-18T13:02:00Z"},
			denied:  map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-03-18T13:02:00Z", "Retry-After": "30"},
		},
		{
			name: "XRateLimitUnix", dialect: httplimit.XRateLimitUnix, limit: 60, used: 14,
			allowAt: at("2026-03-18T13:01:07.25Z"), denyAt: at("2026-03-18T13:01:30.5Z"),
			allowed: map[string]string{"X-RateLimit-Remaining": "45", "X-RateLimit-Reset": unix(minuteEnd)},
			denied:  map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(minuteEnd), "Retry-After": "30"},
		},
		{
			name: "Sentry", dialect: httplimit.Sentry, limit: 40, used: 0,
			allowAt: at("2026-03-18T13:01:07.25Z"), denyAt: at("2026-03-18T13:01:59.999Z"),
			allowed: map[string]string{"X-Sentry-Rate-Limit-Limit": "40", "X-Sentry-Rate-Limit-Remaining": "39", "X-Sentry-Rate-Limit-Reset": unix(minuteEnd), "X-RateLimit-Limit": ""},
			denied:  map[string]string{"X-Sentry-Rate-Limit-Remaining": "0", "X-Sentry-Rate-Limit-Reset": unix(minuteEnd), "Retry-After": "1"},
		},
		{
			name: "Rollbar", dialect: httplimit.Rollbar, limit: 5000, used: 4000,
			allowAt: at("2026-03-18T13:01:07.25Z"), denyAt: at("2026-03-18T13:01:48Z"),
			allowed: map[string]string{"X-Rate-Limit-Limit": "5000", "X-Rate-Limit-Remaining": "999", "X-Rate-Limit-Remaining-Seconds": "53", "X-Rate-Limit-Reset": unix(minuteEnd)},
			denied:  map[string]string{"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Remaining-Seconds": "12", "X-Rate-Limit-Reset": unix(minuteEnd), "Retry-After": "12"},
		},
		{
			name: "NoHeaders", dialect: httplimit.NoHeaders, limit: 60, used: 0,
			allowAt: at("2026-03-18T13:01:07.25Z"), denyAt: at("2026-03-18T13:01:48Z"),
			allowed: map[string]string{"X-RateLimit-Limit": "", "X-RateLimit-Remaining": "", "Retry-After": ""},
			denied:  map[string]string{"X-RateLimit-Limit": "", "Retry-After": "12"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newWindow("org", tt.limit, time.Minute)
			l.Take(tt.allowAt, tt.used)
			clk := mockAt(tt.allowAt)
			h := mustNew(t, httplimit.Config{Tiers: []httplimit.Tier{orgTier(l)}, Headers: tt.dialect, Clock: clk}).Wrap(ok)

			w := serve(h, newReq("192.0.2.1:4711"))
			if w.Code != http.StatusOK {
				t.Fatalf("admitted request: status %d", w.Code)
			}
			wantHeaders(t, w.Header(), tt.allowed)

			clk.Set(tt.denyAt)
			l.Take(tt.denyAt, l.Peek(tt.denyAt, 0).Remaining) // drain
			w = serve(h, newReq("192.0.2.1:4711"))
			if w.Code != http.StatusTooManyRequests {
				t.Fatalf("refused request: status %d", w.Code)
			}
			wantHeaders(t, w.Header(), tt.denied)
		})
	}
}

// TestMailAPIRefusal checks the whole 429 of the mail API's docs: headers
// and problem+json body, with the service's own problem type.
func TestMailAPIRefusal(t *testing.T) {
	l := newWindow("org", 600, time.Minute)
	l.Take(t0, 600)
	h := mustNew(t, httplimit.Config{
		Tiers:       []httplimit.Tier{orgTier(l)},
		Clock:       mockAt(t0),
		ProblemType: "https://api.sendops.dev/errors/rate_limit",
	}).Wrap(ok)
	w := serve(h, newReq("192.0.2.1:4711", "Authorization", "Bearer sk_live_1"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", w.Code)
	}
	wantHeaders(t, w.Header(), map[string]string{
		"Retry-After": "12", "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12",
	})
	p := decodeProblem(t, w)
	want := map[string]any{
		"type":              "https://api.sendops.dev/errors/rate_limit",
		"title":             "Rate limit exceeded",
		"status":            429.0,
		"detail":            "Too many requests for this organization. Retry in 12 seconds.",
		"retry_after":       12.0,
		"violated-policies": []any{"org"},
	}
	for k, v := range want {
		if got := p[k]; !equalJSON(got, v) {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if len(p) != len(want) {
		t.Errorf("body has %d members, want %d: %s", len(p), len(want), w.Body)
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// TestPerPolicyDialects checks Sanity's and the IETF draft's per-tier
// headers over three tiers: an org per minute, an IP per second and a
// concurrency limit.
func TestPerPolicyDialects(t *testing.T) {
	now := time.Date(2026, 3, 18, 13, 1, 23, 500_000_000, time.UTC)
	ipKey, err := httplimit.ClientIP(httplimit.IPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dialect httplimit.Dialect
		want    map[string]string
	}{
		{httplimit.Sanity, map[string]string{
			"X-RateLimit-Limit-Org": "600", "X-RateLimit-Remaining-Org": "412",
			"X-RateLimit-Limit-Mutations": "25", "X-RateLimit-Remaining-Mutations": "24",
			"X-RateLimit-Limit-Concurrent": "100", "X-RateLimit-Remaining-Concurrent": "99",
			"RateLimit-Reset":   "1", // the binding tier is the per-second one: 24 left
			"X-RateLimit-Limit": "",
		}},
		{httplimit.IETF, map[string]string{
			"RateLimit-Policy": `"org";q=600;w=60, "mutations";q=25;w=1, "concurrent";q=100;qu="concurrent-requests"`,
			"RateLimit":        `"org";r=412;t=37, "mutations";r=24;t=1, "concurrent";r=99`,
		}},
	}
	for _, tt := range tests {
		org := newWindow("org-limiter", 600, time.Minute)
		org.Take(now, 187)
		ips := newKeyed(func(string) *window { return newWindow("ip", 25, time.Second) })
		tiers := []httplimit.Tier{
			orgTier(org),
			{Name: "mutations", Key: ipKey, Limiter: httplimit.Per(ips.Get)},
			{Name: "concurrent", Limiter: httplimit.Shared(newConc(t, 100))},
		}
		h := mustNew(t, httplimit.Config{Tiers: tiers, Headers: tt.dialect, Clock: mockAt(now)}).Wrap(ok)
		wantHeaders(t, serve(h, newReq("198.51.100.7:1234")).Header(), tt.want)
	}
}

// TestIETFRefusal checks the IETF fields on a refusal: the refusing tier
// reports r=0 and t equal to Retry-After, the draft's requirement that
// Retry-After not precede the end of the effective window.
func TestIETFRefusal(t *testing.T) {
	now := time.Date(2026, 3, 18, 13, 1, 23, 0, time.UTC)
	org := newWindow("org", 600, time.Minute)
	hour := newWindow("hour", 5000, time.Hour)
	org.Take(now, 600)
	hour.Take(now, 100)
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "hour", Limiter: httplimit.Shared(hour)},
			{Name: "minute", Limiter: httplimit.Shared(org)},
		},
		Headers: httplimit.IETF | httplimit.XRateLimit,
		Clock:   mockAt(now),
	}).Wrap(ok)
	w := serve(h, newReq("192.0.2.1:1"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d", w.Code)
	}
	wantHeaders(t, w.Header(), map[string]string{
		"Retry-After":       "37",
		"RateLimit-Policy":  `"hour";q=5000;w=3600, "minute";q=600;w=60`,
		"RateLimit":         `"hour";r=4900;t=3517, "minute";r=0;t=37`,
		"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "37",
	})
	if got := used(hour, now); got != 100 {
		t.Errorf("the admitting tier was charged for a refused request: used %d, want 100", got)
	}
	p := decodeProblem(t, w)
	if !equalJSON(p["violated-policies"], []any{"minute"}) {
		t.Errorf("violated-policies = %v", p["violated-policies"])
	}
}

// TestRetryAfterRounding checks Retry-After: whole seconds, rounded up,
// never 0.
func TestRetryAfterRounding(t *testing.T) {
	for _, tc := range []struct {
		before time.Duration // how long before the window ends the request comes
		want   string
	}{
		{time.Nanosecond, "1"},
		{time.Millisecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Nanosecond, "2"},
		{1500 * time.Millisecond, "2"},
		{59 * time.Second, "59"},
	} {
		now := time.Date(2026, 3, 18, 13, 2, 0, 0, time.UTC).Add(-tc.before)
		l := newWindow("w", 1, time.Minute)
		l.Take(now, 1)
		w := serve(mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{{Name: "w", Limiter: httplimit.Shared(l)}}, Clock: mockAt(now),
		}).Wrap(ok), newReq("192.0.2.1:1"))
		if got := w.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("%v before the reset: Retry-After %q, want %q", tc.before, got, tc.want)
		}
		if got := decodeProblem(t, w)["retry_after"]; fmt.Sprint(got) != tc.want {
			t.Errorf("%v before the reset: retry_after %v, want %s", tc.before, got, tc.want)
		}
	}
}
