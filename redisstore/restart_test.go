package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

func itoa(i int) string { return strconv.Itoa(i) }

// TestRedisRestart restarts the server mid-test on the same port. While it
// is down, calls fail and adapters decide by policy; once it is back, the
// same client reconnects, the script is loaded again (EVALSHA finds none,
// EVAL sends it), and keys start fresh (no persistence).
func TestRedisRestart(t *testing.T) {
	needRedis(t)
	dir := t.TempDir()
	srv, err := startServer(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.stop() })
	c := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1, DialerRetries: 1,
		DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	s := mustStore(t, c)
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "ip", Limit: 5, Window: time.Hour})
	ctx := context.Background()
	for i := range 3 {
		if d, err := l.Take(ctx, "10.0.0.1", 1); err != nil || !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("Take %d = %v, %v", i, d, err)
		}
	}
	var log errorLog
	closed := mustAdapter(t, l, "10.0.0.1", redisstore.AdapterConfig{OnFailure: redisstore.FailClosed, OnError: log.hook})
	open := mustAdapter(t, l, "10.0.0.1", redisstore.AdapterConfig{OnFailure: redisstore.FailOpen, OnError: log.hook})
	if d := closed.Take(start, 1); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("adapter with Redis up = %v; want allowed, 1 left", d)
	}

	srv.stop()
	if _, err := l.Take(ctx, "10.0.0.1", 1); err == nil {
		t.Fatal("Take with the server down: want an error")
	}
	if d := closed.Take(start, 1); d.Allowed {
		t.Fatalf("FailClosed with the server down = %v; want denied", d)
	}
	if d := open.Take(start, 1); !d.Allowed {
		t.Fatalf("FailOpen with the server down = %v; want allowed", d)
	}
	if log.count() != 2 {
		t.Fatalf("OnError called %d times; want 2", log.count())
	}

	srv, err = startServer(dir, srv.port)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := l.Take(ctx, "10.0.0.1", 1); err != nil || !d.Allowed || d.Remaining != 4 {
		t.Fatalf("Take after the restart = %v, %v; want allowed on a fresh key, 4 left", d, err)
	}
	if d := closed.Take(start, 1); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("adapter after the restart = %v; want allowed, 3 left", d)
	}
	if log.count() != 2 {
		t.Fatalf("OnError called after the restart: %v", log.errs[2:])
	}
}
