package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/slidingwindow"
)

// fuzzStart is the instant fuzzed times are offsets from.
var fuzzStart = time.Date(2026, 3, 18, 13, 1, 7, 250_000_000, time.UTC)

// fuzzWindows are the windows a fuzz input picks from: tiny ones make every
// unit expire within a few steps, odd ones make divisions inexact.
var fuzzWindows = []time.Duration{1, 7, 100, time.Microsecond, 999_983, time.Second, time.Minute}

// fuzzSteps are the time steps an op picks from, stale ones included.
func fuzzStep(b byte, window time.Duration) time.Duration {
	switch b % 12 {
	case 0, 1, 2:
		return 0
	case 3:
		return 1
	case 4:
		return -1
	case 5:
		return window / 3
	case 6:
		return window - 1
	case 7:
		return window
	case 8:
		return -window / 2
	case 9:
		return time.Duration(b) * window / 97
	case 10:
		return 2*window + 1
	default:
		return -3 * window
	}
}

// fuzzUnits picks n for an op: mostly small, sometimes 0, the limit, over
// it, or negative.
func fuzzUnits(b byte, limit int) int {
	switch b % 16 {
	case 0:
		return 0
	case 1:
		return limit
	case 2:
		return limit + 1
	case 3:
		return -1
	case 4, 5:
		return int(b/16)%limit + 1
	}
	return 1 + int(b/16)%3
}

func sameDecision(t *testing.T, i int, op string, got, want ratekit.Decision) {
	t.Helper()
	if got != want {
		t.Fatalf("op %d %s:\n got  %v\n want %v", i, op, got, want)
	}
}

// FuzzLog drives a Log and the reference model with the same operations and
// requires identical Decisions (RetryAfter and Remaining included), Idle
// answers, and state through Reconfigure and a MarshalBinary round trip.
// Each op is three bytes: what to do, how far to move the time, how many
// units. The high bit of windowByte makes the Log with a LogTemplate.
func FuzzLog(f *testing.F) {
	f.Add(byte(3), byte(5), []byte{0, 0, 1, 0, 3, 1, 0, 0, 2, 1, 7, 1, 0, 0, 17})
	f.Add(byte(1), byte(2), []byte{0, 0, 1, 0, 4, 1, 2, 0, 1, 0, 11, 1, 0, 5, 1})
	f.Add(byte(25), byte(5), []byte{0, 0, 1, 0, 0, 5, 3, 0, 5, 0, 6, 1, 4, 0, 1, 0, 8, 1, 6, 0, 0})
	f.Add(byte(8), byte(0), []byte{0, 3, 4, 0, 3, 4, 2, 0, 4, 5, 7, 2, 0, 0, 1, 7, 0, 1, 0, 4, 1})
	// The same, from a LogTemplate; and a template's Log that is
	// reconfigured, then restored into a sibling.
	f.Add(byte(8), byte(0x80), []byte{0, 3, 4, 0, 3, 4, 2, 0, 4, 5, 7, 2, 0, 0, 1, 7, 0, 1, 0, 4, 1})
	f.Add(byte(3), byte(0x85), []byte{0, 0, 1, 0, 3, 1, 9, 3, 3, 0, 0, 2, 9, 1, 19, 8, 0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, limitByte, windowByte byte, ops []byte) {
		limit := int(limitByte)%40 + 1
		window := fuzzWindows[int(windowByte&0x7f)%len(fuzzWindows)]
		cfg := slidingwindow.Config{Limit: limit, Window: window, Name: "fuzz"}
		var tmpl *slidingwindow.LogTemplate
		var l *slidingwindow.Log
		if windowByte&0x80 == 0 {
			l = mustLog(t, cfg)
		} else {
			// A template's Log, made after a sibling that took all it
			// could, which must not show in l's decisions (the model
			// knows nothing of it).
			tmpl = mustLogTemplate(t, cfg)
			if !tmpl.New().Take(fuzzStart, limit).Allowed {
				t.Fatal("a new Log of the template was not empty")
			}
			l = tmpl.New()
		}
		m := &model.SlidingLog{Limit: limit, Window: window, Name: "fuzz"}
		now := time.Duration(0)
		var taken []time.Duration // instants of allowed Takes, for Refunds
		for i := 0; i+2 < len(ops) && i < 3*400; i += 3 {
			op, step, units := ops[i], ops[i+1], ops[i+2]
			now += fuzzStep(step, window)
			at := fuzzStart.Add(now)
			n := fuzzUnits(units, m.Limit)
			switch op % 10 {
			case 0, 1, 2, 3:
				got, want := l.Take(at, n), m.Take(now, n)
				sameDecision(t, i/3, "Take", got, want)
				if got.Allowed && n > 0 {
					taken = append(taken, now)
				}
				if !want.Allowed && want.RetryAfter != ratekit.Never {
					// RetryAfter is the least wait: one nanosecond less is
					// still denied, the wait itself is admitted.
					if d := m.Peek(now+want.RetryAfter-1, n); d.Allowed {
						t.Fatalf("op %d: model admits at RetryAfter-1ns: %v", i/3, d)
					}
					if d := m.Peek(now+want.RetryAfter, n); !d.Allowed {
						t.Fatalf("op %d: model denies at RetryAfter: %v", i/3, d)
					}
				}
			case 4, 5:
				sameDecision(t, i/3, "Peek", l.Peek(at, n), m.Peek(now, n))
			case 6, 7:
				refundAt := now
				if len(taken) > 0 && units%2 == 0 {
					refundAt = taken[int(units/2)%len(taken)]
				}
				l.Refund(fuzzStart.Add(refundAt), n)
				m.Refund(refundAt, n)
			case 8:
				if got, want := l.Idle(at), m.Idle(now); got != want {
					t.Fatalf("op %d: Idle(+%v) = %v; the model says %v", i/3, now, got, want)
				}
				b, err := l.MarshalBinary()
				if err != nil {
					t.Fatalf("MarshalBinary: %v", err)
				}
				if tmpl != nil && l.Config().Limit == limit {
					// Into a sibling, whatever l's Window now is: the
					// state holds no Window, and the model's Reconfigure
					// does what l's does.
					cfg := l.Config()
					l = tmpl.New()
					if cfg.Window != window {
						if err := l.Reconfigure(cfg); err != nil {
							t.Fatal(err)
						}
					}
				} else {
					l = mustLog(t, l.Config())
				}
				if err := l.UnmarshalBinary(b); err != nil {
					t.Fatalf("UnmarshalBinary of MarshalBinary's output: %v", err)
				}
				m.Persist()
			case 9:
				cfg.Limit = fuzzUnits(units, 40)
				if cfg.Limit <= 0 || cfg.Limit > 40 {
					cfg.Limit = limit
				}
				if step%3 == 0 {
					cfg.Window = fuzzWindows[int(step/3)%len(fuzzWindows)]
				}
				if err := l.Reconfigure(cfg); err != nil {
					t.Fatalf("Reconfigure(%+v): %v", cfg, err)
				}
				m.Reconfigure(cfg.Limit, cfg.Window)
			}
		}
	})
}

// FuzzCounter drives a Counter and the reference model (exact rationals,
// RetryAfter by bisection) with the same operations and requires identical
// Decisions and Idle answers. The high bit of windowByte makes the Counter
// with a CounterTemplate.
func FuzzCounter(f *testing.F) {
	f.Add(byte(3), byte(5), []byte{0, 0, 1, 0, 3, 1, 0, 0, 2, 1, 7, 1, 0, 0, 17})
	f.Add(byte(10), byte(2), []byte{0, 5, 16, 0, 5, 16, 0, 6, 5, 0, 3, 1, 4, 0, 1, 0, 9, 1})
	f.Add(byte(25), byte(4), []byte{0, 0, 1, 0, 6, 5, 3, 0, 5, 0, 6, 1, 4, 0, 1, 0, 8, 1, 6, 0, 0})
	f.Add(byte(25), byte(0x84), []byte{0, 0, 1, 0, 6, 5, 3, 0, 5, 0, 6, 1, 4, 0, 1, 0, 8, 1, 6, 0, 0}) // the same, from a template
	f.Add(byte(10), byte(0x82), []byte{0, 5, 16, 7, 5, 16, 0, 6, 5, 0, 3, 1, 7, 0, 1, 0, 9, 1})
	f.Fuzz(func(t *testing.T, limitByte, windowByte byte, ops []byte) {
		// A 1ns window leaves no bits for counts (MaxCounterLimit is 0),
		// and a 7ns one room for a Limit of 3.
		window := fuzzWindows[1+int(windowByte&0x7f)%(len(fuzzWindows)-1)]
		limit := min(int(limitByte)%40+1, slidingwindow.MaxCounterLimit(window))
		cfg := slidingwindow.Config{Limit: limit, Window: window, Name: "fuzz"}
		newCounter := func() *slidingwindow.Counter { return mustCounter(t, cfg) }
		if windowByte&0x80 != 0 {
			// A template's Counter, made after a sibling that took all it
			// could: it must not show.
			tmpl := mustCounterTemplate(t, cfg)
			if !tmpl.New().Take(fuzzStart, limit).Allowed {
				t.Fatal("a new Counter of the template was not empty")
			}
			newCounter = tmpl.New
		}
		c := newCounter()
		m := &model.SlidingCounter{Limit: limit, Window: window, Name: "fuzz"}
		now := time.Duration(0)
		var taken []time.Duration
		for i := 0; i+2 < len(ops) && i < 3*200; i += 3 {
			op, step, units := ops[i], ops[i+1], ops[i+2]
			now += fuzzStep(step, window)
			at := fuzzStart.Add(now)
			n := fuzzUnits(units, limit)
			switch op % 8 {
			case 0, 1, 2:
				got, want := c.Take(at, n), m.Take(at, n)
				sameDecision(t, i/3, "Take", got, want)
				if got.Allowed && n > 0 {
					taken = append(taken, now)
				}
			case 3, 4:
				sameDecision(t, i/3, "Peek", c.Peek(at, n), m.Peek(at, n))
			case 5, 6:
				refundAt := now
				if len(taken) > 0 && units%2 == 0 {
					refundAt = taken[int(units/2)%len(taken)]
				}
				c.Refund(fuzzStart.Add(refundAt), n)
				m.Refund(fuzzStart.Add(refundAt), n)
			case 7:
				if got, want := c.Idle(at), m.Idle(at); got != want {
					t.Fatalf("op %d: Idle(+%v) = %v; the model says %v", i/3, now, got, want)
				}
				b, err := c.MarshalBinary()
				if err != nil {
					t.Fatalf("MarshalBinary: %v", err)
				}
				c = newCounter()
				if err := c.UnmarshalBinary(b); err != nil {
					t.Fatalf("UnmarshalBinary of MarshalBinary's output: %v", err)
				}
			}
		}
	})
}
