package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
)

// leaseConfigs are one config per algorithm, small enough that the tests
// hit the limits often.
var leaseConfigs = []redisstore.Config{
	{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 50, Window: time.Second, Burst: 20},
	{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 40, Window: time.Second, Offset: -300 * time.Millisecond},
	{Algorithm: redisstore.Rolling, Name: "rw", Limit: 40, Window: time.Second},
	{Algorithm: redisstore.SlidingLog, Name: "sl", Limit: 40, Window: time.Second},
	{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 40, Window: time.Second},
}

// counted is a Store whose client counts its round trips.
func counted(t *testing.T) (*redisstore.Store, *atomic.Int64) {
	t.Helper()
	needRedis(t)
	var n atomic.Int64
	c := redis.NewClient(&redis.Options{Addr: sharedAddr})
	c.AddHook(dialCounter{&n})
	t.Cleanup(func() { c.Close() })
	return mustStore(t, c), &n
}

func mustLocal(t *testing.T, l *redisstore.Limiter, cfg redisstore.LocalConfig) *redisstore.Local {
	t.Helper()
	q, err := l.Local(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

type admission struct {
	at time.Time
	n  int
}

// conforms requires that the fleet's admissions, replayed in time order
// through a fresh reference model, are every one admitted: the fleet never
// admitted what the algorithm would have refused.
func conforms(t *testing.T, cfg redisstore.Config, adm []admission) {
	t.Helper()
	sort.SliceStable(adm, func(i, j int) bool { return adm[i].at.Before(adm[j].at) })
	m := newModel(cfg)
	for i, a := range adm {
		if d := m.decide(a.at.UnixMicro(), a.n, true); !d.Allowed {
			t.Fatalf("%s: admission %d (+%v, n=%d) over-admits: the model says %v", cfg.Name, i, a.at.Sub(start), a.n, d)
		}
	}
}

// TestLeasesNeverOverAdmit runs three replicas with leases (and the deny
// cache) on one key at injected times, in random order and bursts, and
// replays what they admitted through the reference model: every admission
// conforms.
func TestLeasesNeverOverAdmit(t *testing.T) {
	sd := seed(t)
	for _, cfg := range leaseConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			s, trips := counted(t)
			leasesConform(t, s, cfg, sd)
			t.Logf("%d round trips", trips.Load())
		})
	}
}

// leasesConform is TestLeasesNeverOverAdmit's body for one config on s.
func leasesConform(t *testing.T, s *redisstore.Store, cfg redisstore.Config, sd uint64) {
	l := mustLimiter(t, s, cfg)
	rng := rand.New(rand.NewPCG(sd, uint64(cfg.Algorithm)))
	life := 400 * time.Millisecond
	if cfg.Algorithm == redisstore.TokenBucket {
		life = 100 * time.Millisecond // of a 400ms refill
	}
	var replicas []*redisstore.Local
	for range 3 {
		replicas = append(replicas, mustLocal(t, l, redisstore.LocalConfig{
			Lease: true, LeaseLife: life, DenyCache: true, MaxLease: 10}))
	}
	var adm []admission
	var takes int
	now := start
	// Phases of 100 Takes whose demand is from a tenth to ten
	// times the limit's rate (2 units per Take on average), so that
	// leases hold units when windows turn and buckets fill.
	var mean time.Duration
	for i := range 3000 {
		if i%100 == 0 {
			mean = []time.Duration{5, 25, 40, 50, 60, 100, 500}[rng.IntN(7)] * time.Millisecond
		}
		now = now.Add(time.Duration(rng.Int64N(int64(2*mean) + 1))).Truncate(time.Microsecond)
		r := replicas[rng.IntN(len(replicas))]
		n := 1 + rng.IntN(3)
		d, err := r.TakeAt(context.Background(), "k", now, n)
		if err != nil {
			t.Fatal(err)
		}
		takes++
		if d.Allowed {
			adm = append(adm, admission{now, n})
		}
		if d.Limit != l.Config().Limit && cfg.Algorithm != redisstore.TokenBucket || d.Policy != cfg.Name {
			t.Fatalf("Decision %v lacks the policy's Limit or Name", d)
		}
		if !d.Allowed && (d.RetryAfter <= 0 || d.RetryAfter > 2*cfg.Window) {
			t.Fatalf("denial %v: RetryAfter out of range", d)
		}
	}
	conforms(t, cfg, adm)
	if len(adm) < 100 {
		t.Fatalf("only %d admissions", len(adm))
	}
	t.Logf("%d takes, %d admitted", takes, len(adm))
}

// TestLocalHotKeyFewRoundTrips: a hot key leases: one replica taking a
// unit every 10µs for a second makes a few hundred round trips, not
// 100,000, and admits exactly the Limit; then the deny cache answers until
// the window ends.
func TestLocalHotKeyFewRoundTrips(t *testing.T) {
	for _, cfg := range leaseConfigs {
		if cfg.Algorithm == redisstore.SlidingLog {
			continue
		}
		cfg.Limit, cfg.Window = 60_000, time.Minute
		if cfg.Burst > 0 {
			cfg.Burst = cfg.Limit
		}
		t.Run(cfg.Name, func(t *testing.T) {
			s, trips := counted(t)
			l := mustLimiter(t, s, cfg)
			q := mustLocal(t, l, redisstore.LocalConfig{Lease: true, DenyCache: true})
			now := start.Truncate(time.Minute)
			var adm []admission
			for range 100_000 {
				now = now.Add(10 * time.Microsecond)
				d, err := q.TakeAt(context.Background(), "hot", now, 1)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					adm = append(adm, admission{now, 1})
				}
			}
			t.Logf("%d admitted, %d round trips", len(adm), trips.Load())
			conforms(t, cfg, adm)
			if len(adm) < cfg.Limit-cfg.Limit/8 {
				t.Errorf("%d admitted; want at most a lease fewer than %d", len(adm), cfg.Limit)
			}
			if trips.Load() > 1000 {
				t.Errorf("%d round trips for 100,000 Takes", trips.Load())
			}
		})
	}
}

// TestLeaseTokenBucketSpentLate: a bucket's lease is spent at the end of
// its life, after the bucket has refilled, while another replica takes
// all that Redis has: the admissions still conform, because a lease's
// units are taken as at its end.
func TestLeaseTokenBucketSpentLate(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	cfg := redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 50, Window: time.Second, Burst: 20}
	l := mustLimiter(t, s, cfg)
	lc := redisstore.LocalConfig{Lease: true, LeaseLife: 300 * time.Millisecond, MaxLease: 10}
	a, b := mustLocal(t, l, lc), mustLocal(t, l, lc)
	var adm []admission
	take := func(q *redisstore.Local, at time.Time) bool {
		d, err := q.TakeAt(ctx, "k", at, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			adm = append(adm, admission{at, 1})
		}
		return d.Allowed
	}
	now := start
	for i := range 5 { // a hot start: a's leases grow
		take(a, now.Add(time.Duration(i)*time.Microsecond))
	}
	late := now.Add(299 * time.Millisecond) // the bucket is full again
	for range 30 {
		take(a, late)
		take(b, late)
	}
	conforms(t, cfg, adm)
	if len(adm) < 10 {
		t.Fatalf("only %d admitted", len(adm))
	}
}

// TestLeaseUnspentGoBack: a lease's unspent units go back to Redis at the
// next round trip (the lease ended), at Close, and at SweepAt once the
// lease has ended; until then Redis counts them. A dead replica's lease
// stays counted: the fleet under-admits by at most that lease.
func TestLeaseUnspentGoBack(t *testing.T) {
	for _, cfg := range leaseConfigs {
		if cfg.Algorithm == redisstore.SlidingLog {
			continue
		}
		t.Run(cfg.Name, func(t *testing.T) {
			s, _ := newStore(t)
			ctx := context.Background()
			l := mustLimiter(t, s, cfg)
			q := mustLocal(t, l, redisstore.LocalConfig{Lease: true, LeaseLife: 100 * time.Millisecond, MaxLease: 8})
			capacity := cfg.Limit
			if cfg.Burst > 0 {
				capacity = cfg.Burst
			}
			// A hot start: leases grow (1, 3, 7, then MaxLease 8).
			now := start
			spent := 0
			for range 12 {
				now = now.Add(time.Microsecond)
				if d, err := q.TakeAt(ctx, "k", now, 1); err != nil || !d.Allowed {
					t.Fatalf("TakeAt = %v, %v", d, err)
				}
				spent++
			}
			// Redis counts the lease's units, spent or not.
			d, _ := l.PeekAt(ctx, "k", now, 0)
			held := capacity - d.Remaining - spent
			if held <= 0 {
				t.Fatalf("after 12 hot Takes Redis has %d left of %d: no lease held", d.Remaining, capacity)
			}
			// The Local's own view counts them as its own.
			if ld, _ := q.PeekAt(ctx, "k", now, 0); ld.Remaining != capacity-spent && cfg.Algorithm != redisstore.TokenBucket {
				t.Errorf("Local Peek Remaining %d; want %d", ld.Remaining, capacity-spent)
			}
			if err := q.CloseAt(ctx, now); err != nil {
				t.Fatal(err)
			}
			d, _ = l.PeekAt(ctx, "k", now, 0)
			if got := capacity - d.Remaining; got != spent && cfg.Algorithm != redisstore.TokenBucket {
				t.Fatalf("after Close Redis counts %d taken; want the %d spent", got, spent)
			}
			if cfg.Algorithm == redisstore.TokenBucket && d.Remaining < capacity-spent-1-int(100*time.Millisecond/(cfg.Window/time.Duration(cfg.Limit))) {
				t.Fatalf("after Close the bucket has %d; want the unspent units back", d.Remaining)
			}
			// Sweep: a lease that has ended goes back; a live one stays.
			for range 12 {
				now = now.Add(time.Microsecond)
				q.TakeAt(ctx, "k2", now, 1)
			}
			if n, err := q.SweepAt(ctx, now); err != nil || n != 0 {
				t.Fatalf("SweepAt with a live lease dropped %d keys, %v", n, err)
			}
			d, _ = l.PeekAt(ctx, "k2", now, 0)
			if capacity-d.Remaining <= 12 {
				t.Fatalf("the live lease was given back early")
			}
			now = now.Add(time.Second)
			if n, err := q.SweepAt(ctx, now); err != nil || n != 1 {
				t.Fatalf("SweepAt after the lease ended dropped %d keys, %v; want 1", n, err)
			}
			// A dead replica: its lease is never given back; another
			// replica still admits all but that lease.
			dead := mustLocal(t, l, redisstore.LocalConfig{Lease: true, LeaseLife: 100 * time.Millisecond, MaxLease: 8})
			alive := mustLocal(t, l, redisstore.LocalConfig{Lease: true, LeaseLife: 100 * time.Millisecond, MaxLease: 8})
			now = now.Add(10 * time.Second)
			for range 4 {
				now = now.Add(time.Microsecond)
				dead.TakeAt(ctx, "k3", now, 1)
			}
			got := 4
			for range 2 * capacity {
				now = now.Add(time.Microsecond)
				if d, _ := alive.TakeAt(ctx, "k3", now, 1); d.Allowed {
					got++
				}
			}
			if got > capacity || got < capacity-8 {
				t.Fatalf("with a dead replica's lease the fleet admitted %d of %d; want at most one lease (8) fewer", got, capacity)
			}
		})
	}
}

// TestDenyCache: after a denial, Takes of as many units or more are
// refused in the process until RetryAfter, without a round trip, with the
// RetryAfter left; smaller ones still ask Redis; at RetryAfter Redis
// decides again. A local Refund clears the denial.
func TestDenyCache(t *testing.T) {
	s, trips := counted(t)
	ctx := context.Background()
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 5, Window: time.Second})
	q := mustLocal(t, l, redisstore.LocalConfig{DenyCache: true})
	now := start.Truncate(time.Second)
	for range 4 {
		if d, _ := q.TakeAt(ctx, "k", now, 1); !d.Allowed {
			t.Fatal("denied below the limit")
		}
	}
	d, err := q.TakeAt(ctx, "k", now, 2)
	if err != nil || d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("Take(2) with 1 left = %v, %v; want denied for 1s", d, err)
	}
	before := trips.Load()
	for i := range 10 {
		at := now.Add(time.Duration(i) * 90 * time.Millisecond)
		d, err := q.TakeAt(ctx, "k", at, 2+i%3)
		if err != nil || d.Allowed || d.RetryAfter != time.Second-at.Sub(now) || d.Policy != "fw" || d.Limit != 5 {
			t.Fatalf("cached denial %d = %v, %v", i, d, err)
		}
	}
	if trips.Load() != before {
		t.Fatalf("cached denials made %d round trips", trips.Load()-before)
	}
	if d, _ := q.TakeAt(ctx, "k", now, 1); !d.Allowed || trips.Load() != before+1 {
		t.Fatalf("Take(1), smaller than the denied 2, = %v; want Redis to admit it", d)
	}
	if d, _ := q.TakeAt(ctx, "k", now.Add(time.Second), 2); !d.Allowed {
		t.Fatalf("Take(2) at RetryAfter = %v; want allowed", d)
	}
	// A refund here clears the cached denial.
	for range 3 {
		q.TakeAt(ctx, "k", now.Add(time.Second), 1)
	}
	if d, _ := q.TakeAt(ctx, "k", now.Add(time.Second), 1); d.Allowed {
		t.Fatal("over the limit")
	}
	if err := q.RefundAt(ctx, "k", now.Add(time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if d, _ := q.TakeAt(ctx, "k", now.Add(time.Second), 1); !d.Allowed {
		t.Fatalf("after a Refund, Take = %v; want allowed", d)
	}
}

// TestLocalIdleKeysLeaseNothing: a key used less than once per LeaseLife
// takes no lease: every Take is a round trip and Redis counts exactly the
// units taken.
func TestLocalIdleKeysLeaseNothing(t *testing.T) {
	s, trips := counted(t)
	ctx := context.Background()
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 1000, Window: time.Hour})
	q := mustLocal(t, l, redisstore.LocalConfig{Lease: true, LeaseLife: 100 * time.Millisecond})
	now := start.Truncate(time.Hour)
	for i := range 20 {
		now = now.Add(300 * time.Millisecond)
		if d, _ := q.TakeAt(ctx, "k", now, 1); !d.Allowed || d.Remaining != 999-i {
			t.Fatalf("Take %d = %v; want Remaining %d", i, d, 999-i)
		}
	}
	if trips.Load() < 20 {
		t.Fatalf("%d round trips for 20 idle Takes", trips.Load())
	}
	if d, _ := l.PeekAt(ctx, "k", now, 0); d.Remaining != 980 {
		t.Fatalf("Redis counts %d taken; want 20", 1000-d.Remaining)
	}
}

// TestLocalRace: replicas, each with its own client and many goroutines,
// take from one key at the server's time with leases and the deny cache:
// exactly Limit pass (the windows are a day long, nothing comes back).
func TestLocalRace(t *testing.T) {
	stores := racingStores(t)
	for _, cfg := range raceConfigs() {
		t.Run(cfg.Name, func(t *testing.T) {
			var admitted atomic.Int64
			var wg sync.WaitGroup
			var locals []*redisstore.Local
			for _, s := range stores[:4] {
				q := mustLocal(t, mustLimiter(t, s, cfg), redisstore.LocalConfig{Lease: true, DenyCache: true, LeaseLife: time.Minute})
				locals = append(locals, q)
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 150 {
							d, err := q.Take(context.Background(), "k", 1)
							if err != nil {
								t.Error(err)
								return
							}
							if d.Allowed {
								admitted.Add(1)
							}
						}
					}()
				}
			}
			wg.Wait()
			if got := admitted.Load(); got > int64(cfg.Limit) {
				t.Fatalf("%d admitted of %d", got, cfg.Limit)
			}
			// Leases still held come back at Close; then the rest can be taken.
			for _, q := range locals {
				if err := q.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			rest := drain(t, mustLimiter(t, stores[0], cfg), "k", cfg.Limit)
			if got := admitted.Load() + int64(rest); got != int64(cfg.Limit) && cfg.Algorithm != redisstore.TokenBucket {
				t.Fatalf("%d admitted, %d more after Close: want exactly %d", admitted.Load(), rest, cfg.Limit)
			}
		})
	}
}

func TestLocalConfigErrors(t *testing.T) {
	s, _ := newStore(t)
	l := mustLimiter(t, s, leaseConfigs[0])
	for _, cfg := range []redisstore.LocalConfig{
		{LeaseLife: -1}, {LeaseLife: time.Nanosecond}, {MaxLease: -1}, {MaxKeys: -1}, {LeaseLife: redisstore.MaxWindow + time.Second}, {SweepInterval: -1},
	} {
		if _, err := l.Local(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("Local(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
	// n outside [1, capacity] decides as the Limiter does.
	q := mustLocal(t, l, redisstore.LocalConfig{Lease: true, DenyCache: true})
	for _, n := range []int{-1, 21} {
		if d, err := q.TakeAt(context.Background(), "k", start, n); err != nil || d.RetryAfter != ratekit.Never {
			t.Errorf("Take(%d) = %v, %v; want Never", n, d, err)
		}
	}
	if d, err := q.TakeAt(context.Background(), "k", start, 0); err != nil || !d.Allowed {
		t.Errorf("Take(0) = %v, %v", d, err)
	}
	_ = fmt.Sprint()
}
