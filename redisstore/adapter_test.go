package redisstore_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
	"github.com/ratekit/ratekit/rolling"
)

// errorLog collects what OnError reports.
type errorLog struct {
	mu   sync.Mutex
	keys []string
	errs []error
}

func (e *errorLog) hook(key string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys = append(e.keys, key)
	e.errs = append(e.errs, err)
}

func (e *errorLog) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.errs)
}

// deadClient is a client of a loopback port nothing listens on: every call
// fails at once with a connection error.
func deadClient(t *testing.T) *redis.Client {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + itoa(port), MaxRetries: -1,
		DialerRetries: 1, DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

var perMinute = redisstore.Config{Algorithm: redisstore.Rolling, Name: "api", Limit: 5, Window: time.Minute}

func mustAdapter(t *testing.T, l *redisstore.Limiter, key string, cfg redisstore.AdapterConfig) *redisstore.Adapter {
	t.Helper()
	a, err := l.For(key, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAdapterWhenRedisAnswers(t *testing.T) {
	s, _ := newStore(t)
	l := mustLimiter(t, s, perMinute)
	var log errorLog
	a := mustAdapter(t, l, "org1", redisstore.AdapterConfig{OnFailure: redisstore.FailClosed, OnError: log.hook, CallerTime: true})
	embedded, _ := rolling.New(rolling.Config{Name: "api", Limit: 5, Window: time.Minute})
	for i := range 8 {
		now := start.Add(time.Duration(i) * 10 * time.Second)
		if got, want := a.Take(now, 1), embedded.Take(now, 1); got != want {
			t.Fatalf("Take %d = %v; embedded says %v", i, got, want)
		}
	}
	a.Refund(start.Add(70*time.Second), 1)
	embedded.Refund(start.Add(70*time.Second), 1)
	now := start.Add(75 * time.Second)
	if got, want := a.Peek(now, 5), embedded.Peek(now, 5); got != want {
		t.Fatalf("Peek after Refund = %v; embedded says %v", got, want)
	}
	// As a member of an embedded composite.
	burst, _ := rolling.New(rolling.Config{Name: "burst", Limit: 1, Window: time.Second})
	if d := ratekit.TakeAll(now, 1, burst, a); !d.Allowed {
		t.Fatalf("TakeAll(burst, adapter) = %v; want allowed", d)
	}
	if d := ratekit.TakeAll(now, 1, burst, a); d.Allowed || d.Policy != "burst" {
		t.Fatalf("second TakeAll = %v; want the burst limit's denial", d)
	}
	if log.count() != 0 {
		t.Fatalf("OnError called %d times with Redis up: %v", log.count(), log.errs)
	}
}

// TestAdapterFailurePolicies points adapters at a port where nothing
// listens: each decides by its policy and reports every error.
func TestAdapterFailurePolicies(t *testing.T) {
	needRedis(t)
	s := mustStore(t, deadClient(t))
	l := mustLimiter(t, s, perMinute)
	if _, err := l.Take(context.Background(), "org1", 1); err == nil {
		t.Fatal("Take with Redis down: want an error")
	}

	t.Run("FailOpen", func(t *testing.T) {
		var log errorLog
		a := mustAdapter(t, l, "org1", redisstore.AdapterConfig{OnError: log.hook})
		for range 10 {
			if d := a.Take(start, 2); !d.Allowed || d.Remaining != 3 || d.Policy != "api" || d.Limit != 5 {
				t.Fatalf("FailOpen Take(2) = %v; want allowed as by a fresh limiter", d)
			}
		}
		if d := a.Take(start, 6); d.Allowed || d.RetryAfter != ratekit.Never {
			t.Fatalf("FailOpen Take(6) over the limit = %v; want Never", d)
		}
		a.Refund(start, 1)
		if log.count() != 12 || log.keys[0] != "org1" {
			t.Fatalf("OnError called %d times (%v); want 12 for org1", log.count(), log.keys)
		}
	})
	t.Run("FailClosed", func(t *testing.T) {
		a := mustAdapter(t, l, "org1", redisstore.AdapterConfig{OnFailure: redisstore.FailClosed, RetryAfter: 5 * time.Second})
		if d := a.Take(start, 1); d.Allowed || d.RetryAfter != 5*time.Second {
			t.Fatalf("FailClosed Take = %v; want denied, RetryAfter 5s", d)
		}
		if d := a.Peek(start, 0); !d.Allowed {
			t.Fatalf("FailClosed Peek(0) = %v; n == 0 is always allowed", d)
		}
		if _, err := ratekit.Wait(context.Background(), nil, a, 9); !errors.Is(err, ratekit.ErrExceedsLimit) {
			t.Fatalf("Wait(9) on a FailClosed adapter: %v; want ErrExceedsLimit", err)
		}
	})
	t.Run("FailFallback", func(t *testing.T) {
		local, _ := rolling.New(rolling.Config{Name: "api-local", Limit: 2, Window: time.Minute})
		a := mustAdapter(t, l, "org1", redisstore.AdapterConfig{OnFailure: redisstore.FailFallback, Fallback: local})
		got := []bool{a.Take(start, 1).Allowed, a.Take(start, 1).Allowed, a.Take(start, 1).Allowed}
		if !got[0] || !got[1] || got[2] {
			t.Fatalf("FailFallback Takes = %v; want the local limit of 2", got)
		}
		if d := a.Peek(start, 1); d.Policy != "api-local" || d.Allowed {
			t.Fatalf("FailFallback Peek = %v; want the local limiter's denial", d)
		}
		a.Refund(start, 1)
		if d := a.Take(start, 1); !d.Allowed {
			t.Fatalf("after Refund, FailFallback Take = %v; want allowed by the fallback", d)
		}
	})
}

// TestAdapterTimeout: a server that accepts and never answers is cut off by
// the Adapter's Timeout, and the policy decides.
func TestAdapterTimeout(t *testing.T) {
	needRedis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true,
		Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	l := mustLimiter(t, mustStore(t, c), perMinute)
	var log errorLog
	a := mustAdapter(t, l, "org1", redisstore.AdapterConfig{OnFailure: redisstore.FailClosed, Timeout: 20 * time.Millisecond, OnError: log.hook})
	if d := a.Take(start, 1); d.Allowed || d.RetryAfter != redisstore.DefaultRetryAfter {
		t.Fatalf("Take against a hung server = %v; want FailClosed's denial", d)
	}
	var ne net.Error
	if log.count() != 1 || !errors.Is(log.errs[0], context.DeadlineExceeded) && !(errors.As(log.errs[0], &ne) && ne.Timeout()) {
		t.Fatalf("OnError got %v; want one timeout", log.errs)
	}
}

// TestAdapterCooldown: after a failure, adapters with a Cooldown decide by
// policy without trying Redis, for every key of the Store.
func TestAdapterCooldown(t *testing.T) {
	needRedis(t)
	c := deadClient(t)
	var dials atomic.Int64
	c.AddHook(dialCounter{&dials})
	l := mustLimiter(t, mustStore(t, c), perMinute)
	var log errorLog
	cfg := redisstore.AdapterConfig{OnFailure: redisstore.FailClosed, Cooldown: time.Hour, OnError: log.hook}
	a, b := mustAdapter(t, l, "org1", cfg), mustAdapter(t, l, "org2", cfg)
	for range 5 {
		if a.Take(start, 1).Allowed || b.Take(start, 1).Allowed {
			t.Fatal("FailClosed admitted with Redis down")
		}
	}
	if got := dials.Load(); got != 1 {
		t.Fatalf("%d calls reached the client; want 1, then the cooldown", got)
	}
	if log.count() != 10 || !errors.Is(log.errs[9], redisstore.ErrCoolingDown) {
		t.Fatalf("OnError: %v; want 10 errors, the last ErrCoolingDown", log.errs)
	}
}

// dialCounter counts the commands a client processes.
type dialCounter struct{ n *atomic.Int64 }

func (dialCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h dialCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (dialCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestAdapterConfigErrors(t *testing.T) {
	s, _ := newStore(t)
	l := mustLimiter(t, s, perMinute)
	for name, cfg := range map[string]redisstore.AdapterConfig{
		"fallback without limiter": {OnFailure: redisstore.FailFallback},
		"unknown policy":           {OnFailure: 9},
		"negative timeout":         {Timeout: -1},
		"negative retry":           {RetryAfter: -1},
		"negative cooldown":        {Cooldown: -1},
	} {
		if _, err := l.For("k", cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%s: For = %v; want ErrInvalidConfig", name, err)
		}
	}
}

// TestAdapterInKeyed: Adapters in a ratekit.Keyed, one per org, share the
// Redis state with every replica; Sweep drops them all, as their state is
// in Redis.
func TestAdapterInKeyed(t *testing.T) {
	s, _ := newStore(t)
	l := mustLimiter(t, s, perMinute)
	orgs := ratekit.NewKeyed(func(org string) *redisstore.Adapter {
		a, err := l.For(org, redisstore.AdapterConfig{CallerTime: true})
		if err != nil {
			panic(err) // the config is constant and valid
		}
		return a
	}, ratekit.KeyedConfig{MaxKeys: 1000})
	for range 5 {
		if d := orgs.Take(start, "org1", 1); !d.Allowed {
			t.Fatalf("Take = %v", d)
		}
	}
	if d := orgs.Take(start, "org1", 1); d.Allowed {
		t.Fatalf("sixth Take of 5 per minute = %v", d)
	}
	if n := orgs.Sweep(start); n != 1 || orgs.Len() != 0 {
		t.Fatalf("Sweep dropped %d, Len %d; want the one Adapter dropped", n, orgs.Len())
	}
	if d := orgs.Take(start, "org1", 1); d.Allowed {
		t.Fatalf("after Sweep, Take = %v; the quota is in Redis and still used up", d)
	}
}
