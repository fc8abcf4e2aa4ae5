package tokenbucket

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestRefundAfterLostRace holds Refund to its documented bound after a lost
// race, a history internal/lincheck's TestTokenBucket found: Take raises the
// bound on stamps (Aux, Z) before its compare-and-swap, so a Take that
// loses the CAS to another and is then denied leaves its stamp in Z, and a
// refund of the winner gives back n intervals less Z - at: less than a twin
// bucket that never saw the denied Take, never more.
//
// The interleaving, staged with Take's own steps: A = Take(+30ms, 2)
// loads the full bucket, decides to admit and raises Aux; B = Take(+0, 1)
// is admitted; A's CAS fails and its retry is denied. Refund(+0, 1) then
// gives back the interval (333.3ms) less 30ms: the bucket, which the twin
// has full at +0, is full again 30ms later.
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
	const late = 30 * time.Millisecond
	a := t0.Add(late)

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
	l.Refund(t0, 1)
	twin.Refund(t0, 1)

	// The twin, which never saw A, is full again at +0: the refund restored
	// exactly the bucket B found.
	if !twin.Idle(t0) {
		t.Fatalf("twin: not full at +0 after the refund: %v", twin.Peek(t0, 0))
	}
	// The documented bound: with Z = +30ms, the refund gives back one
	// interval less 30ms, so the bucket is full at +30ms, not before.
	if d := l.Peek(t0, 0); d.ResetAfter != late {
		t.Errorf("Peek(+0, 0) after the refund: ResetAfter %v, want %v (one interval less Z - at given back)", d.ResetAfter, late)
	}
	if !l.Idle(a) || l.Idle(a.Add(-time.Nanosecond)) {
		t.Errorf("the bucket is full from %v on, want from +30ms: Idle(+30ms) = %v, Idle(+30ms - 1ns) = %v",
			late, l.Idle(a), l.Idle(a.Add(-time.Nanosecond)))
	}
	// Never more than the twin: at no time and for no n does the bucket
	// admit what the twin denies, and from +30ms on they agree.
	for dt := -time.Second; dt <= time.Second; dt += 5 * time.Millisecond {
		for n := 0; n <= 2; n++ {
			got, want := l.Peek(t0.Add(dt), n), twin.Peek(t0.Add(dt), n)
			if got.Allowed && !want.Allowed || n == 0 && (got.Remaining > want.Remaining || got.ResetAfter < want.ResetAfter) {
				t.Errorf("Peek(%+v, %d) = %v; more than the twin's %v", dt, n, got, want)
			}
			if dt >= late && got != want {
				t.Errorf("Peek(%+v, %d) = %v; the twin, past Z: %v", dt, n, got, want)
			}
		}
	}
}
