package concurrency_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/slidingwindow"
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

// TryAcquire is the yes or no of x/sync/semaphore's TryAcquire, for a
// caller that needs no Decision: a worker pool that sheds what it cannot
// start at once.
func ExampleLimiter_TryAcquire() {
	workers, _ := concurrency.New(concurrency.Config{Limit: 2, Name: "workers"})
	for job := 1; job <= 3; job++ {
		if !workers.TryAcquire(1) {
			fmt.Println("job", job, "shed")
			continue
		}
		fmt.Println("job", job, "started")
		// The job's goroutine calls workers.Release(1) when it finishes.
	}
	workers.Release(1)
	fmt.Println(workers.TryAcquire(1), workers.Held())
	// Output:
	// job 1 started
	// job 2 started
	// job 3 shed
	// true 2
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

// A mutation passes only if both Sanity's per-IP mutation rate (25 in any
// second: a sliding log) and the dataset's ceiling of 100 concurrent
// mutations admit it. Rate units come back with time; concurrency units
// come back when the request finishes, by ratekit.ReleaseAll (or
// All.Release). The burst at +600ms falls in the next second of the clock,
// but within a second of the first burst, so the IP's limit refuses it all.
func Example_allOf() {
	perIP, _ := slidingwindow.NewLog(slidingwindow.Config{Limit: 25, Window: time.Second, Name: "ip-mutations"})
	dataset, _ := concurrency.New(concurrency.Config{Limit: 100, Name: "dataset-mutations"})
	limit := ratekit.AllOf(perIP, dataset)

	start := time.Date(2026, 3, 18, 13, 1, 7, 600_000_000, time.UTC)
	// burst sends 30 long-running mutations at once.
	burst := func(after time.Duration) {
		admitted, last := 0, ratekit.Decision{}
		for i := 0; i < 30; i++ {
			if d := limit.Take(start.Add(after), 1); d.Allowed {
				admitted++
			} else {
				last = d
			}
		}
		fmt.Printf("+%v: %d admitted, %d in flight, %s refused the rest\n",
			after, admitted, dataset.Held(), last.Policy)
	}
	for _, after := range []time.Duration{0, 600 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second} {
		burst(after)
	}
	// Ten mutations finish.
	for i := 0; i < 10; i++ {
		ratekit.ReleaseAll(1, limit)
	}
	burst(5 * time.Second)
	// Output:
	// +0s: 25 admitted, 25 in flight, ip-mutations refused the rest
	// +600ms: 0 admitted, 25 in flight, ip-mutations refused the rest
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
