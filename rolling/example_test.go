package rolling_test

import (
	"fmt"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/rolling"
)

// Rollbar's access tokens: "if your rate limit is 100 calls per minute, we
// start the counter when we receive the first occurrence, then it resets
// after a minute. The counter starts up again the next time we receive an
// occurrence."
func Example() {
	token, err := rolling.New(rolling.Config{Limit: 100, Window: time.Minute, Name: "token"})
	if err != nil {
		panic(err)
	}
	first := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC) // the first occurrence

	d := token.Take(first, 1)
	fmt.Printf("13:01:07 allowed=%v remaining=%d resets in %v\n", d.Allowed, d.Remaining, d.ResetAfter)
	token.Take(first.Add(20*time.Second), 99)
	d = token.Take(first.Add(30*time.Second), 1)
	fmt.Printf("13:01:37 allowed=%v retry in %v\n", d.Allowed, d.RetryAfter)

	// The window closed at 13:02:07; the next occurrence, at 13:05:00,
	// opens a new one that runs to 13:06:00.
	d = token.Take(time.Date(2026, 3, 18, 13, 5, 0, 0, time.UTC), 1)
	fmt.Printf("13:05:00 allowed=%v remaining=%d resets in %v\n", d.Allowed, d.Remaining, d.ResetAfter)
	// Output:
	// 13:01:07 allowed=true remaining=99 resets in 1m0s
	// 13:01:37 allowed=false retry in 30s
	// 13:05:00 allowed=true remaining=99 resets in 1m0s
}

// A user-defined limit and the system limit on one token, tracked
// independently: whichever is hit first takes effect, and an event that
// one refuses counts against neither: the system limit's refusals leave
// the user's daily quota alone, and the user limit's leave the system's
// minute alone.
func Example_userAndSystemLimits() {
	user, _ := rolling.New(rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "user"})
	system, _ := rolling.New(rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system"})
	start := time.Date(2026, 3, 18, 0, 0, 0, 0, time.UTC)

	// 1000 events per second for 10 seconds.
	admitted := 0
	var last ratekit.Decision
	for i := 0; i < 10_000; i++ {
		d := ratekit.TakeAll(start.Add(time.Duration(i)*time.Millisecond), 1, user, system)
		if d.Allowed {
			admitted++
		} else {
			last = d
		}
	}
	fmt.Printf("admitted %d; refused by %q, retry in %v\n", admitted, last.Policy, last.RetryAfter)
	fmt.Printf("daily quota left: %d\n", user.Peek(start.Add(10*time.Second), 0).Remaining)

	// A staging token with a user-defined limit of 3 a day: the system
	// limit is asked first and admits all 10 events, but the 7 that the
	// user limit refuses are given back to it.
	stagingUser, _ := rolling.New(rolling.Config{Limit: 3, Window: 24 * time.Hour, Name: "user"})
	stagingSystem, _ := rolling.New(rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system"})
	admitted = 0
	for range 10 {
		if ratekit.TakeAll(start, 1, stagingSystem, stagingUser).Allowed {
			admitted++
		}
	}
	fmt.Printf("staging: admitted %d of 10; system limit left this minute: %d\n",
		admitted, stagingSystem.Peek(start, 0).Remaining)
	// Output:
	// admitted 5500; refused by "system", retry in 50.001s
	// daily quota left: 94500
	// staging: admitted 3 of 10; system limit left this minute: 5497
}

// Rollbar posts a System Message when a token's limit is reached: once per
// window, by the first refused event.
func ExampleConfig_onLimitReached() {
	token, _ := rolling.New(rolling.Config{
		Limit: 2, Window: time.Minute, Name: "post_server_item",
		OnLimitReached: func(d ratekit.Decision) {
			fmt.Printf("Your rate limit has been reached for access_token %s (resets in %v)\n", d.Policy, d.RetryAfter)
		},
	})
	now := time.Date(2026, 3, 18, 13, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ { // three refused, one message
		token.Take(now.Add(time.Duration(i)*time.Second), 1)
	}
	// Output:
	// Your rate limit has been reached for access_token post_server_item (resets in 58s)
}

// A 30-day quota survives a restart: the state is saved in wall-clock
// terms, so the days the process was down count.
func ExampleLimiter_MarshalBinary() {
	cfg := rolling.Config{Limit: 1_000_000, Window: 30 * 24 * time.Hour}
	before, _ := rolling.New(cfg)
	opened := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	before.Take(opened, 250_000)
	state, _ := before.MarshalBinary()

	after, _ := rolling.New(cfg) // a new process, 12 days later
	if err := after.UnmarshalBinary(state); err != nil {
		panic(err)
	}
	d := after.Peek(opened.Add(12*24*time.Hour), 0)
	fmt.Printf("remaining %d, resets in %v\n", d.Remaining, d.ResetAfter)
	// Output:
	// remaining 750000, resets in 432h0m0s
}

// "Changes to rate limits take effect immediately": the open window keeps
// its start and its count, and the new Limit and Window apply to it. The
// change happens at 09:10, read on the Config's Clock.
func ExampleLimiter_Reconfigure() {
	token, _ := rolling.New(rolling.Config{Limit: 1000, Window: time.Hour})
	opened := time.Date(2026, 3, 18, 9, 0, 0, 0, time.UTC)
	token.Take(opened, 600)

	now := clock.NewMock()
	now.Set(opened.Add(10 * time.Minute))
	_ = token.Reconfigure(rolling.Config{Limit: 500, Window: 30 * time.Minute, Clock: now})
	d := token.Take(opened.Add(10*time.Minute), 1)
	fmt.Printf("allowed=%v remaining=%d retry in %v\n", d.Allowed, d.Remaining, d.RetryAfter)
	// Output:
	// allowed=false remaining=0 retry in 20m0s
}

// Rollbar's rate limits are per project access token: each token's window
// opens at its first occurrence. New in each factory: limiters of equal
// Configs share their parameters, so each token costs one small limiter,
// whose window and once-per-window System Message are its own.
func ExampleNew_perKey() {
	perMinute := rolling.Config{
		Limit: 100, Window: time.Minute, Name: "100/min",
		OnLimitReached: func(d ratekit.Decision) {
			fmt.Printf("System Message: Your rate limit has been reached (%s, resets in %v)\n", d.Policy, d.RetryAfter)
		},
	}
	perMonth := rolling.Config{Limit: 1_000_000, Window: 30 * 24 * time.Hour, Name: "1M/30d"}
	for _, cfg := range []rolling.Config{perMinute, perMonth} {
		if err := cfg.Validate(); err != nil {
			panic(err)
		}
	}
	minute := ratekit.NewKeyed(func(string) *rolling.Limiter { l, _ := rolling.New(perMinute); return l }, ratekit.KeyedConfig{})
	month := ratekit.NewKeyed(func(string) *rolling.Limiter { l, _ := rolling.New(perMonth); return l }, ratekit.KeyedConfig{})
	post := func(at time.Time, token string) ratekit.Decision {
		return ratekit.TakeAll(at, 1, minute.Get(token), month.Get(token))
	}

	first := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC) // the web token's first occurrence
	for i := range 100 {
		post(first.Add(time.Duration(i)*100*time.Millisecond), "web")
	}
	fmt.Println("web ", post(first.Add(20*time.Second), "web"))
	fmt.Println("web ", post(first.Add(21*time.Second), "web"))
	fmt.Println("cron", post(first.Add(30*time.Second), "cron"))
	fmt.Println("web ", post(first.Add(time.Minute), "web"))
	// Output:
	// System Message: Your rate limit has been reached (100/min, resets in 40s)
	// web  denied policy="100/min" limit=100 remaining=0 window=1m0s reset=40s retry=40s
	// web  denied policy="100/min" limit=100 remaining=0 window=1m0s reset=39s retry=39s
	// cron allowed policy="100/min" limit=100 remaining=99 window=1m0s reset=1m0s retry=0s
	// web  allowed policy="100/min" limit=100 remaining=99 window=1m0s reset=1m0s retry=0s
}
