package httpclient_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/httpclient"
)

// now is the instant header tests run at: Sender's example reset is 53
// seconds later.
var now = time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{"absent", header(), 0, false},
		{"delta", header("Retry-After", "12"), 12 * time.Second, true},
		{"zero", header("Retry-After", "0"), 0, true},
		{"spaces", header("Retry-After", "  30 "), 30 * time.Second, true},
		{"decimal", header("Retry-After", "1.5"), 1500 * time.Millisecond, true},
		{"http-date", header("Retry-After", "Wed, 18 Mar 2026 13:02:00 GMT"), 53 * time.Second, true},
		{"http-date against Date", header("Retry-After", "Wed, 18 Mar 2026 13:02:00 GMT",
			"Date", "Wed, 18 Mar 2026 13:01:50 GMT"), 10 * time.Second, true},
		{"rfc850 date", header("Retry-After", "Wednesday, 18-Mar-26 13:02:00 GMT"), 53 * time.Second, true},
		{"date in the past", header("Retry-After", "Wed, 18 Mar 2026 12:00:00 GMT"), 0, true},
		{"negative", header("Retry-After", "-5"), 0, false},
		{"garbage", header("Retry-After", "soon"), 0, false},
		{"trailing dot", header("Retry-After", "5."), 0, false},
		{"huge saturates", header("Retry-After", "99999999999999999999999"), time.Duration(1<<63 - 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := httpclient.ParseRetryAfter(tc.h, now)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseQuotaDialects(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want httpclient.Quota
	}{
		{"mail API: reset in delta seconds", header(
			"X-RateLimit-Limit", "600", "X-RateLimit-Remaining", "412", "X-RateLimit-Reset", "37"),
			httpclient.Quota{Limit: 600, Remaining: 412, Reset: 37 * time.Second}},
		{"Reset-After preferred to Reset", header(
			"X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "1773838927",
			"X-RateLimit-Reset-After", "2.5"),
			httpclient.Quota{Limit: 5, Remaining: 4, Reset: 2500 * time.Millisecond}},
		{"Sender: reset as RFC 3339", header(
			"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "45", "X-RateLimit-Reset", "2026-03-18T13:02:00Z"),
			httpclient.Quota{Limit: 60, Remaining: 45, Reset: 53 * time.Second}},
		{"Sender: RFC 3339 against Date", header(
			"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "45", "X-RateLimit-Reset", "2026-03-18T13:02:00Z",
			"Date", "Wed, 18 Mar 2026 13:01:30 GMT"),
			httpclient.Quota{Limit: 60, Remaining: 45, Reset: 30 * time.Second}},
		{"Sentry: Unix timestamp", header(
			"X-Sentry-Rate-Limit-Limit", "40", "X-Sentry-Rate-Limit-Remaining", "39",
			"X-Sentry-Rate-Limit-Reset", "1773838927"), // now + 60 s
			httpclient.Quota{Limit: 40, Remaining: 39, Reset: 60 * time.Second}},
		{"Unix timestamp with fraction", header(
			"X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1773838867.250"),
			httpclient.Quota{Remaining: 1, Reset: 250 * time.Millisecond}},
		{"Unix milliseconds", header(
			"X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1773838872500"),
			httpclient.Quota{Remaining: 1, Reset: 5500 * time.Millisecond}},
		{"Unix timestamp in the past", header(
			"X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "1773838000"),
			httpclient.Quota{Remaining: 3}},
		{"Rollbar: Remaining-Seconds preferred", header(
			"X-Rate-Limit-Limit", "5000", "X-Rate-Limit-Remaining", "4999",
			"X-Rate-Limit-Remaining-Seconds", "59", "X-Rate-Limit-Reset", "1773838927"),
			httpclient.Quota{Limit: 5000, Remaining: 4999, Reset: 59 * time.Second}},
		{"Rollbar: Reset alone", header(
			"X-Rate-Limit-Limit", "5000", "X-Rate-Limit-Remaining", "4999", "X-Rate-Limit-Reset", "1773838927"),
			httpclient.Quota{Limit: 5000, Remaining: 4999, Reset: 60 * time.Second}},
		{"Sanity per policy, window from the name", header(
			"X-RateLimit-Limit-Second", "25", "X-RateLimit-Remaining-Second", "24"),
			httpclient.Quota{Policy: "second", Limit: 25, Remaining: 24, Reset: time.Second, Window: time.Second}},
		{"Sanity per policy with ratelimit-reset", header(
			"x-ratelimit-limit-second", "500", "x-ratelimit-remaining-second", "0", "ratelimit-reset", "1"),
			httpclient.Quota{Policy: "second", Limit: 500, Remaining: 0, Reset: time.Second, Window: time.Second}},
		{"per-policy reset", header(
			"X-RateLimit-Limit-Mutations", "25", "X-RateLimit-Remaining-Mutations", "3",
			"X-RateLimit-Reset-Mutations", "2"),
			httpclient.Quota{Policy: "mutations", Limit: 25, Remaining: 3, Reset: 2 * time.Second}},
		{"per policy: least remaining binds", header(
			"X-RateLimit-Limit-Minute", "100", "X-RateLimit-Remaining-Minute", "7",
			"X-RateLimit-Limit-Hour", "1000", "X-RateLimit-Remaining-Hour", "700"),
			httpclient.Quota{Policy: "minute", Limit: 100, Remaining: 7, Reset: time.Minute, Window: time.Minute}},
		{"IETF draft-06 / Kong", header(
			"RateLimit-Limit", "10", "RateLimit-Remaining", "4", "RateLimit-Reset", "7"),
			httpclient.Quota{Limit: 10, Remaining: 4, Reset: 7 * time.Second}},
		{"IETF draft-03 limit with policy comment", header(
			"RateLimit-Limit", "10, 10;w=1, 1000;w=3600", "RateLimit-Remaining", "4", "RateLimit-Reset", "1"),
			httpclient.Quota{Limit: 10, Remaining: 4, Reset: time.Second}},
		{"IETF draft-07 dictionary", header("RateLimit", "limit=100, remaining=50, reset=30"),
			httpclient.Quota{Limit: 100, Remaining: 50, Reset: 30 * time.Second}},
		{"IETF -11, one policy", header(
			"RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default";r=50;t=30`),
			httpclient.Quota{Policy: "default", Limit: 100, Remaining: 50, Reset: 30 * time.Second, Window: time.Minute}},
		{"IETF -09 tokens", header(
			"RateLimit-Policy", `burst;q=100;w=60`, "RateLimit", `burst;r=50;t=30`),
			httpclient.Quota{Policy: "burst", Limit: 100, Remaining: 50, Reset: 30 * time.Second, Window: time.Minute}},
		{"IETF several policies: least remaining binds", header(
			"RateLimit-Policy", `"burst";q=100;w=60, "daily";q=1000;w=86400`,
			"RateLimit", `"burst";r=80;t=10, "daily";r=12;t=3600`),
			httpclient.Quota{Policy: "daily", Limit: 1000, Remaining: 12, Reset: time.Hour, Window: 24 * time.Hour}},
		{"IETF policies split over field lines", header(
			"RateLimit-Policy", `"burst";q=100;w=60`, "RateLimit-Policy", `"daily";q=1000;w=86400`,
			"RateLimit", `"burst";r=0;t=10`, "RateLimit", `"daily";r=12;t=3600`),
			httpclient.Quota{Policy: "burst", Limit: 100, Remaining: 0, Reset: 10 * time.Second, Window: time.Minute}},
		{"IETF tie on remaining: longest reset binds", header(
			"RateLimit", `"a";r=5;t=10, "b";r=5;t=20`),
			httpclient.Quota{Policy: "b", Remaining: 5, Reset: 20 * time.Second}},
		{"IETF without t: the window", header(
			"RateLimit-Policy", `"peruser";q=100;w=60;pk=:cHsdsRa894==:`, "RateLimit", `"peruser";r=3;pk=:cHsdsRa894==:`),
			httpclient.Quota{Policy: "peruser", Limit: 100, Remaining: 3, Reset: time.Minute, Window: time.Minute}},
		{"IETF content-bytes policy skipped", header(
			"RateLimit-Policy", `"bytes";q=65535;qu="content-bytes";w=10, "req";q=10;w=1`,
			"RateLimit", `"bytes";r=0;t=10, "req";r=9;t=1`),
			httpclient.Quota{Policy: "req", Limit: 10, Remaining: 9, Reset: time.Second, Window: time.Second}},
		{"dialects together: least remaining binds", header(
			"X-RateLimit-Limit", "600", "X-RateLimit-Remaining", "412", "X-RateLimit-Reset", "37",
			"RateLimit", `"org";r=2;t=5`),
			httpclient.Quota{Policy: "org", Remaining: 2, Reset: 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := httpclient.ParseQuota(tc.h, now)
			require.True(t, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestResetMagnitude pins the threshold between delta seconds and a Unix
// timestamp: below 1e9 a number is a delay, from 1e9 an instant.
func TestResetMagnitude(t *testing.T) {
	reset := func(v string) time.Duration {
		q, ok := httpclient.ParseQuota(header("X-RateLimit-Remaining", "1", "X-RateLimit-Reset", v), now)
		require.True(t, ok)
		return q.Reset
	}
	require.Equal(t, 37*time.Second, reset("37"))
	require.Equal(t, 86400*time.Second, reset("86400"))
	require.Equal(t, 999_999_999*time.Second, reset("999999999"), "just below the threshold: a delay")
	require.Equal(t, time.Duration(0), reset("1000000000"), "at the threshold: 2001, in the past")
	require.Equal(t, 60*time.Second, reset("1773838927"), "a Unix time 60 s ahead")
	require.Equal(t, 60*time.Second, reset("1773838927000"), "the same in milliseconds")
	require.Greater(t, reset("99999999999999999999"), 100*365*24*time.Hour, "absurd: far future, no overflow")
}

func TestParseQuotaIgnoresMalformed(t *testing.T) {
	for name, h := range map[string]http.Header{
		"nothing":               header(),
		"no remaining":          header("X-RateLimit-Limit", "600", "X-RateLimit-Reset", "37"),
		"negative remaining":    header("X-RateLimit-Remaining", "-1"),
		"remaining not numeric": header("X-RateLimit-Remaining", "lots"),
		"IETF unterminated":     header("RateLimit", `"default;r=50;t=30`),
		"IETF trailing comma":   header("RateLimit", `"default";r=50;t=30,`),
		"IETF no r":             header("RateLimit", `"default";t=30`),
		"IETF r not integer":    header("RateLimit", `"default";r="50"`),
		"IETF negative r":       header("RateLimit", `"default";r=-5;t=30`),
		"IETF 16 digits":        header("RateLimit", `"default";r=1234567890123456`),
		"IETF bad key":          header("RateLimit", `"default";R=5`),
		"IETF integer item":     header("RateLimit", `5;r=5`),
		"per policy garbage":    header("X-RateLimit-Remaining-Minute", "x"),
	} {
		t.Run(name, func(t *testing.T) {
			q, ok := httpclient.ParseQuota(h, now)
			require.False(t, ok, "%+v", q)
		})
	}
	// A malformed t is ignored with its field: r=5 from another dialect stays.
	q, ok := httpclient.ParseQuota(header("RateLimit", `"a";r=1;t=1.5`, "X-RateLimit-Remaining", "5"), now)
	require.True(t, ok)
	require.Equal(t, 5, q.Remaining)
}

func TestParseQuotas(t *testing.T) {
	h := header(
		"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "45", "X-RateLimit-Reset", "30",
		"RateLimit-Policy", `"burst";q=100;w=60, "daily";q=1000;w=86400`,
		"RateLimit", `"burst";r=80;t=10, "daily";r=120;t=3600`)
	require.Equal(t, []httpclient.Quota{
		{Limit: 60, Remaining: 45, Reset: 30 * time.Second},
		{Policy: "burst", Limit: 100, Remaining: 80, Reset: 10 * time.Second, Window: time.Minute},
		{Policy: "daily", Limit: 1000, Remaining: 120, Reset: time.Hour, Window: 24 * time.Hour},
	}, httpclient.ParseQuotas(h, now))
	require.Empty(t, httpclient.ParseQuotas(nil, now))
}
