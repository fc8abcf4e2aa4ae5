package ratekit_test

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// tokenBucket returns a token bucket of limit units per window, at most
// limit at once, for a limit that differs per key. The configs here are
// valid, so New cannot fail.
func tokenBucket(limit int, window time.Duration) *tokenbucket.Limiter {
	l, err := tokenbucket.New(tokenbucket.Config{Limit: limit, Window: window, Burst: limit})
	if err != nil {
		panic(err)
	}
	return l
}

// bucketTemplate returns a Template of token buckets of limit units per
// window, at most limit at once, for many keys of one limit: they share
// their parameters (32 bytes a key).
func bucketTemplate(limit int, window time.Duration) *tokenbucket.Template {
	t, err := tokenbucket.NewTemplate(tokenbucket.Config{Limit: limit, Window: window, Burst: limit})
	if err != nil {
		panic(err)
	}
	return t
}

// A mail API limits each org to 600 requests a minute with its live keys and
// to 60 with its test keys, a tenth; all the keys of an org share one
// budget. The key of the Keyed is what shares a budget (the org and the
// environment), not the API key, and the factory gives each its limit.
func ExampleNewKeyed() {
	type budget struct {
		org  string
		test bool
	}
	live, test := bucketTemplate(600, time.Minute), bucketTemplate(60, time.Minute)
	perOrg := ratekit.NewKeyed(func(b budget) *tokenbucket.Limiter {
		if b.test {
			return test.New()
		}
		return live.New()
	}, ratekit.KeyedConfig{MaxKeys: 1_000_000})

	// The API keys of each org, as the auth layer resolves them.
	apiKeys := map[string]budget{
		"sk_live_a1": {"acme", false},
		"sk_live_a2": {"acme", false},
		"sk_test_a3": {"acme", true},
	}
	now := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	for i := 0; i < 300; i++ {
		perOrg.Take(now, apiKeys["sk_live_a1"], 1)
		perOrg.Take(now, apiKeys["sk_live_a2"], 1)
	}
	fmt.Println("sk_live_a1:", perOrg.Take(now, apiKeys["sk_live_a1"], 1))
	fmt.Println("sk_test_a3:", perOrg.Take(now, apiKeys["sk_test_a3"], 1))
	fmt.Println("budgets:", perOrg.Len())
	// Output:
	// sk_live_a1: denied policy="" limit=600 remaining=0 window=1m0s reset=1m0s retry=100ms
	// sk_test_a3: allowed policy="" limit=60 remaining=59 window=1m0s reset=1s retry=0s
	// budgets: 2
}

// Rollbar lets each project access token have its own user-defined limit,
// tracked apart from the system limit that every token has; whichever is
// hit first decides. The factory looks the token's limit up, and TakeAll
// applies both, all or none: events the system limit refuses do not use up
// the user's daily quota.
func ExampleNewKeyed_userDefinedLimits() {
	userLimits := map[string]int{"tok_prod": 100_000, "tok_staging": 2} // per day, set in the UI
	userDefined := ratekit.NewKeyed(func(token string) *tokenbucket.Limiter {
		if limit, ok := userLimits[token]; ok {
			return tokenBucket(limit, 24*time.Hour)
		}
		return tokenBucket(1<<40, 24*time.Hour) // no user-defined limit
	}, ratekit.KeyedConfig{})
	perMinute := bucketTemplate(1000, time.Minute)
	system := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return perMinute.New() },
		ratekit.KeyedConfig{})

	now := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	post := func(token string) ratekit.Decision {
		return ratekit.TakeAll(now, 1, userDefined.Get(token), system.Get(token))
	}
	for i := 1; i <= 3; i++ {
		d := post("tok_staging")
		fmt.Printf("tok_staging #%d: allowed=%v limit=%d\n", i, d.Allowed, d.Limit)
	}
	for i := 0; i < 1000; i++ {
		post("tok_prod")
	}
	d := post("tok_prod")
	fmt.Printf("tok_prod #1001: allowed=%v limit=%d retry=%v\n", d.Allowed, d.Limit, d.RetryAfter)
	fmt.Println("tok_prod daily remaining:", userDefined.Get("tok_prod").Peek(now, 0).Remaining)
	// Output:
	// tok_staging #1: allowed=true limit=2
	// tok_staging #2: allowed=true limit=2
	// tok_staging #3: allowed=false limit=2
	// tok_prod #1001: allowed=false limit=1000 retry=60ms
	// tok_prod daily remaining: 99000
}

// Sanity allows 25 mutations a second per client IP. Keys of idle clients
// cost memory for nothing: Sweep drops the limiters that are back at full
// capacity, which changes no decision, and MaxKeys bounds the memory that a
// flood of new addresses can take.
func ExampleKeyed_Sweep() {
	mutations := bucketTemplate(25, time.Second)
	perIP := ratekit.NewKeyed(func(netip.Addr) *tokenbucket.Limiter { return mutations.New() },
		ratekit.KeyedConfig{MaxKeys: 500_000})

	now := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "2001:db8::7"} {
		perIP.Take(now, netip.MustParseAddr(ip), 5)
	}
	fmt.Println("keys:", perIP.Len())
	fmt.Println("swept at once:", perIP.Sweep(now))
	perIP.Take(now.Add(150*time.Millisecond), netip.MustParseAddr("192.0.2.1"), 5)
	fmt.Println("swept 200ms later:", perIP.Sweep(now.Add(200*time.Millisecond)))
	fmt.Println("keys:", perIP.Len())
	// Output:
	// keys: 3
	// swept at once: 0
	// swept 200ms later: 2
	// keys: 1
}

// All visits every key and its limiter, here to report the tokens close to
// their limit.
func ExampleKeyed_All() {
	perMinute := bucketTemplate(60, time.Minute)
	perToken := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return perMinute.New() },
		ratekit.KeyedConfig{})
	now := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	perToken.Take(now, "tok_1", 58)
	perToken.Take(now, "tok_2", 10)
	perToken.Take(now, "tok_3", 55)

	var hot []string
	for token, l := range perToken.All() {
		if left := l.Peek(now, 0).Remaining; left < 10 {
			hot = append(hot, fmt.Sprintf("%s (%d left)", token, left))
		}
	}
	slices.Sort(hot)
	fmt.Println(hot)
	// Output:
	// [tok_1 (2 left) tok_3 (5 left)]
}
