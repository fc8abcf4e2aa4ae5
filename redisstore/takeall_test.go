package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
)

// modelLimiter is a reference model as a ratekit.Limiter, so that
// ratekit.TakeAll over models is the reference for Store.TakeAll.
type modelLimiter struct{ m model }

func (l modelLimiter) Take(now time.Time, n int) ratekit.Decision {
	return l.m.decide(scriptMicros(now), n, true)
}
func (l modelLimiter) Peek(now time.Time, n int) ratekit.Decision {
	return l.m.decide(scriptMicros(now), n, false)
}
func (l modelLimiter) Refund(at time.Time, n int) { l.m.refund(scriptMicros(at), n) }

// TestTakeAllMatchesEmbeddedTakeAll runs random events through one
// all-or-none script over three members and through ratekit.TakeAll over
// their reference models: the Decisions, binding member included, agree.
func TestTakeAllMatchesEmbeddedTakeAll(t *testing.T) {
	s, _ := newStore(t)
	takeAllMatches(t, s, seed(t))
}

// takeAllMatches is TestTakeAllMatchesEmbeddedTakeAll on s. The members of
// each round share a hash tag, so that it runs on Redis Cluster too.
func takeAllMatches(t *testing.T, s *redisstore.Store, sd uint64) {
	rng := rand.New(rand.NewPCG(sd, 3))
	for round := range 12 {
		// Three distinct configs, by name, in random order.
		perm := rng.Perm(len(modelConfigs))[:3]
		var members []redisstore.Member
		var models []ratekit.Limiter
		var ls []*redisstore.Limiter
		for _, i := range perm {
			cfg := modelConfigs[i]
			l := mustLimiter(t, s, cfg)
			ls = append(ls, l)
			members = append(members, l.On(fmt.Sprintf("{r%d}", round)))
			models = append(models, modelLimiter{newModel(cfg)})
		}
		w := modelConfigs[perm[0]].Window
		st := steps(w)
		now := start
		for i := range 100 {
			if d := st[rng.IntN(len(st))]; d > 0 {
				now = now.Add(d).Truncate(time.Microsecond)
			}
			n := rng.IntN(5)
			if rng.IntN(20) == 0 {
				n = 100_000
			}
			if rng.IntN(4) == 0 {
				got, err := s.PeekAllAt(context.Background(), now, n, members...)
				check(t, sd, round, i, "PeekAll", n, now, got, ratekit.PeekAll(now, n, models...), err)
				continue
			}
			got, err := s.TakeAllAt(context.Background(), now, n, members...)
			check(t, sd, round, i, "TakeAll", n, now, got, ratekit.TakeAll(now, n, models...), err)
			// Each member's own state agrees with its model's, too.
			for j, l := range ls {
				got, err := l.PeekAt(context.Background(), fmt.Sprintf("{r%d}", round), now, 1)
				check(t, sd, round, i, "Peek member", 1, now, got, models[j].Peek(now, 1), err)
			}
		}
	}
}

// TestTakeAllDeniedChangesNothing: a member that denies leaves every other
// member as it was (Rollbar: events refused by the system limit do not use
// up the user's daily quota).
func TestTakeAllDeniedChangesNothing(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	user := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "user", Limit: 100, Window: 24 * time.Hour})
	system := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "system", Limit: 3, Window: time.Minute})
	key := "{tok1}"
	for i := range 3 {
		d, err := s.TakeAllAt(ctx, start, 1, user.On(key), system.On(key))
		if err != nil || !d.Allowed || d.Policy != "system" || d.Remaining != 2-i {
			t.Fatalf("TakeAll %d = %v, %v; want allowed, bound by system with %d left", i, d, err, 2-i)
		}
	}
	before, _ := user.PeekAt(ctx, key, start, 1)
	for range 10 {
		d, err := s.TakeAllAt(ctx, start, 1, user.On(key), system.On(key))
		if err != nil || d.Allowed || d.Policy != "system" {
			t.Fatalf("TakeAll past the system limit = %v, %v; want the system's denial", d, err)
		}
	}
	if after, _ := user.PeekAt(ctx, key, start, 1); after != before || after.Remaining != 96 {
		t.Fatalf("denied TakeAlls changed the user quota: Peek before %v, after %v", before, after)
	}
	// The same key named twice is taken from twice.
	d, err := s.TakeAllAt(ctx, start, 40, user.On(key), user.On(key))
	if err != nil || !d.Allowed || d.Remaining != 17 {
		t.Fatalf("TakeAll(40) of one key twice = %v, %v; want allowed with 17 left", d, err)
	}
	if d, err := s.TakeAllAt(ctx, start, 10, user.On(key), user.On(key)); err != nil || d.Allowed {
		t.Fatalf("TakeAll(10) twice with 17 left = %v, %v; want denied", d, err)
	}
}

func TestTakeAllEdgeCases(t *testing.T) {
	s, _ := newStore(t)
	other, _ := newStore(t)
	ctx := context.Background()
	if d, err := s.TakeAll(ctx, 1); err != nil || !d.Allowed {
		t.Fatalf("TakeAll with no members = %v, %v; want allowed", d, err)
	}
	if d, err := s.TakeAll(ctx, -1); err != nil || d.RetryAfter != ratekit.Never {
		t.Fatalf("TakeAll(-1) with no members = %v, %v; want Never", d, err)
	}
	l := mustLimiter(t, other, redisstore.Config{Algorithm: redisstore.Rolling, Name: "x", Limit: 1, Window: time.Second})
	if _, err := s.TakeAll(ctx, 1, l.On("k")); err == nil {
		t.Fatal("TakeAll with a member of another Store: want an error")
	}
	if _, err := s.TakeAll(ctx, 1, redisstore.Member{}); err == nil {
		t.Fatal("TakeAll with a zero Member: want an error")
	}
}

// TestHoldRateAndConcurrency: a per-IP rate and a per-dataset concurrency
// limit on one request, all or none, with the Semaphore's leases returned.
func TestHoldRateAndConcurrency(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	rate := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "ip", Limit: 25, Window: time.Second})
	sem := mustSemaphore(t, s, redisstore.SemaphoreConfig{Name: "mutations", Limit: 3, Lease: time.Minute})
	ip, ds := rate.On("{ds1}:10.0.0.1"), sem.On("{ds1}")
	var leases []redisstore.Lease
	for i := range 3 {
		d, ls, err := s.HoldAt(ctx, start, 1, ip, ds)
		if err != nil || !d.Allowed || len(ls) != 1 || ls[0].N != 1 || ls[0].Key != "{ds1}" {
			t.Fatalf("Hold %d = %v, %v, %v", i, d, ls, err)
		}
		leases = append(leases, ls...)
	}
	d, ls, err := s.HoldAt(ctx, start, 1, ip, ds)
	if err != nil || d.Allowed || d.Policy != "mutations" || ls != nil {
		t.Fatalf("Hold with 3 of 3 held = %v, %v, %v; want the semaphore's denial", d, ls, err)
	}
	if d, _ := rate.PeekAt(ctx, "{ds1}:10.0.0.1", start, 0); d.Remaining != 22 {
		t.Fatalf("the denied Hold used the rate limit: %v", d)
	}
	if err := sem.Release(ctx, leases[0]); err != nil {
		t.Fatal(err)
	}
	if d, err := s.PeekAllAt(ctx, start, 1, ip, ds); err != nil || !d.Allowed {
		t.Fatalf("after a release, PeekAll = %v, %v", d, err)
	}
	if _, err := s.TakeAll(ctx, 1, ip, ds); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Fatalf("TakeAll with a Semaphore member: %v; want ErrInvalidConfig (use Hold)", err)
	}
	// The rate limit denies: the Semaphore is left as it was.
	for range 22 {
		rate.TakeAt(ctx, "{ds1}:10.0.0.1", start, 1)
	}
	if d, ls, _ := s.HoldAt(ctx, start, 1, ip, ds); d.Allowed || d.Policy != "ip" || ls != nil {
		t.Fatalf("Hold past the rate limit = %v, %v", d, ls)
	}
	if d, _ := sem.PeekAt(ctx, "{ds1}", start, 0); d.Remaining != 1 {
		t.Fatalf("a Hold denied by the rate limit changed the semaphore: %v", d)
	}
}
