package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestCounterRestoreKeepsForgot: a Counter whose Limit went down judges a
// window it no longer knows, at a stale time, as holding the most the
// earlier Limit let it hold. Saved and restored into a Counter of the
// lowered Config (a restart), it judged it as the lowered Limit: 1000 a
// minute, 1000 taken at Start, 1000 at Start+2m and refunded (the window
// at Start+1m is forgotten), the Limit lowered to 500: the restored Counter
// admitted 60 at Start+1m where the saved one admits 0, and 310 at
// Start+1m30s where it admits 120. Format version 3 carries that most; the
// restored Counter judges as the saved one.
func TestCounterRestoreKeepsForgot(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 1000, Window: time.Minute}
	t0 := conformance.DefaultStart
	l := mustCounter(t, cfg)
	l.Take(t0, 1000)
	l.Take(t0.Add(2*time.Minute), 1000)
	l.Refund(t0.Add(2*time.Minute), 1000)
	cfg.Limit = 500
	if err := l.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[3] != 3 {
		t.Fatalf("a Counter whose Limit went down saved format version %d; want 3", b[3])
	}
	for _, into := range []*slidingwindow.Counter{mustCounter(t, cfg), l} {
		if err := into.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		for at := -time.Minute; at <= 3*time.Minute; at += 10 * time.Second {
			now := t0.Add(at)
			if got, want := capacityAt(into, now, cfg.Limit), capacityAt(l, now, cfg.Limit); got != want {
				t.Errorf("restored Counter admits %d at Start+%v; the saved one %d", got, at, want)
			}
		}
		if again, _ := into.MarshalBinary(); string(again) != string(b) {
			t.Fatalf("restored and saved again: % x; want % x", again, b)
		}
	}
	// A Counter whose Limit never went down still saves version 1.
	cfg.Limit = 1000
	fresh := mustCounter(t, cfg)
	fresh.Take(t0, 3)
	if b, _ := fresh.MarshalBinary(); b[3] != 1 {
		t.Fatalf("a Counter never lowered saved format version %d; want 1", b[3])
	}
}
