package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

const racers = 16

// raceConfigs have windows long enough that nothing comes back with the
// server's time during a test: exactly Limit may pass. The fixed window's
// Offset puts the window's start an hour before now, so the test never
// straddles its end.
func raceConfigs() []redisstore.Config {
	day := 24 * time.Hour
	off := -time.Duration(time.Now().Add(-time.Hour).UnixMicro()%day.Microseconds()) * time.Microsecond
	return []redisstore.Config{
		{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 200, Window: day, Burst: 200},
		{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 200, Window: day, Offset: off},
		{Algorithm: redisstore.Rolling, Name: "rw", Limit: 200, Window: day},
		{Algorithm: redisstore.SlidingLog, Name: "sl", Limit: 200, Window: day},
		{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 200, Window: day},
	}
}

// racingStores returns one Store per racer, each with its own client and
// connections, as replicas would have, sharing one prefix.
func racingStores(t *testing.T) []*redisstore.Store {
	needRedis(t)
	// A prefix of its own: a key another run of the test in this process
	// (go test -count=2) drained would still be drained.
	prefix := fmt.Sprintf("race%d:", prefixes.Add(1))
	stores := make([]*redisstore.Store, racers)
	for i := range stores {
		c := redis.NewClient(&redis.Options{Addr: sharedAddr, PoolSize: 2})
		t.Cleanup(func() { c.Close() })
		s, err := redisstore.New(c, redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	return stores
}

// TestRaceExactlyLimit races sixteen clients, each on its own connection,
// on one key at the server's time: exactly Limit units pass.
func TestRaceExactlyLimit(t *testing.T) {
	stores := racingStores(t)
	for _, cfg := range raceConfigs() {
		t.Run(cfg.Name, func(t *testing.T) {
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for _, s := range stores {
				l := mustLimiter(t, s, cfg)
				wg.Go(func() {
					for range 2 * cfg.Limit / racers {
						d, err := l.Take(context.Background(), "org42", 1)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != int64(cfg.Limit) {
				t.Fatalf("%d clients racing admitted %d; want exactly %d", racers, got, cfg.Limit)
			}
		})
	}
}

// TestRaceTakeAll races TakeAll over two keys against plain Takes on the
// second: every unit the first admitted belongs to an allowed TakeAll, and
// the second admitted exactly Limit in all. A denied TakeAll that left a
// unit taken would show in the counts.
func TestRaceTakeAll(t *testing.T) {
	stores := racingStores(t)
	for _, cfg := range raceConfigs() {
		t.Run(cfg.Name, func(t *testing.T) {
			var viaAll, viaB atomic.Int64
			var wg sync.WaitGroup
			for i, s := range stores {
				l := mustLimiter(t, s, cfg)
				a, b := l.On("{org7}:a"), l.On("{org7}:b")
				wg.Go(func() {
					for range cfg.Limit / racers {
						if i%2 == 0 {
							d, err := s.TakeAll(context.Background(), 1, a, b)
							if err != nil {
								t.Error(err)
								return
							}
							if d.Allowed {
								viaAll.Add(1)
							}
						} else {
							d, err := l.Take(context.Background(), "{org7}:b", 1)
							if err != nil {
								t.Error(err)
								return
							}
							if d.Allowed {
								viaB.Add(1)
							}
						}
					}
				})
			}
			wg.Wait()
			l := mustLimiter(t, stores[0], cfg)
			restA := drain(t, l, "{org7}:a", cfg.Limit)
			restB := drain(t, l, "{org7}:b", cfg.Limit)
			if int(viaAll.Load())+restA != cfg.Limit {
				t.Fatalf("a: %d via TakeAll and %d after; want %d in all", viaAll.Load(), restA, cfg.Limit)
			}
			if int(viaAll.Load()+viaB.Load())+restB != cfg.Limit {
				t.Fatalf("b: %d via TakeAll, %d directly, %d after; want %d in all", viaAll.Load(), viaB.Load(), restB, cfg.Limit)
			}
		})
	}
}

// drain takes one unit at a time until denied and returns how many.
func drain(t *testing.T, l *redisstore.Limiter, key string, limit int) int {
	t.Helper()
	n := 0
	for n <= limit {
		d, err := l.Take(context.Background(), key, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			break
		}
		n++
	}
	return n
}
