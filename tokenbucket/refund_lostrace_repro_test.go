//go:build ratekit_repro

package tokenbucket

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestRefundAfterLostRace reproduces, deterministically, a history that
// internal/lincheck's TestTokenBucket found not linearizable (the lead
// decides the fix; run with -tags ratekit_repro). Refund documents that
// Z is the latest stamp of an admitted Take, and that a Take refunded
// with no later-stamped Take admitted restores exactly the bucket it
// found. But Take raises Aux (Z) before its compare-and-swap: a Take that
// loses the CAS to another and is then denied leaves its stamp in Z, and
// the refund of the winner gives back less, as if it had been admitted.
//
// The interleaving, staged with Take's own steps: A = Take(+30ms, 2)
// loads the full bucket, decides to admit and raises Aux; B = Take(+0, 1)
// is admitted; A's CAS fails and its retry is denied. Refund(+0, 1) should
// then leave the bucket full at +0, as a twin that saw only B is.
func TestRefundAfterLostRace(t *testing.T) {
	t0 := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	mk := func() *Limiter {
		c := clock.NewMock()
		c.Set(t0)
		l, err := New(Config{Limit: 3, Window: time.Second, Burst: 2, Clock: c})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l, twin := mk(), mk()
	a := t0.Add(30 * time.Millisecond)

	// A's first attempt, up to its CAS.
	b := l.c.Cur()
	tat := b.W.Load()
	p := b.P
	nd, next := p.admit(tat, p.since(a), 2)
	if nd > p.tau {
		t.Fatalf("A's first attempt would deny")
	}
	cell.Raise(&b.Aux, next-nd)

	// B wins.
	for _, x := range []*Limiter{l, twin} {
		if d := x.Take(t0, 1); !d.Allowed {
			t.Fatalf("B: %v", d)
		}
	}
	// A's CAS fails; its retry is denied.
	if b.W.CompareAndSwap(tat, next) {
		t.Fatal("A's CAS succeeded")
	}
	for _, x := range []*Limiter{l, twin} {
		if d := x.Take(a, 2); d.Allowed {
			t.Fatalf("A's retry: %v", d)
		}
	}
	// No Take stamped after +0 was admitted: the refund restores the full
	// bucket at +0.
	l.Refund(t0, 1)
	twin.Refund(t0, 1)
	if got, want := l.Peek(t0, 2), twin.Peek(t0, 2); got != want {
		t.Errorf("Peek(+0, 2) after Refund(+0, 1): %v; a bucket that never saw the denied Take: %v", got, want)
	}
}
