package fixedwindow_test

import (
	"fmt"
	"time"
	_ "time/tzdata" // Europe/Paris, where the system has no zone database

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
)

// Sender's API allows 60 requests per minute, and its windows reset at :00.
// A Decision carries what its X-RateLimit-* and Retry-After headers say.
func Example() {
	l, err := fixedwindow.New(fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "sender"})
	if err != nil {
		panic(err)
	}
	headers := func(now time.Time, d ratekit.Decision) {
		if !d.Allowed {
			fmt.Println("HTTP/1.1 429 Too Many Requests")
			fmt.Println("Retry-After:", d.RetryAfter.Round(time.Second).Seconds())
		}
		fmt.Println("X-RateLimit-Limit:", d.Limit)
		fmt.Println("X-RateLimit-Remaining:", d.Remaining)
		fmt.Println("X-RateLimit-Reset:", now.Add(d.ResetAfter).Format(time.RFC3339))
	}

	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	headers(now, l.Take(now, 1))
	l.Take(now.Add(time.Second), 59)
	now = time.Date(2026, 3, 18, 13, 1, 30, 0, time.UTC)
	headers(now, l.Take(now, 1))
	// Output:
	// X-RateLimit-Limit: 60
	// X-RateLimit-Remaining: 59
	// X-RateLimit-Reset: 2026-03-18T13:02:00Z
	// HTTP/1.1 429 Too Many Requests
	// Retry-After: 30
	// X-RateLimit-Limit: 60
	// X-RateLimit-Remaining: 0
	// X-RateLimit-Reset: 2026-03-18T13:02:00Z
}

// A service with Sender's limit, 60 requests per minute per account,
// logs when an account runs out: OnLimitReached runs once per window, by the
// first refused request, however many are refused after it. An account
// sending two requests a second from 13:01:00 runs out at :30 of every
// minute.
func ExampleConfig_onLimitReached() {
	acme, err := fixedwindow.New(fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "acme",
		OnLimitReached: func(d ratekit.Decision) {
			fmt.Printf("account %s: limit of %d reached, resets in %v\n", d.Policy, d.Limit, d.RetryAfter)
		}})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	admitted, refused := 0, 0
	for at := start; at.Before(start.Add(3 * time.Minute)); at = at.Add(500 * time.Millisecond) {
		if acme.Take(at, 1).Allowed {
			admitted++
		} else {
			refused++
		}
	}
	fmt.Println("admitted:", admitted, "refused:", refused)
	// Output:
	// account acme: limit of 60 reached, resets in 30s
	// account acme: limit of 60 reached, resets in 30s
	// account acme: limit of 60 reached, resets in 30s
	// admitted: 180 refused: 180
}

// A daily quota that resets at midnight in New York (UTC-5 in winter): the
// windows are days of New York time, Unix time - 5h, so Offset is -5h, and
// they start at 05:00 UTC.
func ExampleConfig_offset() {
	newYork := time.FixedZone("EST", -5*60*60)
	l, err := fixedwindow.New(fixedwindow.Config{Limit: 1000, Window: 24 * time.Hour, Offset: -5 * time.Hour})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 14, 3, 0, 0, 0, time.UTC) // 22:00 on the 13th in New York
	d := l.Take(now, 1)
	fmt.Println("resets at", now.Add(d.ResetAfter).In(newYork))
	// Output:
	// resets at 2026-01-14 00:00:00 -0500 EST
}

// A daily quota of a user in Paris, reset at midnight Paris time. Offset is
// the zone's offset that time.Time.Zone reports, in seconds: +1h in winter.
// It is fixed: for the summer's +2h, Reconfigure the limiter in March.
func ExampleConfig_location() {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 14, 22, 30, 0, 0, time.UTC) // 23:30 in Paris
	_, off := now.In(paris).Zone()
	cfg := fixedwindow.Config{Limit: 2, Window: 24 * time.Hour, Offset: time.Duration(off) * time.Second}
	l, err := fixedwindow.New(cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println("Offset:", cfg.Offset)
	d := l.Take(now, 2)
	fmt.Println("resets at", now.Add(d.ResetAfter).In(paris))
	for _, at := range []time.Time{now.Add(29*time.Minute + 59*time.Second), now.Add(30 * time.Minute)} {
		d := l.Take(at, 1)
		fmt.Printf("%s: allowed %v, remaining %d\n", at.In(paris).Format(time.DateTime), d.Allowed, d.Remaining)
	}
	// Output:
	// Offset: 1h0m0s
	// resets at 2026-01-15 00:00:00 +0100 CET
	// 2026-01-14 23:59:59: allowed false, remaining 0
	// 2026-01-15 00:00:00: allowed true, remaining 1
}

// Lowering a limit takes effect at once, and applies to what the window
// has already taken.
func ExampleLimiter_Reconfigure() {
	l, err := fixedwindow.New(fixedwindow.Config{Limit: 60, Window: time.Minute})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	l.Take(now, 50)
	if err := l.Reconfigure(fixedwindow.Config{Limit: 10, Window: time.Minute}); err != nil {
		panic(err)
	}
	fmt.Println(l.Take(now, 1))
	fmt.Println(l.Take(now.Add(time.Minute), 1))
	// Output:
	// denied policy="" limit=10 remaining=0 window=1m0s reset=53s retry=53s
	// allowed policy="" limit=10 remaining=9 window=1m0s reset=53s retry=0s
}

// A 30-day quota survives a restart: the state is saved in wall-clock terms,
// and restored after its window ended, it leaves the limiter fresh.
func ExampleLimiter_MarshalBinary() {
	cfg := fixedwindow.Config{Limit: 10_000, Window: 30 * 24 * time.Hour, Name: "monthly"}
	before, err := fixedwindow.New(cfg)
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	before.Take(now, 2_500)
	saved, err := before.MarshalBinary()
	if err != nil {
		panic(err)
	}

	after, err := fixedwindow.New(cfg) // in the restarted process
	if err != nil {
		panic(err)
	}
	if err := after.UnmarshalBinary(saved); err != nil {
		panic(err)
	}
	d := after.Peek(now.Add(time.Hour), 0)
	fmt.Println("remaining after an hour's downtime:", d.Remaining, "until", now.Add(time.Hour).Add(d.ResetAfter).Format(time.DateOnly))
	fmt.Println("remaining after the window ended:", after.Peek(now.Add(30*24*time.Hour), 0).Remaining)
	// Output:
	// remaining after an hour's downtime: 7500 until 2026-04-07
	// remaining after the window ended: 10000
}

// Sender's API allows 60 requests per minute per account, in windows that
// reset at :00, and every API token of an account shares the account's
// window. A Keyed holds a window per account, each made by New in the
// factory: the limiters of one Config share its parameters, so each
// account costs a 32-byte limiter. (The Config, OnLimitReached included, is
// made once, outside the factory: two closures of the same code are two
// Configs.) Each account's count, and the notice when it runs out, are its
// own.
func ExampleNew_perKey() {
	cfg := fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "account",
		OnLimitReached: func(d ratekit.Decision) { fmt.Println("limit reached; retry in", d.RetryAfter) }}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	accounts := ratekit.NewKeyed(func(string) *fixedwindow.Limiter {
		l, _ := fixedwindow.New(cfg) // cfg is valid: New cannot fail
		return l
	}, ratekit.KeyedConfig{MaxKeys: 1_000_000})
	accountOf := map[string]string{"tok_a1": "acme", "tok_a2": "acme", "tok_g1": "globex"} // API token to account
	take := func(at time.Time, token string, n int) ratekit.Decision {
		return accounts.Take(at, accountOf[token], n)
	}

	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	take(now, "tok_a1", 40)
	take(now, "tok_a2", 20)
	fmt.Println("tok_a1:", take(now.Add(20*time.Second), "tok_a1", 1))
	fmt.Println("tok_a2:", take(now.Add(30*time.Second), "tok_a2", 1))
	fmt.Println("tok_g1:", take(now.Add(30*time.Second), "tok_g1", 1))
	now = time.Date(2026, 3, 18, 13, 2, 0, 0, time.UTC)
	fmt.Println("tok_a2:", take(now, "tok_a2", 1))
	// Output:
	// limit reached; retry in 33s
	// tok_a1: denied policy="account" limit=60 remaining=0 window=1m0s reset=33s retry=33s
	// tok_a2: denied policy="account" limit=60 remaining=0 window=1m0s reset=23s retry=23s
	// tok_g1: allowed policy="account" limit=60 remaining=59 window=1m0s reset=23s retry=0s
	// tok_a2: allowed policy="account" limit=60 remaining=59 window=1m0s reset=1m0s retry=0s
}
