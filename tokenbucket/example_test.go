package tokenbucket_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Sanity allows 25 mutations per second per IP. A bucket of 25 refilling
// 25 per second admits a burst of 25, then one every 40 ms, and says exactly
// when the next one fits.
func ExampleLimiter_Take() {
	l, err := tokenbucket.New(tokenbucket.Config{Limit: 25, Window: time.Second, Burst: 25, Name: "mutations"})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	for i := 0; i < 25; i++ {
		l.Take(now, 1)
	}
	fmt.Println(l.Take(now, 1))
	fmt.Println(l.Take(now.Add(40*time.Millisecond), 1))
	// Output:
	// denied policy="mutations" limit=25 remaining=0 window=1s reset=1s retry=40ms
	// allowed policy="mutations" limit=25 remaining=0 window=1s reset=1s retry=0s
}

// A Decision carries what rate-limit headers need. Here a mail API's 600
// requests per minute per org, as a bucket that refills one request every
// 100 ms.
func ExampleLimiter_Take_headers() {
	l, _ := tokenbucket.New(tokenbucket.Config{Limit: 600, Window: time.Minute, Burst: 600, Name: "org"})
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	l.Take(now, 588)
	d := l.Take(now.Add(200*time.Millisecond), 1)
	seconds := func(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
	fmt.Println("X-RateLimit-Limit:", d.Limit)
	fmt.Println("X-RateLimit-Remaining:", d.Remaining)
	fmt.Println("X-RateLimit-Reset:", seconds(d.ResetAfter))
	d = l.Take(now.Add(200*time.Millisecond), 20)
	fmt.Println("429 Retry-After:", seconds(d.RetryAfter), "exactly", d.RetryAfter)
	// Output:
	// X-RateLimit-Limit: 600
	// X-RateLimit-Remaining: 13
	// X-RateLimit-Reset: 59
	// 429 Retry-After: 1 exactly 700ms
}

// 7 per 10 seconds is one unit every 1428571428.571... ns. The limiter keeps
// the fraction: the 7th unit after a drained start comes at exactly 10 s,
// not a nanosecond off, however long it runs.
func Example_exactRate() {
	l, _ := tokenbucket.New(tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 2})
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	l.Take(now, 2)
	at := time.Duration(0)
	for k := 1; k <= 7; k++ {
		d := l.Take(now.Add(at), 1)
		for !d.Allowed {
			at += d.RetryAfter
			d = l.Take(now.Add(at), 1)
		}
		fmt.Printf("unit %d at %v\n", k, at)
	}
	// Output:
	// unit 1 at 1.428571429s
	// unit 2 at 2.857142858s
	// unit 3 at 4.285714286s
	// unit 4 at 5.714285715s
	// unit 5 at 7.142857143s
	// unit 6 at 8.571428572s
	// unit 7 at 10s
}

// Rollbar tracks a user-defined limit and a system limit on one token
// independently, and events refused by one count against neither. AllOf
// composes two buckets that way.
func Example_composed() {
	daily, _ := tokenbucket.New(tokenbucket.Config{Limit: 100_000, Window: 24 * time.Hour, Burst: 100_000, Name: "user-daily"})
	system, _ := tokenbucket.New(tokenbucket.Config{Limit: 1000, Window: time.Second, Burst: 1000, Name: "system"})
	token := ratekit.AllOf(daily, system)
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	admitted := 0
	for i := 0; i < 1500; i++ { // 1500 events at one instant
		if token.Take(now, 1).Allowed {
			admitted++
		}
	}
	d := token.Take(now, 1)
	fmt.Println("admitted", admitted, "then", d.Policy, "retry", d.RetryAfter)
	fmt.Println("daily remaining", daily.Peek(now, 0).Remaining)
	// Output:
	// admitted 1000 then system retry 1ms
	// daily remaining 99000
}

// Wait reserves capacity and sleeps until it is due, on the Config's Clock.
// A wait that would outlast the context's deadline returns at once.
func ExampleLimiter_Wait() {
	mock := clock.NewMock()
	l, _ := tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1, Clock: mock})
	l.Allow()
	ctx, cancel := mock.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	d, err := l.Wait(ctx, 1)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), d.RetryAfter)
	// Output:
	// true 1s
}

// State survives a restart in wall-clock terms: the downtime counts as time
// in which the bucket refilled.
func ExampleLimiter_MarshalBinary() {
	cfg := tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 10}
	l, _ := tokenbucket.New(cfg)
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	l.Take(now, 10)
	saved, _ := l.MarshalBinary()

	restarted, _ := tokenbucket.New(cfg)
	if err := restarted.UnmarshalBinary(saved); err != nil {
		panic(err)
	}
	fmt.Println(restarted.Peek(now.Add(4*time.Second), 0).Remaining)
	// Output:
	// 4
}

// Reconfigure changes the rate and burst at once; the units taken stay
// counted, and refill at the new rate.
func ExampleLimiter_Reconfigure() {
	mock := clock.NewMock()
	l, _ := tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: mock})
	l.Take(mock.Now(), 4)
	_ = l.Reconfigure(tokenbucket.Config{Limit: 100, Window: time.Second, Burst: 50, Name: "upgraded", Clock: mock})
	fmt.Println(l.Peek(mock.Now(), 0))
	// Output:
	// allowed policy="upgraded" limit=50 remaining=46 window=500ms reset=40ms retry=0s
}

// Sanity's 25 mutations per second per client IP, for every IP that calls:
// a Template validates the Config once, and its limiters share their
// parameters, so each IP costs 32 bytes of bucket. Test keys of a mail API
// get a tenth of the live rate from a second Template.
func ExampleTemplate() {
	perIP, err := tokenbucket.NewTemplate(tokenbucket.Config{Limit: 25, Window: time.Second, Burst: 25, Name: "ip"})
	if err != nil {
		panic(err)
	}
	ips := ratekit.NewKeyed(func(netip.Addr) *tokenbucket.Limiter { return perIP.New() },
		ratekit.KeyedConfig{MaxKeys: 1_000_000})

	live, err := tokenbucket.NewTemplate(tokenbucket.Config{Limit: 600, Window: time.Minute, Burst: 600, Name: "org"})
	if err != nil {
		panic(err)
	}
	test, err := tokenbucket.NewTemplate(tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 60, Name: "org-test"})
	if err != nil {
		panic(err)
	}
	orgs := ratekit.NewKeyed(func(org string) *tokenbucket.Limiter {
		if strings.HasSuffix(org, "/test") {
			return test.New()
		}
		return live.New()
	}, ratekit.KeyedConfig{})

	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::7")
	ips.Take(now, a, 25)
	fmt.Println(a, ips.Take(now, a, 1))
	fmt.Println(b, ips.Take(now, b, 1))
	fmt.Println(orgs.Take(now, "acme", 1))
	fmt.Println(orgs.Take(now, "acme/test", 1))
	// Output:
	// 192.0.2.1 denied policy="ip" limit=25 remaining=0 window=1s reset=1s retry=40ms
	// 2001:db8::7 allowed policy="ip" limit=25 remaining=24 window=1s reset=40ms retry=0s
	// allowed policy="org" limit=600 remaining=599 window=1m0s reset=100ms retry=0s
	// allowed policy="org-test" limit=60 remaining=59 window=1m0s reset=1s retry=0s
}
