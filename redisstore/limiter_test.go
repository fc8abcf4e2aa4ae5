package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
)

func TestConfigValidate(t *testing.T) {
	ok := redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "api", Limit: 10, Window: time.Second, Burst: 5}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(c *redisstore.Config){
		"no algorithm":       func(c *redisstore.Config) { c.Algorithm = 0 },
		"unknown algorithm":  func(c *redisstore.Config) { c.Algorithm = 99 },
		"no name":            func(c *redisstore.Config) { c.Name = "" },
		"brace in name":      func(c *redisstore.Config) { c.Name = "a{b}" },
		"colon in name":      func(c *redisstore.Config) { c.Name = "a:b" },
		"zero limit":         func(c *redisstore.Config) { c.Limit = 0 },
		"zero window":        func(c *redisstore.Config) { c.Window = 0 },
		"sub-µs window":      func(c *redisstore.Config) { c.Window = time.Second + 1 },
		"long window":        func(c *redisstore.Config) { c.Window = redisstore.MaxWindow + time.Second },
		"zero burst":         func(c *redisstore.Config) { c.Burst = 0 },
		"refill > MaxRefill": func(c *redisstore.Config) { c.Limit, c.Burst, c.Window = 1, 1_000_000, 24*time.Hour },
		"offset on tb":       func(c *redisstore.Config) { c.Offset = time.Second },
		"burst on fixed":     func(c *redisstore.Config) { c.Algorithm = redisstore.FixedWindow },
		"sub-µs offset":      func(c *redisstore.Config) { c.Algorithm, c.Burst, c.Offset = redisstore.FixedWindow, 0, 1 },
	}
	// An int can pass MaxLimit (2^31-1) only on a 64-bit platform.
	if math.MaxInt > redisstore.MaxLimit {
		bad["huge limit"] = func(c *redisstore.Config) { c.Limit = int(min(redisstore.MaxLimit+1, math.MaxInt)) }
	}
	for name, f := range bad {
		c := ok
		f(&c)
		if err := c.Validate(); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v; want ErrInvalidConfig", name, err)
		}
		s, _ := redisstore.New(redis.NewClient(&redis.Options{}), redisstore.Options{})
		if _, err := s.Limiter(c); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%s: Limiter = %v; want ErrInvalidConfig", name, err)
		}
	}
	// Real quotas validate (issue #20): Rollbar's 100,000 a day as a token
	// bucket, 10^9 a day and 30-day windows on every algorithm.
	for _, alg := range []redisstore.Algorithm{redisstore.TokenBucket, redisstore.FixedWindow,
		redisstore.Rolling, redisstore.SlidingLog, redisstore.SlidingCounter} {
		for _, q := range []struct {
			limit  int
			window time.Duration
		}{{100_000, 24 * time.Hour}, {1e9, 24 * time.Hour}, {1e9, 30 * 24 * time.Hour}, {redisstore.MaxLimit, redisstore.MaxWindow}} {
			c := redisstore.Config{Algorithm: alg, Name: "q", Limit: q.limit, Window: q.window}
			if alg == redisstore.TokenBucket {
				c.Burst = q.limit
			}
			if err := c.Validate(); err != nil {
				t.Errorf("%v %d per %v: %v", alg, q.limit, q.window, err)
			}
		}
	}
	// What does not fit names the largest value that does: 2^50 µs over
	// 400 days is 32.6.
	c := redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "q", Limit: 1, Window: redisstore.MaxWindow, Burst: 33}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "largest Burst a TokenBucket takes with that Limit and Window is 32") {
		t.Errorf("Burst 33 per 400 days: %v; want the largest Burst, 32, named", err)
	}
	if c.Burst = 32; c.Validate() != nil {
		t.Errorf("Burst 32 per 400 days: %v", c.Validate())
	}
	if _, err := redisstore.New(nil, redisstore.Options{}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("New(nil) = %v; want ErrInvalidConfig", err)
	}
	if _, err := redisstore.New(redis.NewClient(&redis.Options{}), redisstore.Options{Prefix: "{x}"}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("New with a braced prefix = %v; want ErrInvalidConfig", err)
	}
}

// TestKeysExpireWhenIdle checks each key's TTL right after a Take at the
// server's time: it is how long the state differs from a fresh key's, so
// Redis memory stays bounded by the keys active within a window.
func TestKeysExpireWhenIdle(t *testing.T) {
	c := newClient(t)
	s, err := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("ttl%d:", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hour := time.Hour
	cases := []struct {
		cfg redisstore.Config
		n   int
		ttl time.Duration // expected, up to the time the test takes
	}{
		{redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 60, Window: hour, Burst: 60}, 30, 30 * time.Minute},
		{redisstore.Config{Algorithm: redisstore.Rolling, Name: "rw", Limit: 60, Window: hour}, 1, hour},
		{redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "sl", Limit: 60, Window: hour}, 1, hour},
		{redisstore.Config{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 60, Window: 400 * 24 * hour}, 1, -1},
		{redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 60, Window: 400 * 24 * hour}, 1, -1},
	}
	for _, tc := range cases {
		l := mustLimiter(t, s, tc.cfg)
		before := time.Now()
		if d, err := l.Take(ctx, "k", tc.n); err != nil || !d.Allowed {
			t.Fatalf("%s: Take = %v, %v", tc.cfg.Name, d, err)
		}
		ttl, err := c.PTTL(ctx, l.Key("k")).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := tc.ttl
		if want < 0 { // aligned windows: until the window's end (2 windows for the counter)
			w := tc.cfg.Window
			us := w.Microseconds()
			want = time.UnixMicro(before.UnixMicro()/us*us + us).Sub(before)
			if tc.cfg.Algorithm == redisstore.SlidingCounter {
				want += w
			}
		}
		if ttl <= 0 || ttl > want+2*time.Millisecond || ttl < want-time.Minute {
			t.Errorf("%s: TTL %v after a Take; want about %v", tc.cfg.Name, ttl, want)
		}
	}
	// A refund that empties a rolling window keeps it, spent, until the
	// window would have ended (a stale Take before its start opens the next
	// window there), and no longer; at the present it decides as fresh.
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "gone", Limit: 5, Window: hour})
	if _, err := l.Take(ctx, "k", 2); err != nil {
		t.Fatal(err)
	}
	if err := l.Refund(ctx, "k", 2); err != nil {
		t.Fatal(err)
	}
	if ttl, err := c.PTTL(ctx, l.Key("k")).Result(); err != nil || ttl <= 0 || ttl > hour+2*time.Millisecond || ttl < hour-time.Minute {
		t.Errorf("a window refunded to zero: TTL %v, %v; want about the window's %v", ttl, err, hour)
	}
	if d, err := l.Peek(ctx, "k", 5); err != nil || !d.Allowed || d.Remaining != 0 || d.ResetAfter != hour {
		t.Errorf("Peek(5) on a window refunded to zero = %v, %v; want allowed as on a fresh key", d, err)
	}
	// A denial writes nothing, not even a TTL on a fresh key.
	if d, _ := l.Take(ctx, "other", 6); d.Allowed {
		t.Fatal("Take(6) of 5 allowed")
	}
	if n, _ := c.Exists(ctx, l.Key("other")).Result(); n != 0 {
		t.Errorf("a denial created a key")
	}
}

// TestServerTime: without an injected time, decisions use the server's
// TIME; Reset empties a key.
func TestServerTime(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "api", Limit: 10, Window: time.Hour, Burst: 3})
	for i := range 3 {
		if d, err := l.Take(ctx, "k", 1); err != nil || !d.Allowed || d.Remaining != 2-i || d.Window != 18*time.Minute {
			t.Fatalf("Take %d = %v, %v", i, d, err)
		}
	}
	d, err := l.Take(ctx, "k", 1)
	if err != nil || d.Allowed || d.RetryAfter <= 5*time.Minute || d.RetryAfter > 6*time.Minute {
		t.Fatalf("Take on an empty bucket = %v, %v; want denied for about 6m", d, err)
	}
	if d, _ := l.Peek(ctx, "k", 4); d.RetryAfter != ratekit.Never {
		t.Fatalf("Peek(4) with Burst 3 = %v; want Never", d)
	}
	if err := l.Reset(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Peek(ctx, "k", 3); !d.Allowed {
		t.Fatalf("after Reset, Peek(3) = %v; want allowed", d)
	}
	// A server-time Refund of the sliding log gives back the oldest units.
	log := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "log", Limit: 5, Window: time.Hour})
	for range 5 {
		if d, err := log.Take(ctx, "k", 1); err != nil || !d.Allowed {
			t.Fatalf("log Take = %v, %v", d, err)
		}
	}
	if err := log.Refund(ctx, "k", 2); err != nil {
		t.Fatal(err)
	}
	if d, _ := log.Peek(ctx, "k", 2); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after Refund(2), log Peek(2) = %v; want allowed", d)
	}
	if l.Config().Name != "api" || l.Key("k") == "k" {
		t.Fatal("Config or Key")
	}
}
