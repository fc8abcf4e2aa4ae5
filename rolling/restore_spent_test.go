package rolling_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/rolling"
)

// TestRestoreKeepsSpentWindow: a window refunded to zero (spent) denies a
// Take stamped before its start, since the Take that opened it replaced a
// window that may still count there. MarshalBinary saved such a limiter as
// one with no window, and a limiter restored from it admitted at those
// stale instants: Limit 4 an hour, 4 taken at t0, 4 at t0+1h20m and
// refunded, restored into a new limiter: 4 admitted at t0-2h-1ns, where
// the saved limiter admits 0. The spent window is now saved (format
// version 2 with count 0), and restores as it was.
func TestRestoreKeepsSpentWindow(t *testing.T) {
	cfg := rolling.Config{Limit: 4, Window: time.Hour}
	l := mustNew(t, cfg)
	l.Take(t0, 4)
	x := t0.Add(80 * time.Minute)
	if !l.Take(x, 4).Allowed {
		t.Fatal("Take(t0+1h20m, 4) denied")
	}
	l.Refund(x, 4)
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[3] != 2 || b[4] != 0 {
		t.Fatalf("a spent window's state % x: want format version 2 with count 0", b)
	}
	r := mustNew(t, cfg)
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{-2*time.Hour - 1, -time.Hour, 0, time.Hour, 80*time.Minute - 1, 80 * time.Minute, 3 * time.Hour} {
		now := t0.Add(at)
		for n := 1; n <= cfg.Limit; n++ {
			if got, want := r.Peek(now, n), l.Peek(now, n); got != want {
				t.Fatalf("restored: Peek(t0%+v, %d) = %v; the saved limiter says %v", at, n, got, want)
			}
		}
	}
	if again, _ := r.MarshalBinary(); string(again) != string(b) {
		t.Fatalf("restored and saved again: % x; want % x", again, b)
	}
}
