package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestLogRefundRingAboveLimit: a Refund on a ring that is full at its own
// size, which is above the Limit after Reconfigure lowered it, leaves
// placeholders for the units the ring dropped, as it does at the Limit's
// size. The model used to leave them only when the units numbered the
// Limit, and so admitted at stale times that the Log (rightly) denies:
// found by internal/lincheck.
func TestLogRefundRingAboveLimit(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 5, Window: time.Second, Name: "r"}
	l := mustLog(t, cfg)
	m := &model.SlidingLog{Limit: 5, Window: time.Second, Name: "r"}
	ms := time.Millisecond
	for i, at := range []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms} {
		sameDecision(t, i, "Take", l.Take(t0.Add(at), 1), m.Take(at, 1))
	}
	// Limit 3, the five units kept: the ring holds five.
	cfg.Limit = 3
	if err := l.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	m.Reconfigure(3, time.Second)
	// Two count at 1.25s: one more is admitted and drops the unit at 0.
	d := l.Take(t0.Add(1250*ms), 1)
	sameDecision(t, 5, "Take", d, m.Take(1250*ms, 1))
	if !d.Allowed {
		t.Fatalf("Take at 1.25s: %v, want admitted", d)
	}
	// Gives back the four units at 200ms or later: four placeholders.
	l.Refund(t0.Add(200*ms), 9)
	m.Refund(200*ms, 9)
	for i, at := range []time.Duration{-500 * ms, 0, 150 * ms, 500 * ms, 1050 * ms, 1100 * ms, 1250 * ms} {
		for n := 1; n <= 3; n++ {
			sameDecision(t, 6+i, "Peek", l.Peek(t0.Add(at), n), m.Peek(at, n))
		}
	}
	// The dropped unit at 0 counted at 500ms: so must a placeholder.
	if d := l.Peek(t0.Add(500*ms), 3); d.Allowed {
		t.Errorf("Peek(+500ms, 3) after the Refund: %v; the unit dropped at 0 counted then", d)
	}
}
