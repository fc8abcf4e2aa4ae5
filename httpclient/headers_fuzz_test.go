package httpclient_test

import (
	"net/http"
	"testing"

	"github.com/ratekit/ratekit/httpclient"
	"github.com/ratekit/ratekit/internal/model"
)

// FuzzParseRetryAfter compares ParseRetryAfter with the reference reading
// in internal/model, which does the arithmetic with big rationals.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"12", "0", "1.5", " 30 ", "-1", "5.", ".5", "99999999999999999999",
		"9223372036.854775807", "9223372036.854775808", "Wed, 18 Mar 2026 13:02:00 GMT", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{"Retry-After": {v}}
		got, ok := httpclient.ParseRetryAfter(h, now)
		want, wok := model.RetryAfter(v, now)
		if ok != wok || got != want {
			t.Fatalf("ParseRetryAfter(%q) = %v %v, model %v %v", v, got, ok, want, wok)
		}
	})
}

// FuzzParseQuotas feeds arbitrary values to every dialect at once and checks
// what must always hold: no panic, no negative count or duration, and
// ParseQuota returning the binding one of ParseQuotas.
func FuzzParseQuotas(f *testing.F) {
	f.Add("600", "412", "37", `"burst";q=100;w=60, "daily";q=1000;w=86400`, `"burst";r=80;t=10, "daily";r=12;t=3600`, "24")
	f.Add("60", "45", "2026-03-18T13:02:00Z", `burst;q=1`, `limit=1, remaining=0, reset=9`, "x")
	f.Add("1", "0", "1773838927000", `"a";q=1;qu="content-bytes"`, `"a";r=0;pk=:AA==:, (1 2);r=1`, "")
	f.Fuzz(func(t *testing.T, limit, remaining, reset, policy, ratelimit, perPolicy string) {
		h := http.Header{}
		for _, kv := range [][2]string{
			{"X-RateLimit-Limit", limit}, {"X-RateLimit-Remaining", remaining}, {"X-RateLimit-Reset", reset},
			{"X-Sentry-Rate-Limit-Remaining", remaining}, {"X-Sentry-Rate-Limit-Reset", reset},
			{"X-Rate-Limit-Remaining", remaining}, {"X-Rate-Limit-Remaining-Seconds", reset},
			{"RateLimit-Remaining", perPolicy}, {"RateLimit-Reset", reset},
			{"X-RateLimit-Remaining-" + perPolicy, remaining}, {"X-RateLimit-Limit-" + perPolicy, limit},
			{"RateLimit-Policy", policy}, {"RateLimit", ratelimit},
		} {
			h[kv[0]] = []string{kv[1]}
		}
		qs := httpclient.ParseQuotas(h, now)
		q, ok := httpclient.ParseQuota(h, now)
		if ok != (len(qs) > 0) {
			t.Fatalf("ParseQuota ok=%v with %d quotas", ok, len(qs))
		}
		for _, c := range qs {
			if c.Remaining < 0 || c.Limit < 0 || c.Reset < 0 || c.Window < 0 {
				t.Fatalf("negative field in %+v", c)
			}
			if c.Remaining < q.Remaining || (c.Remaining == q.Remaining && c.Reset > q.Reset) {
				t.Fatalf("ParseQuota %+v is not the binding one of %+v", q, qs)
			}
		}
		if d, ok := httpclient.ParseRetryAfter(h, now); ok && d < 0 {
			t.Fatalf("negative Retry-After %v", d)
		}
	})
}
