package redisstore_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/redisstore"
)

type sweepResult struct {
	n   int
	err error
}

// sweptLocal returns a leasing Local over a rolling limit of 40 a minute
// whose background sweeper ticks every 300ms on a mock clock at start,
// reporting each sweep on the channel returned.
func sweptLocal(t *testing.T) (*redisstore.Limiter, *redisstore.Local, *clock.Mock, chan sweepResult) {
	t.Helper()
	s, _ := newStore(t)
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "rw", Limit: 40, Window: time.Minute})
	clk := clock.NewMock()
	clk.Set(start)
	swept := make(chan sweepResult, 16)
	q := mustLocal(t, l, redisstore.LocalConfig{
		Lease: true, LeaseLife: 100 * time.Millisecond, MaxLease: 8,
		SweepInterval: 300 * time.Millisecond, Clock: clk,
		OnSweep: func(n int, err error) { swept <- sweepResult{n, err} },
	})
	return l, q, clk, swept
}

// nextSweep returns the next background sweep's result. The timer only
// guards against a hang (a sweeper that never runs); no result depends on
// it.
func nextSweep(t *testing.T, swept <-chan sweepResult) sweepResult {
	t.Helper()
	select {
	case r := <-swept:
		return r
	case <-time.After(time.Minute):
		t.Fatal("no background sweep within a minute of its tick")
		return sweepResult{}
	}
}

// hotKey takes 1 unit for key 12 times, a microsecond apart from at: the
// lease grows to hold units the Local has not spent.
func hotKey(t *testing.T, q *redisstore.Local, key string, at time.Time) {
	t.Helper()
	for i := range 12 {
		if d, err := q.TakeAt(context.Background(), key, at.Add(time.Duration(i)*time.Microsecond), 1); err != nil || !d.Allowed {
			t.Fatalf("TakeAt = %v, %v", d, err)
		}
	}
}

// TestLocalBackgroundSweep: with SweepInterval the Local sweeps itself on
// its Clock's ticks, at the Clock's time: a lease live at the tick stays
// (and Redis still counts its unspent units), an ended one gives its
// unspent units back and its key is forgotten, with no Sweep call.
func TestLocalBackgroundSweep(t *testing.T) {
	l, q, clk, swept := sweptLocal(t)
	ctx := context.Background()
	// A lease live at the first tick (300ms): taken at 250ms, it lives to
	// 350ms.
	hotKey(t, q, "k", start.Add(250*time.Millisecond))
	at := start.Add(250*time.Millisecond + 12*time.Microsecond)
	d, _ := l.PeekAt(ctx, "k", at, 0)
	if held := 40 - d.Remaining - 12; held <= 0 {
		t.Fatalf("after 12 hot Takes Redis has %d left of 40: no lease held", d.Remaining)
	}
	clk.Add(300 * time.Millisecond)
	if r := nextSweep(t, swept); r.n != 0 || r.err != nil {
		t.Fatalf("sweep at 300ms, the lease live to 350ms: dropped %d keys, %v; want 0", r.n, r.err)
	}
	if d2, _ := l.PeekAt(ctx, "k", clk.Now(), 0); d2.Remaining != d.Remaining {
		t.Fatalf("after a sweep during the lease Redis has %d left, want %d: the live lease was given back", d2.Remaining, d.Remaining)
	}
	clk.Add(300 * time.Millisecond)
	if r := nextSweep(t, swept); r.n != 1 || r.err != nil {
		t.Fatalf("sweep at 600ms, the lease ended: dropped %d keys, %v; want 1", r.n, r.err)
	}
	if d, _ := l.PeekAt(ctx, "k", clk.Now(), 0); d.Remaining != 40-12 {
		t.Fatalf("after the background sweep Redis has %d left, want %d: the unspent units were not given back", d.Remaining, 40-12)
	}
}

// TestLocalSweeperClose: Close stops the background sweeper (its
// goroutine has returned when Close does) and gives back the leases; the
// Local stays usable and Sweep still works by hand. A second Close is
// harmless. A Local without SweepInterval starts no sweeper.
func TestLocalSweeperClose(t *testing.T) {
	l, q, clk, swept := sweptLocal(t)
	ctx := context.Background()
	hotKey(t, q, "k", start)
	if err := q.CloseAt(ctx, start); err != nil {
		t.Fatal(err)
	}
	select {
	case <-redisstore.SweeperDone(q):
	default:
		t.Fatal("Close returned with the sweeper still running")
	}
	if d, _ := l.PeekAt(ctx, "k", start, 0); d.Remaining != 40-12 {
		t.Fatalf("after Close Redis has %d left, want %d", d.Remaining, 40-12)
	}
	clk.Add(time.Second)
	if len(swept) != 0 {
		t.Fatalf("%d background sweeps after Close", len(swept))
	}
	hotKey(t, q, "k2", clk.Now())
	if n, err := q.SweepAt(ctx, clk.Now().Add(time.Second)); n != 1 || err != nil {
		t.Fatalf("SweepAt after Close = %d, %v; want 1", n, err)
	}
	if err := q.CloseAt(ctx, clk.Now()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if plain := mustLocal(t, l, redisstore.LocalConfig{Lease: true}); redisstore.SweeperDone(plain) != nil {
		t.Error("a Local without SweepInterval started a sweeper")
	}
}

// TestLocalSweeperCollected: a Local with a sweeper that its owner drops
// without Close is collected, and its sweeper goroutine returns.
func TestLocalSweeperCollected(t *testing.T) {
	_, q, _, _ := sweptLocal(t)
	done := redisstore.SweeperDone(q)
	q = nil
	for i := 0; i < 10_000; i++ {
		if i%100 == 0 {
			runtime.GC()
		}
		select {
		case <-done:
			return
		default:
			runtime.Gosched()
		}
	}
	t.Fatal("the sweeper of a dropped Local is still running after 100 collections")
}
