package ratekit_test

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
)

// must returns v, or panics with err: the configs of these examples are
// valid.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A mail API limits each org to 600 requests per sliding minute with its
// live keys and to 60 with its test keys, a tenth; all the keys of an org
// share one budget. The key of the Keyed is what shares a budget (the org
// and the environment), not the API key, and the factory gives each its
// limit: a sliding window, so no minute-long interval, wherever it starts,
// holds more than 600.
func ExampleNewKeyed() {
	type budget struct {
		org  string
		test bool
	}
	live := slidingwindow.Config{Limit: 600, Window: time.Minute, Name: "org"}
	test := slidingwindow.Config{Limit: 60, Window: time.Minute, Name: "org-test"}
	// New in the factory, which decides per key: Logs of one Config share
	// its parameters.
	perOrg := ratekit.NewKeyed(func(b budget) *slidingwindow.Log {
		if b.test {
			return must(slidingwindow.NewLog(test))
		}
		return must(slidingwindow.NewLog(live))
	}, ratekit.KeyedConfig{MaxKeys: 1_000_000})

	// The API keys of each org, as the auth layer resolves them.
	apiKeys := map[string]budget{
		"sk_live_a1": {"acme", false},
		"sk_live_a2": {"acme", false},
		"sk_test_a3": {"acme", true},
	}
	start := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	// Two live keys send 300 each in the first ten seconds: the org's
	// budget is spent, for both keys, until the first request is a minute
	// old (the two sent at 13:01:00 then count no more). The test key has its
	// own budget.
	for i := 0; i < 300; i++ {
		at := start.Add(time.Duration(i) * 30 * time.Millisecond)
		perOrg.Take(at, apiKeys["sk_live_a1"], 1)
		perOrg.Take(at, apiKeys["sk_live_a2"], 1)
	}
	now := start.Add(30 * time.Second)
	fmt.Println("sk_live_a1:", perOrg.Take(now, apiKeys["sk_live_a1"], 1))
	fmt.Println("sk_test_a3:", perOrg.Take(now, apiKeys["sk_test_a3"], 1))
	fmt.Println("sk_live_a2 a minute on:", perOrg.Take(start.Add(time.Minute), apiKeys["sk_live_a2"], 1))
	fmt.Println("budgets:", perOrg.Len())
	// Output:
	// sk_live_a1: denied policy="org" limit=600 remaining=0 window=1m0s reset=38.97s retry=30s
	// sk_test_a3: allowed policy="org-test" limit=60 remaining=59 window=1m0s reset=1m0s retry=0s
	// sk_live_a2 a minute on: allowed policy="org" limit=600 remaining=1 window=1m0s reset=1m0s retry=0s
	// budgets: 2
}

// Rollbar lets each project access token have its own user-defined limit,
// tracked apart from the system limit that every token has; whichever is
// hit first decides. Both count from a token's first event: a window opens
// then and lasts its length (the rolling package), so the system's 5,500 a
// minute admits 5,500 and then nothing until that minute ends, however
// fast events come.
//
// The factory looks the token's limit up and returns nil for a token
// without one: Keyed stores nothing for it, and only the system limit
// applies. TakeAll applies both, all or none: events the system limit
// refuses do not use up the user's daily quota.
func ExampleNewKeyed_userDefinedLimits() {
	userLimits := map[string]int{"tok_prod": 100_000, "tok_staging": 2} // per day, set in the UI
	userDefined := ratekit.NewKeyed(func(token string) *rolling.Limiter {
		limit, ok := userLimits[token]
		if !ok {
			return nil // no user-defined limit
		}
		return must(rolling.New(rolling.Config{Limit: limit, Window: 24 * time.Hour, Name: "user"}))
	}, ratekit.KeyedConfig{})
	perMinute := rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system"}
	system := ratekit.NewKeyed(func(string) *rolling.Limiter { return must(rolling.New(perMinute)) },
		ratekit.KeyedConfig{})

	post := func(token string, at time.Time) ratekit.Decision {
		if user := userDefined.Get(token); user != nil {
			return ratekit.TakeAll(at, 1, system.Get(token), user)
		}
		return system.Get(token).Take(at, 1)
	}
	start := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		d := post("tok_staging", start)
		fmt.Printf("tok_staging #%d: allowed=%v policy=%s\n", i, d.Allowed, d.Policy)
	}

	// Rollbar's worked example: 1,000 events a second on a token with a
	// user-defined 100,000 a day. The system limit is hit 5.5 seconds into
	// each minute; in the 19th minute the daily quota runs out.
	perMinuteAdmitted := map[int]int{}
	var last ratekit.Decision
	for ms := 0; ms < 20*60*1000; ms++ {
		at := start.Add(time.Duration(ms) * time.Millisecond)
		if last = post("tok_prod", at); last.Allowed {
			perMinuteAdmitted[ms/60_000]++
		}
	}
	fmt.Println("tok_prod admitted in minutes 1, 2, 18, 19, 20:", perMinuteAdmitted[0], perMinuteAdmitted[1],
		perMinuteAdmitted[17], perMinuteAdmitted[18], perMinuteAdmitted[19])
	fmt.Printf("tok_prod then: refused by %s, retry in %v\n", last.Policy, last.RetryAfter)

	// A token with no user-defined limit has only the system limit.
	for i := 0; i < 5_500; i++ {
		post("tok_dev", start)
	}
	d := post("tok_dev", start.Add(59*time.Second))
	fmt.Printf("tok_dev #5501: allowed=%v policy=%s retry=%v\n", d.Allowed, d.Policy, d.RetryAfter)
	fmt.Println("user-defined limiters:", userDefined.Len())
	// Output:
	// tok_staging #1: allowed=true policy=user
	// tok_staging #2: allowed=true policy=user
	// tok_staging #3: allowed=false policy=user
	// tok_prod admitted in minutes 1, 2, 18, 19, 20: 5500 5500 5500 1000 0
	// tok_prod then: refused by user, retry in 23h40m0.001s
	// tok_dev #5501: allowed=false policy=system retry=1s
	// user-defined limiters: 2
}

// Sanity allows 25 mutations per second per client IP, in any second: a
// sliding log per IP. Keys of idle clients cost memory for nothing: Sweep
// drops the limiters that are back at full capacity (no mutation in the
// last second), which changes no decision, and MaxKeys bounds the memory
// that a flood of new addresses can take.
func ExampleKeyed_Sweep() {
	mutations := slidingwindow.Config{Limit: 25, Window: time.Second, Name: "ip"}
	perIP := ratekit.NewKeyed(func(netip.Addr) *slidingwindow.Log { return must(slidingwindow.NewLog(mutations)) },
		ratekit.KeyedConfig{MaxKeys: 500_000})

	now := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "2001:db8::7"} {
		perIP.Take(now, netip.MustParseAddr(ip), 5)
	}
	fmt.Println("keys:", perIP.Len())
	fmt.Println("swept at once:", perIP.Sweep(now))
	perIP.Take(now.Add(500*time.Millisecond), netip.MustParseAddr("192.0.2.1"), 5)
	fmt.Println("swept a second later:", perIP.Sweep(now.Add(time.Second)))
	fmt.Println("keys:", perIP.Len())
	// Output:
	// keys: 3
	// swept at once: 0
	// swept a second later: 2
	// keys: 1
}

// All visits every key and its limiter, here to report the accounts close
// to Sender's limit of 60 requests a minute, in windows that reset at :00.
// Sender counts per account, whichever of its API tokens a request uses,
// so the keys are accounts.
func ExampleKeyed_All() {
	perMinute := fixedwindow.Config{Limit: 60, Window: time.Minute}
	perAccount := ratekit.NewKeyed(func(string) *fixedwindow.Limiter { return must(fixedwindow.New(perMinute)) },
		ratekit.KeyedConfig{})
	accountOf := map[string]string{"tok_1": "acme", "tok_2": "acme", "tok_3": "globex", "tok_4": "initech"}
	now := time.Date(2026, 3, 18, 13, 1, 20, 0, time.UTC)
	perAccount.Take(now, accountOf["tok_1"], 30)
	perAccount.Take(now, accountOf["tok_2"], 28)
	perAccount.Take(now, accountOf["tok_3"], 10)
	perAccount.Take(now, accountOf["tok_4"], 55)

	var hot []string
	for account, l := range perAccount.All() {
		if left := l.Peek(now, 0).Remaining; left < 10 {
			hot = append(hot, fmt.Sprintf("%s (%d left)", account, left))
		}
	}
	slices.Sort(hot)
	fmt.Println(hot)
	// Output:
	// [acme (2 left) initech (5 left)]
}
