package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/redisstore"
	"github.com/ratekit/ratekit/rolling"
)

func mustHolder(t *testing.T, m *redisstore.Semaphore, key string, cfg redisstore.AdapterConfig) *redisstore.Holder {
	t.Helper()
	h, err := m.For(key, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHolderComposes: a Semaphore key as a ratekit.Holder in an embedded
// composite, with whole and partial releases.
func TestHolderComposes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	m := mustSemaphore(t, s, redisstore.SemaphoreConfig{Name: "mutations", Limit: 5, Lease: time.Minute})
	h := mustHolder(t, m, "ds", redisstore.AdapterConfig{})
	rate, _ := rolling.New(rolling.Config{Name: "rate", Limit: 100, Window: time.Second})
	all := ratekit.AllOf(rate, h)
	now := time.Now()
	if d := all.Take(now, 3); !d.Allowed || d.Policy != "mutations" || d.Remaining != 2 {
		t.Fatalf("AllOf Take(3) = %v; want allowed, bound by the semaphore with 2 free", d)
	}
	if d := all.Take(now, 3); d.Allowed || d.Policy != "mutations" || d.RetryAfter <= 50*time.Second || d.RetryAfter > time.Minute {
		t.Fatalf("AllOf Take(3) with 2 free = %v; want the semaphore's denial", d)
	}
	if d := rate.Peek(now, 0); d.Remaining != 97 {
		t.Fatalf("the denied Take used the rate limit: %v", d)
	}
	h.Release(1) // shrinks the lease of 3 to 2
	if d, _ := m.Peek(ctx, "ds", 0); d.Remaining != 3 || h.Held() != 2 {
		t.Fatalf("after Release(1): Redis says %v, Held %d; want 3 free, 2 held", d, h.Held())
	}
	if lost, err := h.Extend(ctx); lost != 0 || err != nil {
		t.Fatalf("Extend = %d, %v", lost, err)
	}
	all.Release(2)
	if d, _ := m.Peek(ctx, "ds", 0); d.Remaining != 5 || h.Held() != 0 {
		t.Fatalf("after releasing everything: %v, Held %d", d, h.Held())
	}
	h.Release(1) // nothing held: nothing happens
	if d, _ := m.Peek(ctx, "ds", 0); d.Remaining != 5 {
		t.Fatalf("an extra Release changed Redis: %v", d)
	}
}

// TestHolderRace: Holders of sixteen clients racing hold exactly Limit;
// after they release, everything is free.
func TestHolderRace(t *testing.T) {
	stores := racingStores(t)
	cfg := redisstore.SemaphoreConfig{Name: "q", Limit: 50, Lease: time.Hour}
	var held atomic.Int64
	var wg sync.WaitGroup
	holders := make([]*redisstore.Holder, len(stores))
	for i, s := range stores {
		holders[i] = mustHolder(t, mustSemaphore(t, s, cfg), "ds", redisstore.AdapterConfig{Timeout: 5 * time.Second})
		wg.Go(func() {
			for range 2 * cfg.Limit / racers {
				if holders[i].Take(time.Now(), 1).Allowed {
					held.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if held.Load() != int64(cfg.Limit) {
		t.Fatalf("racing Holders hold %d; want exactly %d", held.Load(), cfg.Limit)
	}
	for _, h := range holders {
		h.Release(h.Held())
	}
	m := mustSemaphore(t, stores[0], cfg)
	if d, _ := m.Peek(context.Background(), "ds", cfg.Limit); !d.Allowed {
		t.Fatalf("after every release, Peek(Limit) = %v", d)
	}
}

// TestHolderFailurePolicies: with Redis down, FailOpen admits and forgets,
// FailFallback holds and releases in the local concurrency.Limiter.
func TestHolderFailurePolicies(t *testing.T) {
	needRedis(t)
	m := mustSemaphore(t, mustStore(t, deadClient(t)), redisstore.SemaphoreConfig{Name: "q", Limit: 5, Lease: time.Minute})
	var log errorLog
	open := mustHolder(t, m, "ds", redisstore.AdapterConfig{OnError: log.hook})
	if d := open.Take(start, 2); !d.Allowed || open.Held() != 2 {
		t.Fatalf("FailOpen Take(2) = %v, Held %d", d, open.Held())
	}
	open.Release(2)
	if log.count() != 1 || open.Held() != 0 {
		t.Fatalf("FailOpen Release called Redis (%d errors) or kept units (%d)", log.count(), open.Held())
	}
	local, _ := concurrency.New(concurrency.Config{Name: "local", Limit: 2})
	fb := mustHolder(t, m, "ds", redisstore.AdapterConfig{OnFailure: redisstore.FailFallback, Fallback: local})
	if !fb.Take(start, 2).Allowed || fb.Take(start, 1).Allowed || local.Held() != 2 {
		t.Fatalf("FailFallback: want the local limit of 2 held, got %d", local.Held())
	}
	fb.Release(2)
	if local.Held() != 0 || fb.Held() != 0 {
		t.Fatalf("FailFallback Release left %d held locally", local.Held())
	}
	closed := mustHolder(t, m, "ds", redisstore.AdapterConfig{OnFailure: redisstore.FailClosed})
	if d := closed.Take(start, 1); d.Allowed || closed.Held() != 0 {
		t.Fatalf("FailClosed Take = %v", d)
	}
	if d := closed.Peek(start, 6); d.RetryAfter != ratekit.Never {
		t.Fatalf("FailClosed Peek(6) of 5 = %v; want Never", d)
	}
}
