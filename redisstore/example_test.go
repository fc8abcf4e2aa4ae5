package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
	"github.com/ratekit/ratekit/rolling"
)

// exampleClient connects to the redis-server the tests started. In a
// service it is redis.NewClient(&redis.Options{Addr: ..., ContextTimeoutEnabled: true}).
func exampleClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: sharedAddr, ContextTimeoutEnabled: true})
}

// Rollbar's limits, shared by every replica: a user-defined 100,000 per day
// per token and the system's 5,500 per minute, each a window that the
// token's first event opens (Rollbar starts the counter at the first
// occurrence: the Rolling algorithm), taken all or none, so events the
// system limit refuses do not use up the daily quota. Times are injected
// here to make the output exact; a service calls TakeAll and Redis's clock
// decides.
func Example() {
	rdb := exampleClient()
	defer rdb.Close()
	store, _ := redisstore.New(rdb, redisstore.Options{Prefix: "example:"})
	daily, _ := store.Limiter(redisstore.Config{Algorithm: redisstore.Rolling, Name: "user", Limit: 100_000, Window: 24 * time.Hour})
	system, _ := store.Limiter(redisstore.Config{Algorithm: redisstore.Rolling, Name: "system", Limit: 5_500, Window: time.Minute})
	ctx := context.Background()
	tok := "{tok1}" // one hash tag: both keys in one Redis Cluster slot
	defer daily.Reset(ctx, tok)
	defer system.Reset(ctx, tok)

	first := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC) // the token's first event
	admitted := 0
	for i := range 6000 { // 1000 events a second for 6 seconds
		now := first.Add(time.Duration(i) * time.Millisecond)
		if d, err := store.TakeAllAt(ctx, now, 1, daily.On(tok), system.On(tok)); err == nil && d.Allowed {
			admitted++
		}
	}
	// The system window closes a minute after the first event, at
	// 13:02:07: 54 s after the last event, not at 13:02:00.
	d, _ := store.PeekAllAt(ctx, first.Add(6*time.Second), 1, daily.On(tok), system.On(tok))
	fmt.Println("admitted:", admitted)
	fmt.Println(d)
	u, _ := daily.PeekAt(ctx, tok, first.Add(6*time.Second), 0)
	fmt.Println("daily remaining:", u.Remaining)
	// Output:
	// admitted: 5500
	// denied policy="system" limit=5500 remaining=0 window=1m0s reset=54s retry=54s
	// daily remaining: 94500
}

// Sanity's 500 concurrent queries per dataset across replicas: a lease per
// query, released when it finishes; a replica that dies mid-query gives its
// units back when the lease expires.
func ExampleSemaphore() {
	rdb := exampleClient()
	defer rdb.Close()
	store, _ := redisstore.New(rdb, redisstore.Options{Prefix: "example:"})
	queries, _ := store.Semaphore(redisstore.SemaphoreConfig{Name: "queries", Limit: 500, Lease: 30 * time.Second})
	ctx := context.Background()

	lease, d, err := queries.Take(ctx, "dataset1", 1)
	if err != nil || !d.Allowed {
		fmt.Println("429", d.RetryAfter)
		return
	}
	fmt.Println("running, free:", d.Remaining)
	// ... the query; Extend(ctx, lease) every few seconds if it runs long ...
	_ = queries.Release(ctx, lease)
	d, _ = queries.Peek(ctx, "dataset1", 0)
	fmt.Println("done, free:", d.Remaining)
	// Output:
	// running, free: 499
	// done, free: 500
}

// A Redis limiter as a ratekit.Limiter: composed with an embedded burst
// limit, failing over to a local limiter (this replica's share of the
// quota) while Redis is unreachable or slower than Timeout. Errors go to
// the log, not to the output: whether Redis or the fallback decides, the
// burst limit binds here.
func ExampleLimiter_For() {
	rdb := exampleClient()
	defer rdb.Close()
	store, _ := redisstore.New(rdb, redisstore.Options{Prefix: "example:"})
	perMinute, _ := store.Limiter(redisstore.Config{Algorithm: redisstore.SlidingCounter, Name: "api", Limit: 60, Window: time.Minute})
	local, _ := rolling.New(rolling.Config{Name: "api-local", Limit: 20, Window: time.Minute})
	shared, _ := perMinute.For("org42", redisstore.AdapterConfig{
		OnFailure: redisstore.FailFallback,
		Fallback:  local,
		Timeout:   50 * time.Millisecond,
		Cooldown:  time.Second,
		OnError:   func(key string, err error) { log.Println("redis down for", key, err) },
	})
	defer perMinute.Reset(context.Background(), "org42")
	burst, _ := rolling.New(rolling.Config{Name: "burst", Limit: 10, Window: time.Second})

	d := ratekit.TakeAll(time.Now(), 1, burst, shared)
	fmt.Println(d.Allowed, d.Policy, d.Remaining)
	// Output:
	// true burst 9
}

// An org's 600 requests a minute, decided by two replicas with quota
// leases and the deny cache: a hot org costs a few round trips a second
// instead of one per request, and the two admit exactly 600 together.
// Times are injected to make the output exact.
func ExampleLimiter_Local() {
	rdb := exampleClient()
	defer rdb.Close()
	store, _ := redisstore.New(rdb, redisstore.Options{Prefix: "example:"})
	perOrg, _ := store.Limiter(redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "org", Limit: 600, Window: time.Minute})
	ctx := context.Background()
	defer perOrg.Reset(ctx, "org42")
	a, _ := perOrg.Local(redisstore.LocalConfig{Lease: true, DenyCache: true})
	b, _ := perOrg.Local(redisstore.LocalConfig{Lease: true, DenyCache: true})
	defer a.Close(ctx)
	defer b.Close(ctx)

	minute := time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)
	admitted := 0
	for i := range 2000 { // 1000 requests a second, alternating replicas
		now := minute.Add(time.Duration(i) * time.Millisecond)
		q := []*redisstore.Local{a, b}[i%2]
		if d, err := q.TakeAt(ctx, "org42", now, 1); err == nil && d.Allowed {
			admitted++
		}
	}
	d, _ := a.TakeAt(ctx, "org42", minute.Add(2*time.Second), 1)
	fmt.Println("admitted:", admitted)
	fmt.Println(d)
	// Output:
	// admitted: 600
	// denied policy="org" limit=600 remaining=0 window=1m0s reset=58s retry=58s
}
