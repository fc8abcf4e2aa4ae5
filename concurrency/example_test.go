package concurrency_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
)

// Sanity allows at most 100 concurrent mutations per dataset. A mutation
// takes a unit when it starts and releases it when it finishes.
func Example() {
	mutations, err := concurrency.New(concurrency.Config{Limit: 100, Name: "dataset-mutations"})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)

	fmt.Println(mutations.Take(start, 99))
	fmt.Println(mutations.Take(start, 1))
	// The 101st concurrent mutation is refused. With no history the
	// estimate of when a unit comes back is 1ms.
	fmt.Println(mutations.Take(start, 1))

	// Mutations come and go, each holding its unit for 5s: one finishes
	// and another starts every 50ms. The estimate approaches the 5s hold
	// and RetryAfter the 50ms between releases.
	for i := 1; i <= 1000; i++ {
		mutations.Release(1)
		mutations.Take(start.Add(time.Duration(i)*50*time.Millisecond), 1)
	}
	fmt.Println(mutations.Take(start.Add(50*time.Second), 1))
	// Output:
	// allowed policy="dataset-mutations" limit=100 remaining=1 window=0s reset=1ms retry=0s
	// allowed policy="dataset-mutations" limit=100 remaining=0 window=0s reset=1ms retry=0s
	// denied policy="dataset-mutations" limit=100 remaining=0 window=0s reset=1ms retry=1ms
	// denied policy="dataset-mutations" limit=100 remaining=0 window=0s reset=4.94205815s retry=49.420582ms
}

// Acquire waits for units instead of refusing, first come first served.
func ExampleLimiter_Acquire() {
	queries, _ := concurrency.New(concurrency.Config{Limit: 2, Name: "queries"})

	release1, _ := queries.Acquire(context.Background(), 1)
	release2, _ := queries.Acquire(context.Background(), 1)

	// Both units are held: a request whose deadline has passed returns at
	// once, holding nothing.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := queries.Acquire(ctx, 1)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), queries.Held())

	done := make(chan struct{})
	go func() {
		defer close(done)
		release, err := queries.Acquire(context.Background(), 2) // waits for both
		fmt.Println("acquired 2:", err, queries.Held())
		release()
	}()
	for queries.Waiting() == 0 {
		runtime.Gosched() // only to make the output's order fixed
	}
	release1()
	release1() // idempotent: the second call does nothing
	release2()
	<-done

	_, err = queries.Acquire(context.Background(), 3)
	fmt.Println(errors.Is(err, ratekit.ErrExceedsLimit), queries.Held())
	// Output:
	// true 2
	// acquired 2: <nil> 2
	// true 0
}

// A mutation passes only if both Sanity's per-IP mutation rate (25 a
// second) and the dataset's ceiling of 100 concurrent mutations admit it.
// Rate units come back with time; concurrency units come back when the
// request finishes, by ratekit.ReleaseAll (or All.Release).
func Example_allOf() {
	perIP := &perSecond{limit: 25, name: "ip-mutations"} // any rate ratekit.Limiter
	dataset, _ := concurrency.New(concurrency.Config{Limit: 100, Name: "dataset-mutations"})
	limit := ratekit.AllOf(perIP, dataset)

	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	// burst sends 30 long-running mutations in one second.
	burst := func(now time.Time) {
		admitted, last := 0, ratekit.Decision{}
		for i := 0; i < 30; i++ {
			if d := limit.Take(now, 1); d.Allowed {
				admitted++
			} else {
				last = d
			}
		}
		fmt.Printf("+%v: %d admitted, %d in flight, %s refused the rest\n",
			now.Sub(start), admitted, dataset.Held(), last.Policy)
	}
	for s := 0; s < 5; s++ {
		burst(start.Add(time.Duration(s) * time.Second))
	}
	// Ten mutations finish.
	for i := 0; i < 10; i++ {
		ratekit.ReleaseAll(1, limit)
	}
	burst(start.Add(5 * time.Second))
	// Output:
	// +0s: 25 admitted, 25 in flight, ip-mutations refused the rest
	// +1s: 25 admitted, 50 in flight, ip-mutations refused the rest
	// +2s: 25 admitted, 75 in flight, ip-mutations refused the rest
	// +3s: 25 admitted, 100 in flight, ip-mutations refused the rest
	// +4s: 0 admitted, 100 in flight, dataset-mutations refused the rest
	// +5s: 10 admitted, 100 in flight, dataset-mutations refused the rest
}

// Lowering the limit applies to the units already held: nothing new is
// admitted until enough have been released.
func ExampleLimiter_Reconfigure() {
	l, _ := concurrency.New(concurrency.Config{Limit: 10})
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	l.Take(now, 8)
	_ = l.Reconfigure(concurrency.Config{Limit: 5})
	fmt.Println(l.Take(now, 1).Allowed, l.Held())
	l.Release(4)
	fmt.Println(l.Take(now, 1).Allowed, l.Held())
	// Output:
	// false 8
	// true 5
}

// perSecond stands in for a rate limiter from the sibling packages
// (fixedwindow, slidingwindow): limit units per second, windows aligned to
// the second. It is deliberately simple, with a mutex.
type perSecond struct {
	mu     sync.Mutex
	limit  int
	name   string
	window int64 // Unix second of the current window
	used   int
}

func (p *perSecond) decide(now time.Time, n int, take bool) ratekit.Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sec := now.Unix(); sec != p.window {
		p.window, p.used = sec, 0
	}
	untilNext := time.Unix(p.window+1, 0).Sub(now)
	d := ratekit.Decision{Limit: p.limit, Window: time.Second, Policy: p.name}
	switch {
	case n < 0 || n > p.limit:
		d.RetryAfter = ratekit.Never
	case p.used+n > p.limit:
		d.RetryAfter = untilNext
	default:
		d.Allowed = true
		if take {
			p.used += n
		} else {
			d.Remaining = p.limit - p.used - n
		}
	}
	if take || !d.Allowed {
		d.Remaining = p.limit - p.used
	}
	if p.used > 0 {
		d.ResetAfter = untilNext
	}
	return d
}

func (p *perSecond) Take(now time.Time, n int) ratekit.Decision { return p.decide(now, n, true) }
func (p *perSecond) Peek(now time.Time, n int) ratekit.Decision { return p.decide(now, n, false) }
func (p *perSecond) Refund(at time.Time, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at.Unix() == p.window && n > 0 {
		p.used = max(0, p.used-n)
	}
}
