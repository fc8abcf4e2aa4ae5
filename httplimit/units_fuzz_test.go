package httplimit_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// unitTier is one tier of a FuzzRemainingCountsRequests case: a fixed
// window of limit units charged cost a request.
type unitTier struct {
	name        string
	limit, cost int
	window      time.Duration
	unit        string
	reset       time.Duration // from t0 to the end of its window
}

var unitWindows = [...]time.Duration{time.Second, 10 * time.Second, time.Minute, time.Hour}
var unitNames = [...]string{"", "events", "content-bytes", "requests"}

// unitTiers reads up to three tiers from cfg, three bytes each (limit,
// cost, window and unit). The cost never exceeds the limit: a request that
// can never be admitted is a 413, not this test's subject.
func unitTiers(cfg []byte) []unitTier {
	var ts []unitTier
	for i := 0; i+2 < len(cfg) && len(ts) < 3; i += 3 {
		limit := 1 + int(cfg[i]%128)
		w := unitWindows[cfg[i+2]%4]
		ts = append(ts, unitTier{
			name:   "t" + strconv.Itoa(len(ts)),
			limit:  limit,
			cost:   int(cfg[i+1]) % (min(limit, 12) + 1),
			window: w,
			unit:   unitNames[(cfg[i+2]/4)%4],
			reset:  t0.Truncate(w).Add(w).Sub(t0),
		})
	}
	return ts
}

// perReq is v units in requests of cost units each: rounded down, and v
// itself for a cost of 0 or 1.
func perReq(v, cost int) int {
	if cost > 1 {
		return v / cost
	}
	return v
}

// unitDialects are the dialect sets the fuzz target picks from: every
// dialect is in one of them (the three X-RateLimit forms share names).
var unitDialects = [...]httplimit.Dialect{
	httplimit.XRateLimit | httplimit.Sentry | httplimit.Rollbar | httplimit.Sanity | httplimit.IETF,
	httplimit.XRateLimitUnix,
	httplimit.XRateLimitRFC3339 | httplimit.Sentry,
	httplimit.Rollbar | httplimit.IETF,
}

// FuzzRemainingCountsRequests checks, across dialects, that the headers
// without a unit field count requests: tiers of any unit, each charged its
// own cost, are asked requests at one instant until one is refused, and
// after each admitted request the single-policy Remaining is exactly how
// many more were admitted; Limit, Remaining and Reset are those of the tier
// that binds in requests (the fewest left, ties to the longest reset);
// Sanity's per-tier fields count requests of this cost; IETF's items stay
// in each tier's own unit. The refusals after the last admission (the
// second one served from the refusal cache) report the refusing tier with
// Remaining 0.
func FuzzRemainingCountsRequests(f *testing.F) {
	// The newcomer's case: 100 events at 10 a request beside 50 requests.
	f.Add(uint8(0), []byte{99, 10, 2 + 4, 49, 1, 2})
	// Every single-policy dialect, the other form of each reset.
	f.Add(uint8(1), []byte{99, 10, 2 + 4, 49, 1, 2})
	f.Add(uint8(2), []byte{99, 10, 2 + 4, 49, 1, 2})
	f.Add(uint8(3), []byte{99, 10, 2 + 4, 49, 1, 2})
	// Bytes in a larger window bind before requests in a shorter one.
	f.Add(uint8(0), []byte{63, 7, 3 + 8, 9, 1, 1})
	// A tier this request costs nothing binds no count.
	f.Add(uint8(0), []byte{3, 0, 2 + 4, 20, 2, 1})
	f.Add(uint8(1), []byte{3, 0, 2 + 4, 20, 2, 1})
	// Equal counts in two units: the longer reset binds.
	f.Add(uint8(0), []byte{19, 4, 0, 4, 1, 3 + 4})
	// Three tiers, rounding down in each.
	f.Add(uint8(0), []byte{50, 7, 1 + 4, 30, 3, 2 + 8, 11, 1, 3})
	// One tier in events.
	f.Add(uint8(2), []byte{40, 3, 2 + 4})
	f.Fuzz(func(t *testing.T, dialect uint8, cfg []byte) {
		ts := unitTiers(cfg)
		k := -1 // requests admitted at t0: the fewest any charged tier admits
		for _, u := range ts {
			if u.cost > 0 && (k < 0 || u.limit/u.cost < k) {
				k = u.limit / u.cost
			}
		}
		if k < 0 {
			return // no tier charges anything: every request is admitted
		}
		dl := unitDialects[int(dialect)%len(unitDialects)]
		var tiers []httplimit.Tier
		for _, u := range ts {
			cost := u.cost
			tiers = append(tiers, httplimit.Tier{
				Name: u.name, Unit: u.unit, Limiter: httplimit.Shared(newWindow(u.name, u.limit, u.window)),
				Cost: func(*http.Request) int { return cost },
			})
		}
		h := mustNew(t, httplimit.Config{Tiers: tiers, Headers: dl, Clock: mockAt(t0)}).Wrap(ok)
		for j := range k + 2 {
			w := serve(h, newReq("192.0.2.1:1"))
			admitted := j < k
			if admitted != (w.Code == http.StatusOK) {
				t.Fatalf("%+v, %v: request %d: %d, want admitted %v", ts, dl, j, w.Code, admitted)
			}
			taken := min(j+1, k) // requests charged so far
			bind := -1
			var left int
			for i, u := range ts {
				if u.cost == 0 {
					continue
				}
				l := (u.limit - taken*u.cost) / u.cost
				if admitted {
					if bind < 0 || l < left || l == left && u.reset > ts[bind].reset {
						bind, left = i, l
					}
				} else if l == 0 && (bind < 0 || u.reset > ts[bind].reset) {
					bind, left = i, 0 // refusing, with the longest RetryAfter
				}
			}
			b := ts[bind]
			if admitted && left != k-1-j {
				t.Fatalf("model: %d left after request %d of %d", left, j, k)
			}
			checkUnitHeaders(t, fmt.Sprintf("%+v, %v, request %d", ts, dl, j), w.Header(), dl, ts, b, left, taken)
		}
	})
}

// checkUnitHeaders checks the headers of one response of a
// FuzzRemainingCountsRequests case: b binds with left requests, taken
// requests have been charged.
func checkUnitHeaders(t *testing.T, what string, h http.Header, dl httplimit.Dialect, ts []unitTier, b unitTier, left, taken int) {
	t.Helper()
	lim, rem := strconv.Itoa(perReq(b.limit, b.cost)), strconv.Itoa(left)
	secs := int64((b.reset + time.Second - 1) / time.Second)
	unix := strconv.FormatInt(t0.Unix()+secs, 10)
	want := map[string]string{}
	if dl&httplimit.XRateLimit != 0 {
		want["X-RateLimit-Reset"] = strconv.FormatInt(secs, 10)
	}
	if dl&httplimit.XRateLimitUnix != 0 {
		want["X-RateLimit-Reset"] = unix
	}
	if dl&httplimit.XRateLimitRFC3339 != 0 {
		want["X-RateLimit-Reset"] = time.Unix(t0.Unix()+secs, 0).UTC().Format(time.RFC3339)
	}
	if dl&(httplimit.XRateLimit|httplimit.XRateLimitUnix|httplimit.XRateLimitRFC3339) != 0 {
		want["X-RateLimit-Limit"], want["X-RateLimit-Remaining"] = lim, rem
	}
	if dl&httplimit.Sentry != 0 {
		want["X-Sentry-Rate-Limit-Limit"], want["X-Sentry-Rate-Limit-Remaining"], want["X-Sentry-Rate-Limit-Reset"] = lim, rem, unix
	}
	if dl&httplimit.Rollbar != 0 {
		want["X-Rate-Limit-Limit"], want["X-Rate-Limit-Remaining"] = lim, rem
		want["X-Rate-Limit-Remaining-Seconds"], want["X-Rate-Limit-Reset"] = strconv.FormatInt(secs, 10), unix
	}
	if dl&httplimit.Sanity != 0 {
		want["RateLimit-Reset"] = strconv.FormatInt(secs, 10)
		for _, u := range ts {
			want["X-RateLimit-Limit-"+u.name] = strconv.Itoa(perReq(u.limit, u.cost))
			want["X-RateLimit-Remaining-"+u.name] = strconv.Itoa(perReq(u.limit-taken*u.cost, u.cost))
		}
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Fatalf("%s: %s = %q, want %q (all: %v)", what, k, got, v, h)
		}
	}
	if dl&httplimit.IETF != 0 {
		pol, rl := h.Get("RateLimit-Policy"), h.Get("RateLimit")
		for _, u := range ts {
			q := fmt.Sprintf(`"%s";q=%d`, u.name, u.limit)
			r := fmt.Sprintf(`"%s";r=%d`, u.name, u.limit-taken*u.cost)
			if !strings.Contains(pol, q) || !strings.Contains(rl, r) {
				t.Fatalf("%s: IETF in the tier's own unit: want %s in %q and %s in %q", what, q, pol, r, rl)
			}
		}
	}
}
