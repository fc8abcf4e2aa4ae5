package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
)

// TestSlidingLogLostMark follows the sliding log's lost mark in Redis: a
// Take under a lowered Limit trims the archive, and the newest unit it
// forgets is kept as the member "!l"; a stale time at which that unit
// counts admits nothing under a Limit raised again. A key stored before
// the mark was kept (the same key less "!l") is read as one with no mark
// and decides as it always did, until its next trim writes a mark, which is
// newer than every unit forgotten before it and so covers them too. The
// key holds at most the entries of the highest Limit's units, and four
// more members.
func TestSlidingLogLostMark(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	const w = time.Second
	cfg := redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "lost", Limit: 5, Window: w}
	high := mustLimiter(t, s, cfg)
	cfg.Limit = 1
	low := mustLimiter(t, s, cfg)
	rkey := high.Key("k")
	mark := func() (time.Duration, bool) {
		t.Helper()
		v, err := c.ZScore(ctx, rkey, "!l").Result()
		if err == redis.Nil {
			return 0, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(int64(v)-start.UnixMicro()) * time.Microsecond, true
	}
	peek := func(at time.Duration) ratekit.Decision {
		t.Helper()
		d, err := high.PeekAt(ctx, "k", start.Add(at), 1)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	// Takes of 1 at start and start+W under 5, then one under 1 at
	// start+5W: the archive keeps 1 unit and forgets both earlier ones.
	for _, at := range []time.Duration{0, w} {
		if !takeAt(t, high, "k", start.Add(at), 1) {
			t.Fatalf("Take(start+%v, 1) denied on a fresh key", at)
		}
	}
	if _, ok := mark(); ok {
		t.Fatal("a key that forgot nothing has a lost mark")
	}
	if !takeAt(t, low, "k", start.Add(5*w), 1) {
		t.Fatal("Take(start+5W, 1) under Limit 1 denied")
	}
	if m, ok := mark(); !ok || m != w {
		t.Fatalf("lost mark after the trim: %v (%v), want start+%v", m, ok, w)
	}
	// At start+W/2 the unit forgotten at start+W counts: under 5 again
	// the stale time admits nothing until it expires, at start+2W.
	want := ratekit.Decision{Limit: 5, Window: w, Policy: "lost", ResetAfter: 5*w + w - w/2, RetryAfter: 2*w - w/2}
	if d := peek(w / 2); d != want {
		t.Fatalf("Peek(start+W/2, 1) with the lost mark:\n got  %v\n want %v", d, want)
	}

	// The key as stored before the mark was kept: no "!l".
	if err := c.ZRem(ctx, rkey, "!l").Err(); err != nil {
		t.Fatal(err)
	}
	// Read as a key with no mark: only the unit at start+5W counts.
	want = ratekit.Decision{Allowed: true, Limit: 5, Remaining: 3, Window: w, Policy: "lost", ResetAfter: 5*w + w - w/2}
	if d := peek(w / 2); d != want {
		t.Fatalf("Peek(start+W/2, 1) on a key without a mark:\n got  %v\n want %v", d, want)
	}
	// Its next trim (under 1, at start+7W, forgetting start+5W) writes a
	// mark, which covers the units forgotten before it.
	if !takeAt(t, low, "k", start.Add(7*w), 1) {
		t.Fatal("Take(start+7W, 1) under Limit 1 denied")
	}
	if m, ok := mark(); !ok || m != 5*w {
		t.Fatalf("lost mark after the next trim: %v (%v), want start+%v", m, ok, 5*w)
	}
	if d := peek(w / 2); d.Allowed || d.Remaining != 0 {
		t.Fatalf("Peek(start+W/2, 1) after the mark was written again: %v, want denied, 0 remaining", d)
	}

	// Bounded: alternate the Limits over many Takes; the key never holds
	// more entries than the highest Limit's units, plus "#N", "#A", "f"
	// and "!l".
	at := 8 * w
	for i := range 200 {
		l := high
		if i%7 >= 4 {
			l = low
		}
		at += w / 3
		takeAt(t, l, "k", start.Add(at), 1+i%2)
		if i%5 == 0 {
			if err := l.RefundAt(ctx, "k", start.Add(at), 1); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := c.ZCard(ctx, rkey).Result(); err != nil {
			t.Fatal(err)
		} else if n > 5+4 {
			t.Fatalf("after %d Takes the key holds %d members, more than 5 entries and 4 others", i+1, n)
		}
	}
}
