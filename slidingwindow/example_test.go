package slidingwindow_test

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// Sanity allows at most 25 mutations per second per IP, in any second: an
// exact sliding log per IP. (A map holds them here, without bound; a
// service uses ratekit.NewKeyed, as ExampleNewLog_perKey does.)
func ExampleNewLog() {
	perIP := map[string]*slidingwindow.Log{}
	limiter := func(ip string) *slidingwindow.Log {
		if l, ok := perIP[ip]; ok {
			return l
		}
		l, err := slidingwindow.NewLog(slidingwindow.Config{
			Limit: 25, Window: time.Second, Name: "mutations per IP",
		})
		if err != nil {
			panic(err)
		}
		perIP[ip] = l
		return l
	}
	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)

	// One client sends a mutation every 25ms for half a second...
	admitted := 0
	for i := range 20 {
		if limiter("203.0.113.7").Take(start.Add(time.Duration(i)*25*time.Millisecond), 1).Allowed {
			admitted++
		}
	}
	fmt.Printf("%d of 20 mutations admitted\n", admitted)

	// ...then a batch of 10 at 0.6s: 20+10 > 25. Five must expire first,
	// the fifth oldest (sent at 0.1s) at 1.1s.
	d := limiter("203.0.113.7").Take(start.Add(600*time.Millisecond), 10)
	fmt.Printf("batch of 10 at 0.6s: allowed=%v remaining=%d retry-after=%v\n", d.Allowed, d.Remaining, d.RetryAfter)

	// Another IP has its own budget.
	d = limiter("198.51.100.2").Take(start.Add(600*time.Millisecond), 10)
	fmt.Printf("another IP at 0.6s: allowed=%v remaining=%d\n", d.Allowed, d.Remaining)

	// Retrying when told to succeeds.
	d = limiter("203.0.113.7").Take(start.Add(1100*time.Millisecond), 10)
	fmt.Printf("batch of 10 at 1.1s: allowed=%v remaining=%d\n", d.Allowed, d.Remaining)
	// Output:
	// 20 of 20 mutations admitted
	// batch of 10 at 0.6s: allowed=false remaining=5 retry-after=500ms
	// another IP at 0.6s: allowed=true remaining=15
	// batch of 10 at 1.1s: allowed=true remaining=0
}

// headers prints what a server sends with a Decision, as the mail API of
// the next example documents its headers.
func headers(d ratekit.Decision) {
	ceil := func(x time.Duration) int64 { return int64((x + time.Second - 1) / time.Second) }
	fmt.Printf("X-RateLimit-Limit: %d, X-RateLimit-Remaining: %d, X-RateLimit-Reset: %d",
		d.Limit, d.Remaining, ceil(d.ResetAfter))
	if !d.Allowed {
		fmt.Printf(", Retry-After: %d", ceil(d.RetryAfter))
	}
	fmt.Println()
}

// A mail API limits each org to 600 requests per sliding minute, shared by
// every API key of the org: one Counter per org (one word of state each),
// found through the key.
func ExampleNewCounter() {
	orgOf := map[string]string{"key_live_a": "acme", "key_live_b": "acme", "key_live_c": "globex"}
	perOrg := map[string]*slidingwindow.Counter{}
	for _, org := range []string{"acme", "globex"} {
		c, err := slidingwindow.NewCounter(slidingwindow.Config{
			Limit: 600, Window: time.Minute, Name: "org",
		})
		if err != nil {
			panic(err)
		}
		perOrg[org] = c
	}
	request := func(key string, at time.Time, n int) ratekit.Decision {
		return perOrg[orgOf[key]].Take(at, n)
	}
	minute := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)

	// Two keys of one org use the whole budget between them.
	headers(request("key_live_a", minute.Add(10*time.Second), 400))
	headers(request("key_live_b", minute.Add(20*time.Second), 200))
	// Every key of the org is refused until the window slides...
	headers(request("key_live_a", minute.Add(30*time.Second), 1))
	// ...while another org is not affected.
	headers(request("key_live_c", minute.Add(30*time.Second), 1))
	// Half a minute into the next minute, the last minute's 600 requests
	// weigh half: 300 more pass.
	headers(request("key_live_b", minute.Add(90*time.Second), 300))
	// Output:
	// X-RateLimit-Limit: 600, X-RateLimit-Remaining: 200, X-RateLimit-Reset: 110
	// X-RateLimit-Limit: 600, X-RateLimit-Remaining: 0, X-RateLimit-Reset: 100
	// X-RateLimit-Limit: 600, X-RateLimit-Remaining: 0, X-RateLimit-Reset: 90, Retry-After: 31
	// X-RateLimit-Limit: 600, X-RateLimit-Remaining: 599, X-RateLimit-Reset: 90
	// X-RateLimit-Limit: 600, X-RateLimit-Remaining: 0, X-RateLimit-Reset: 90
}

// Sanity's 25 mutations per second per client IP, exactly, for every IP that
// calls: NewLog in the factory. Logs of one Config share their parameters,
// so each IP costs its ring of 25 instants and 64 bytes (272 bytes).
func ExampleNewLog_perKey() {
	cfg := slidingwindow.Config{Limit: 25, Window: time.Second, Name: "ip"}
	ips := ratekit.NewKeyed(func(netip.Addr) *slidingwindow.Log {
		l, err := slidingwindow.NewLog(cfg)
		if err != nil {
			panic(err) // cannot happen: cfg is a valid constant
		}
		return l
	}, ratekit.KeyedConfig{MaxKeys: 1_000_000})

	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")
	// a sends a mutation every 20ms: the 26th, at 0.5s, is one too many
	// until the first expires, at 1s.
	for i := range 25 {
		ips.Take(start.Add(time.Duration(i)*20*time.Millisecond), a, 1)
	}
	fmt.Println(a, ips.Take(start.Add(500*time.Millisecond), a, 1))
	fmt.Println(b, ips.Take(start.Add(500*time.Millisecond), b, 1))
	fmt.Println(a, ips.Take(start.Add(time.Second), a, 1))
	// Output:
	// 203.0.113.7 denied policy="ip" limit=25 remaining=0 window=1s reset=980ms retry=500ms
	// 2001:db8::7 allowed policy="ip" limit=25 remaining=24 window=1s reset=1s retry=0s
	// 203.0.113.7 allowed policy="ip" limit=25 remaining=0 window=1s reset=1s retry=0s
}

// A mail API limits each org to 600 requests per sliding minute, shared by
// the org's live API keys, and its test keys to a tenth of that: a Keyed of
// a Counter per org and per org's test keys, each made by NewCounter in the
// factory, which decides the Config per key. Counters of one Config share
// their parameters, so each is 32 bytes, and approximates the sliding
// minute: never more than 600 in one minute of the clock, but up to 1,199
// in a minute that straddles two (see Counter). Where a client may hold the
// API to 600 in any minute, use a Log (ExampleNewLog_perKey).
func ExampleNewCounter_perKey() {
	live := slidingwindow.Config{Limit: 600, Window: time.Minute, Name: "org"}
	test := slidingwindow.Config{Limit: 60, Window: time.Minute, Name: "org-test"}
	orgs := ratekit.NewKeyed(func(org string) *slidingwindow.Counter {
		cfg := live
		if strings.HasSuffix(org, "/test") {
			cfg = test
		}
		c, err := slidingwindow.NewCounter(cfg)
		if err != nil {
			panic(err) // cannot happen: both Configs are valid constants
		}
		return c
	}, ratekit.KeyedConfig{})
	orgOf := map[string]string{"key_live_a": "acme", "key_live_b": "acme", "key_test_a": "acme/test", "key_live_c": "globex"}
	request := func(key string, at time.Time, n int) ratekit.Decision { return orgs.Take(at, orgOf[key], n) }

	minute := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	fmt.Println(request("key_live_a", minute.Add(10*time.Second), 400))
	fmt.Println(request("key_live_b", minute.Add(20*time.Second), 200))
	fmt.Println(request("key_live_a", minute.Add(30*time.Second), 1))
	fmt.Println(request("key_test_a", minute.Add(30*time.Second), 60))
	fmt.Println(request("key_test_a", minute.Add(30*time.Second), 1))
	fmt.Println(request("key_live_c", minute.Add(30*time.Second), 1))
	// Output:
	// allowed policy="org" limit=600 remaining=200 window=1m0s reset=1m50s retry=0s
	// allowed policy="org" limit=600 remaining=0 window=1m0s reset=1m40s retry=0s
	// denied policy="org" limit=600 remaining=0 window=1m0s reset=1m30s retry=30.1s
	// allowed policy="org-test" limit=60 remaining=0 window=1m0s reset=1m30s retry=0s
	// denied policy="org-test" limit=60 remaining=0 window=1m0s reset=1m30s retry=31s
	// allowed policy="org" limit=600 remaining=599 window=1m0s reset=1m30s retry=0s
}
