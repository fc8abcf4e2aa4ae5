package tokenbucket_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// A client paces its own requests. Sanity refuses more than 25 mutations
// per second from one IP, in any second (a sliding window, enforced by the
// server), and advises clients to stay under it by spacing requests out. A
// bucket of 20 per second with a burst of 5 lets 5 go at once, then one
// every 50 ms, and says exactly when the next may go; in no second does it
// send more than 5 + 20 = 25.
func ExampleLimiter_Take() {
	pace, err := tokenbucket.New(tokenbucket.Config{Limit: 20, Window: time.Second, Burst: 5, Name: "mutations"})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	for range 5 {
		pace.Take(now, 1)
	}
	fmt.Println(pace.Take(now, 1))
	fmt.Println(pace.Take(now.Add(50*time.Millisecond), 1))
	// Output:
	// denied policy="mutations" limit=5 remaining=0 window=250ms reset=250ms retry=50ms
	// allowed policy="mutations" limit=5 remaining=0 window=250ms reset=250ms retry=0s
}

// The pacing of ExampleLimiter_Take held against the server's limit: a
// client that sends as fast as its bucket allows for ten seconds, checked
// by a sliding log of 25 per second (Sanity's limit). With a burst of 5 no
// mutation is refused; with a burst of 10 the first second sends 29, and
// the server refuses 4.
func ExampleLimiter_Take_pacing() {
	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	for _, burst := range []int{5, 10} {
		pace, _ := tokenbucket.New(tokenbucket.Config{Limit: 20, Window: time.Second, Burst: burst})
		server, _ := slidingwindow.NewLog(slidingwindow.Config{Limit: 25, Window: time.Second})
		sent, refused := 0, 0
		for now := start; now.Before(start.Add(10 * time.Second)); {
			d := pace.Take(now, 1)
			if !d.Allowed {
				now = now.Add(d.RetryAfter) // wait exactly as long as the bucket says
				continue
			}
			sent++
			if !server.Take(now, 1).Allowed {
				refused++
			}
		}
		fmt.Printf("burst %d: sent %d, refused %d\n", burst, sent, refused)
	}
	// Output:
	// burst 5: sent 204, refused 0
	// burst 10: sent 209, refused 4
}

// A Decision carries what rate-limit headers need. Here an API that
// documents its limit as bursts of up to 100 requests per key, refilled at
// 10 per second: X-RateLimit-Limit is the burst, and Reset the seconds
// until the bucket is full again.
func ExampleLimiter_Take_headers() {
	l, _ := tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 100, Name: "key"})
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	l.Take(now, 90)
	d := l.Take(now.Add(200*time.Millisecond), 1)
	seconds := func(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }
	fmt.Println("X-RateLimit-Limit:", d.Limit)
	fmt.Println("X-RateLimit-Remaining:", d.Remaining)
	fmt.Println("X-RateLimit-Reset:", seconds(d.ResetAfter))
	d = l.Take(now.Add(200*time.Millisecond), 20)
	fmt.Println("429 Retry-After:", seconds(d.RetryAfter), "exactly", d.RetryAfter)
	// Output:
	// X-RateLimit-Limit: 100
	// X-RateLimit-Remaining: 11
	// X-RateLimit-Reset: 9
	// 429 Retry-After: 1 exactly 900ms
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

// A client of Sanity's API paces itself under two of its per-IP limits: 25
// mutations per second and 500 API calls per second of any kind, each with
// a bucket that sends at most that many in any second (20 a second with a
// burst of 5; 400 a second with a burst of 100). A mutation takes from both
// buckets, a query from the API-call bucket only. AllOf takes all or none,
// so mutations the mutation bucket refuses use up none of the API-call
// budget the queries need.
func Example_composed() {
	calls, _ := tokenbucket.New(tokenbucket.Config{Limit: 400, Window: time.Second, Burst: 100, Name: "api-calls"})
	mutationRate, _ := tokenbucket.New(tokenbucket.Config{Limit: 20, Window: time.Second, Burst: 5, Name: "mutations"})
	mutation := ratekit.AllOf(calls, mutationRate)
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	count := func(l ratekit.Limiter, tries int) (admitted int, last ratekit.Decision) {
		for range tries {
			if last = l.Take(now, 1); last.Allowed {
				admitted++
			}
		}
		return admitted, last
	}
	n, d := count(mutation, 30) // 30 mutations at one instant
	fmt.Println("mutations sent", n, "then", d.Policy, "retry", d.RetryAfter)
	n, d = count(calls, 100) // then 100 queries
	fmt.Println("queries sent", n, "then", d.Policy, "retry", d.RetryAfter)
	// Output:
	// mutations sent 5 then mutations retry 50ms
	// queries sent 95 then api-calls retry 2.5ms
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

// A bucket per API key, for every key that calls: New in the factory.
// Buckets of equal Configs share their parameters, so each key costs one
// small allocation; the factory still decides per key, and keys on a free
// plan get a tenth of the rate and of the burst. (The Configs are validated
// once, so New in the factory cannot fail.)
func ExampleNew_perKey() {
	paid := tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 100, Name: "key"}
	free := tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 10, Name: "key-free"}
	for _, cfg := range []tokenbucket.Config{paid, free} {
		if err := cfg.Validate(); err != nil {
			panic(err)
		}
	}
	keys := ratekit.NewKeyed(func(key string) *tokenbucket.Limiter {
		if strings.HasPrefix(key, "free_") {
			l, _ := tokenbucket.New(free)
			return l
		}
		l, _ := tokenbucket.New(paid)
		return l
	}, ratekit.KeyedConfig{MaxKeys: 1_000_000})

	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	take := func(key string, n int) {
		fmt.Printf("%-12s %3d: %v\n", key, n, keys.Take(now, key, n))
	}
	take("key_acme", 100)
	take("key_acme", 1)
	take("key_globex", 1)
	take("free_initech", 10)
	take("free_initech", 1)
	// Output:
	// key_acme     100: allowed policy="key" limit=100 remaining=0 window=10s reset=10s retry=0s
	// key_acme       1: denied policy="key" limit=100 remaining=0 window=10s reset=10s retry=100ms
	// key_globex     1: allowed policy="key" limit=100 remaining=99 window=10s reset=100ms retry=0s
	// free_initech  10: allowed policy="key-free" limit=10 remaining=0 window=10s reset=10s retry=0s
	// free_initech   1: denied policy="key-free" limit=10 remaining=0 window=10s reset=10s retry=1s
}
