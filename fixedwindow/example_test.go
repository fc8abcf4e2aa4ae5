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

// Rollbar tracks a user-defined limit (here 100,000 per day) and a system
// limit per minute on one token; whichever is hit first takes effect, and
// events refused by the system limit do not count against the daily quota.
// When a limit is reached Rollbar posts a notice, once.
//
// At 1,000 events per second the system limit is hit 5.5 seconds into
// every minute, until the daily quota runs out in the 19th minute.
func ExampleConfig_onLimitReached() {
	notices := map[string]int{}
	notice := func(d ratekit.Decision) {
		if notices[d.Policy]++; d.Policy == "user-daily" {
			fmt.Printf("Your rate limit has been reached for access_token %s; retry in %v\n", d.Policy, d.RetryAfter)
		}
	}
	daily, err := fixedwindow.New(fixedwindow.Config{Limit: 100_000, Window: 24 * time.Hour,
		Name: "user-daily", OnLimitReached: notice})
	if err != nil {
		panic(err)
	}
	system, err := fixedwindow.New(fixedwindow.Config{Limit: 5_500, Window: time.Minute,
		Name: "system", OnLimitReached: notice})
	if err != nil {
		panic(err)
	}
	token := ratekit.AllOf(system, daily)

	start := time.Date(2026, 3, 18, 0, 0, 0, 0, time.UTC)
	admitted := 0
	for ms := 0; ms < 20*60*1000; ms++ { // 20 minutes, one event per millisecond
		if token.Take(start.Add(time.Duration(ms)*time.Millisecond), 1).Allowed {
			admitted++
		}
	}
	fmt.Println("admitted:", admitted)
	fmt.Println("system limit notices:", notices["system"])
	fmt.Println("daily limit notices:", notices["user-daily"])
	// Output:
	// Your rate limit has been reached for access_token user-daily; retry in 23h41m59s
	// admitted: 100000
	// system limit notices: 18
	// daily limit notices: 1
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

// Lowering a limit applies to what the window has already taken (Rollbar:
// changes to rate limits take effect immediately).
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

// Sender's API allows 60 requests per minute per API key, in windows that
// reset at :00. A Keyed holds a window per key, all made by one Template:
// the Config is validated once, and each key costs a 24-byte limiter. Each
// key's count, and the notice when it runs out, are its own.
func ExampleTemplate() {
	perKey, err := fixedwindow.NewTemplate(fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "api-key",
		OnLimitReached: func(d ratekit.Decision) { fmt.Println("limit reached; retry in", d.RetryAfter) }})
	if err != nil {
		panic(err)
	}
	keys := ratekit.NewKeyed(func(string) *fixedwindow.Limiter { return perKey.New() },
		ratekit.KeyedConfig{MaxKeys: 1_000_000})

	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	keys.Take(now, "key-a", 60)
	fmt.Println("key-a:", keys.Take(now.Add(20*time.Second), "key-a", 1))
	fmt.Println("key-a:", keys.Take(now.Add(30*time.Second), "key-a", 1))
	fmt.Println("key-b:", keys.Take(now.Add(30*time.Second), "key-b", 1))
	now = time.Date(2026, 3, 18, 13, 2, 0, 0, time.UTC)
	fmt.Println("key-a:", keys.Take(now, "key-a", 1))
	// Output:
	// limit reached; retry in 33s
	// key-a: denied policy="api-key" limit=60 remaining=0 window=1m0s reset=33s retry=33s
	// key-a: denied policy="api-key" limit=60 remaining=0 window=1m0s reset=23s retry=23s
	// key-b: allowed policy="api-key" limit=60 remaining=59 window=1m0s reset=23s retry=0s
	// key-a: allowed policy="api-key" limit=60 remaining=59 window=1m0s reset=1m0s retry=0s
}
