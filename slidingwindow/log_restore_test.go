package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestLogRestoreKeepsExpiredUnits: units expired at the Log's newest
// instant still count at a staler one, so a Log restored from its own
// state must keep them. Before format version 2, MarshalBinary saved only
// the units that count at the newest instant: 600 at Start, 400 at
// Start+45s and 1 at Start+61s under 1000 a minute, restored, admitted 599
// at every instant from Start to Start+59.999999999s, where the saved Log
// admits 0.
func TestLogRestoreKeepsExpiredUnits(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 1000, Window: time.Minute}
	t0 := conformance.DefaultStart
	l := mustLog(t, cfg)
	l.Take(t0, 600)
	l.Take(t0.Add(45*time.Second), 400)
	l.Take(t0.Add(61*time.Second), 1) // the 600 have expired at the Log's clock
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r := mustLog(t, cfg)
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, 30 * time.Second, 45*time.Second - 1, 45 * time.Second, time.Minute - 1, time.Minute, 61 * time.Second, 105*time.Second - 1, 105 * time.Second, 121 * time.Second} {
		now := t0.Add(at)
		if got, want := capacityAt(r, now, cfg.Limit), capacityAt(l, now, cfg.Limit); got != want {
			t.Errorf("restored Log admits %d at Start+%v; the Log it was saved from %d", got, at, want)
		}
	}
}

// TestLogRestoreKeepsLostMark: a Log whose Limit went down and up again
// remembers the newest unit a Take overwrote (its lost mark), and a time
// at which that unit counts admits nothing. Format version 2 saves the
// mark, so a restored Log judges that time as strictly; a state without a
// mark is still version 1.
func TestLogRestoreKeepsLostMark(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 4, Window: time.Minute}
	t0 := conformance.DefaultStart
	l := mustLog(t, cfg)
	l.Take(t0, 4)
	if b, _ := l.MarshalBinary(); b[3] != 1 {
		t.Fatalf("a state with no lost mark is format version %d; want 1", b[3])
	}
	l.Take(t0.Add(2*time.Minute), 1) // overwrites a unit of t0: the mark
	cfg.Limit = 8
	if err := l.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[3] != 2 {
		t.Fatalf("a state with a lost mark is format version %d; want 2", b[3])
	}
	r := mustLog(t, cfg)
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{-time.Second, 0, 30 * time.Second, time.Minute - 1, time.Minute, 2 * time.Minute} {
		now := t0.Add(at)
		if got, want := capacityAt(r, now, cfg.Limit), capacityAt(l, now, cfg.Limit); got != want {
			t.Errorf("restored Log admits %d at Start+%v; the Log it was saved from %d", got, at, want)
		}
	}
	if got := capacityAt(l, t0.Add(30*time.Second), cfg.Limit); got != 0 {
		t.Fatalf("the saved Log admits %d at Start+30s, where the lost unit counts; want 0", got)
	}
}

// TestLogFormatV1Loads: a state of format version 1, as builds before
// version 2 wrote it (the units that count at the clock, no lost mark),
// still loads, and decides as it did: Limit 10 a minute, 3 taken at
// Start, 2 at Start+30s and 4 at Start+70s; the 3 had expired at the
// clock and are not in the state.
func TestLogFormatV1Loads(t *testing.T) {
	v1 := []byte{0x72, 0x6b, 0x4, 0x1, 0x6, 0x1, 0x80, 0xb2, 0xd7, 0xf8, 0xaf, 0xc7, 0xf8, 0x9d, 0x31, 0x80,
		0xf2, 0xda, 0xf5, 0x85, 0xc5, 0xf8, 0x9d, 0x31, 0x0, 0x80, 0xa0, 0xbe, 0x81, 0x95, 0x1, 0x0, 0x0, 0x0}
	cfg := slidingwindow.Config{Limit: 10, Window: time.Minute}
	t0 := conformance.DefaultStart
	r := mustLog(t, cfg)
	if err := r.UnmarshalBinary(v1); err != nil {
		t.Fatalf("UnmarshalBinary of a version 1 state: %v", err)
	}
	// The model of the old rule says the same.
	m := &model.SlidingLog{Limit: 10, Window: time.Minute}
	m.Take(0, 3)
	m.Take(30*time.Second, 2)
	m.Take(70*time.Second, 4)
	m.PersistV1()
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{
		{59 * time.Second, 4}, // the 3 of Start are not in the state
		{70 * time.Second, 4},
		{90*time.Second - 1, 4},
		{90 * time.Second, 6},
		{130*time.Second - 1, 6},
		{130 * time.Second, 10},
	} {
		if got := capacityAt(r, t0.Add(tc.at), cfg.Limit); got != tc.want {
			t.Errorf("restored from version 1: admits %d at Start+%v; want %d", got, tc.at, tc.want)
		}
		for n := 0; n <= cfg.Limit; n++ {
			if got, want := r.Peek(t0.Add(tc.at), n), m.Peek(tc.at, n); got != want {
				t.Errorf("restored from version 1: Peek(Start+%v, %d) = %v; the model (PersistV1) says %v", tc.at, n, got, want)
			}
		}
	}
	// Saved again, it is the same state, still version 1.
	if b, err := r.MarshalBinary(); err != nil || string(b) != string(v1) {
		t.Fatalf("restored from version 1 and saved: % x (%v); want % x", b, err, v1)
	}
}
