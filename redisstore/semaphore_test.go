package redisstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/redisstore"
)

func mustSemaphore(t *testing.T, s *redisstore.Store, cfg redisstore.SemaphoreConfig) *redisstore.Semaphore {
	t.Helper()
	m, err := s.Semaphore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSemaphoreRace: sixteen clients racing to hold units of one key get
// exactly Limit; after every release, Limit again.
func TestSemaphoreRace(t *testing.T) {
	stores := racingStores(t)
	cfg := redisstore.SemaphoreConfig{Name: "mutations", Limit: 100, Lease: time.Hour}
	var held atomic.Int64
	var mu sync.Mutex
	var leases []redisstore.Lease
	var wg sync.WaitGroup
	for _, s := range stores {
		m := mustSemaphore(t, s, cfg)
		wg.Go(func() {
			for range 2 * cfg.Limit / racers {
				l, d, err := m.Take(context.Background(), "dataset1", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					held.Add(1)
					mu.Lock()
					leases = append(leases, l)
					mu.Unlock()
				} else if d.RetryAfter <= 0 || d.RetryAfter > time.Hour {
					t.Errorf("denial %v: RetryAfter should be the time until a lease expires", d)
				}
			}
		})
	}
	wg.Wait()
	if held.Load() != int64(cfg.Limit) {
		t.Fatalf("racing clients hold %d units; want exactly %d", held.Load(), cfg.Limit)
	}
	m := mustSemaphore(t, stores[0], cfg)
	for _, l := range leases {
		if err := m.Release(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := m.Peek(context.Background(), "dataset1", cfg.Limit); err != nil || !d.Allowed {
		t.Fatalf("after every release, Peek(Limit) = %v, %v; want allowed", d, err)
	}
}

// TestSemaphoreLeases follows leases through Take, Extend, Release and
// expiry at injected instants.
func TestSemaphoreLeases(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	m := mustSemaphore(t, s, redisstore.SemaphoreConfig{Name: "queries", Limit: 5, Lease: 10 * time.Second})
	at := func(d time.Duration) time.Time { return start.Add(d) }

	a, d, err := m.TakeAt(ctx, "ds", at(0), 3)
	if err != nil || !d.Allowed || d.Remaining != 2 || a.N != 3 || a.Key != "ds" {
		t.Fatalf("TakeAt(3) = %v %v %v", a, d, err)
	}
	if d, _ := m.PeekAt(ctx, "ds", at(time.Second), 3); d.Allowed || d.RetryAfter != 9*time.Second || d.Remaining != 2 {
		t.Fatalf("PeekAt(3) with 3 of 5 held = %v; want denied until a's lease ends in 9s", d)
	}
	b, d, _ := m.TakeAt(ctx, "ds", at(5*time.Second), 2)
	if !d.Allowed || d.Remaining != 0 || d.ResetAfter != 10*time.Second {
		t.Fatalf("TakeAt(2) = %v", d)
	}
	if err := m.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, a); err != nil { // twice: nothing more
		t.Fatal(err)
	}
	if d, _ := m.PeekAt(ctx, "ds", at(6*time.Second), 4); d.Allowed || d.Remaining != 3 {
		t.Fatalf("after releasing a, Peek(4) = %v; want denied with 3 free", d)
	}
	if ok, err := m.ExtendAt(ctx, b, at(14*time.Second)); err != nil || !ok {
		t.Fatalf("Extend of a live lease = %v, %v", ok, err)
	}
	if d, _ := m.PeekAt(ctx, "ds", at(20*time.Second), 4); d.Allowed {
		t.Fatalf("b extended to +24s, Peek(4) at +20s = %v; want denied", d)
	}
	if d, _ := m.PeekAt(ctx, "ds", at(24*time.Second), 5); !d.Allowed || d.ResetAfter != 10*time.Second {
		t.Fatalf("after b's lease expired, Peek(5) = %v; want allowed, its own lease to reset", d)
	}
	if d, _ := m.PeekAt(ctx, "ds", at(24*time.Second), 0); !d.Allowed || d.ResetAfter != 0 || d.Remaining != 5 {
		t.Fatalf("after b's lease expired, Peek(0) = %v; want all 5 free", d)
	}
	if ok, _ := m.ExtendAt(ctx, b, at(25*time.Second)); ok {
		t.Fatal("Extend of an expired lease succeeded")
	}
	if l, d, _ := m.TakeAt(ctx, "ds", at(25*time.Second), 6); d.RetryAfter != ratekit.Never || l != (redisstore.Lease{}) {
		t.Fatalf("Take(6) of 5 = %v, %v; want Never and no lease", l, d)
	}
	if _, err := s.Semaphore(redisstore.SemaphoreConfig{Name: "x", Limit: 1}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Fatalf("Semaphore without a Lease: %v", err)
	}
}

// TestSemaphoreMatchesEmbedded: while no lease expires, a Semaphore admits
// and reports Remaining exactly as concurrency.Limiter does for the same
// Takes and Releases. (RetryAfter and ResetAfter differ by design: the
// embedded one estimates hold times, the Semaphore knows lease expiries.)
func TestSemaphoreMatchesEmbedded(t *testing.T) {
	s, _ := newStore(t)
	sd := seed(t)
	rng := rand.New(rand.NewPCG(sd, 7))
	ctx := context.Background()
	m := mustSemaphore(t, s, redisstore.SemaphoreConfig{Name: "c", Limit: 10, Lease: time.Hour})
	e, _ := concurrency.New(concurrency.Config{Name: "c", Limit: 10})
	var held []redisstore.Lease
	for i := range 300 {
		if len(held) > 0 && rng.IntN(3) == 0 {
			j := rng.IntN(len(held))
			if err := m.Release(ctx, held[j]); err != nil {
				t.Fatal(err)
			}
			e.Release(held[j].N)
			held = append(held[:j], held[j+1:]...)
			continue
		}
		n := rng.IntN(5)
		now := start.Add(time.Duration(i) * time.Millisecond)
		l, got, err := m.TakeAt(ctx, "k", now, n)
		if err != nil {
			t.Fatal(err)
		}
		want := e.Take(now, n)
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining || got.Limit != want.Limit || (got.RetryAfter == ratekit.Never) != (want.RetryAfter == ratekit.Never) {
			t.Fatalf("seed %d step %d: Take(%d) = %v; embedded %v", sd, i, n, got, want)
		}
		if l.N > 0 {
			held = append(held, l)
		}
	}
}

// TestSemaphoreManyLeases holds hundreds of leases of distinct expiries:
// RetryAfter is when enough of the first to expire have, and releases and
// expiries keep the running total right.
func TestSemaphoreManyLeases(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	m := mustSemaphore(t, s, redisstore.SemaphoreConfig{Name: "queries", Limit: 500, Lease: time.Minute})
	var leases []redisstore.Lease
	for i := range 500 {
		l, d, err := m.TakeAt(ctx, "ds", start.Add(time.Duration(i)*time.Millisecond), 1)
		if err != nil || !d.Allowed {
			t.Fatalf("Take %d = %v, %v", i, d, err)
		}
		leases = append(leases, l)
	}
	now := start.Add(time.Second)
	for _, n := range []int{1, 150, 500} {
		// The n-th lease to expire was taken at (n-1) ms.
		want := time.Minute + time.Duration(n-1)*time.Millisecond - time.Second
		if d, _ := m.PeekAt(ctx, "ds", now, n); d.Allowed || d.RetryAfter != want || d.Remaining != 0 {
			t.Fatalf("Peek(%d) with 500 of 500 held = %v; want RetryAfter %v", n, d, want)
		}
	}
	for _, l := range leases[100:300] {
		if err := m.Release(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := m.PeekAt(ctx, "ds", now, 200); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after 200 releases, Peek(200) = %v; want allowed", d)
	}
	// A minute and 100 ms on, the first 100 leases (taken at 0..99 ms) have
	// expired too.
	later := start.Add(time.Minute + 100*time.Millisecond)
	if d, _ := m.PeekAt(ctx, "ds", later, 0); d.Remaining != 300 {
		t.Fatalf("after 100 leases expired, Peek(0) = %v; want 300 free", d)
	}
	if _, d, _ := m.TakeAt(ctx, "ds", later, 300); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("Take(300) = %v; want allowed", d)
	}
	if _, d, _ := m.TakeAt(ctx, "ds", later, 1); d.Allowed {
		t.Fatalf("Take(1) at capacity = %v", d)
	}
}
