package slidingwindow_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

// mustLog returns a Log for cfg, failing tb if cfg is invalid.
func mustLog(tb testing.TB, cfg slidingwindow.Config) *slidingwindow.Log {
	tb.Helper()
	l, err := slidingwindow.NewLog(cfg)
	if err != nil {
		tb.Fatalf("NewLog(%+v): %v", cfg, err)
	}
	return l
}

// mustCounter returns a Counter for cfg, failing tb if cfg is invalid.
func mustCounter(tb testing.TB, cfg slidingwindow.Config) *slidingwindow.Counter {
	tb.Helper()
	c, err := slidingwindow.NewCounter(cfg)
	if err != nil {
		tb.Fatalf("NewCounter(%+v): %v", cfg, err)
	}
	return c
}

// reconfigureLimit is a conformance Subject's Reconfigure for a Log or a
// Counter: cfg with the given Limit.
func reconfigureLimit(cfg slidingwindow.Config) func(ratekit.Limiter, int) error {
	return func(l ratekit.Limiter, limit int) error {
		c := cfg // a copy: the suite calls this from several goroutines at once
		c.Limit = limit
		return l.(interface {
			Reconfigure(slidingwindow.Config) error
		}).Reconfigure(c)
	}
}

// reconfigureWindow is a conformance Subject's ReconfigureWindow for a Log
// or a Counter: cfg with the given Window, read at now (sliding windows are
// not aligned: shift is ignored).
func reconfigureWindow(cfg slidingwindow.Config) func(ratekit.Limiter, time.Duration, time.Duration, time.Time) error {
	return func(l ratekit.Limiter, window, _ time.Duration, now time.Time) error {
		c := cfg
		c.Window, c.Clock = window, mockAt(now)
		return l.(interface {
			Reconfigure(slidingwindow.Config) error
		}).Reconfigure(c)
	}
}

// mockAt returns a mock clock stopped at now.
func mockAt(now time.Time) *clock.Mock {
	m := clock.NewMock()
	m.Set(now)
	return m
}

// TestConformance runs the suite for the Counter at every shape below and
// for the Log at all but 600 per minute. The Log's Window enters only its
// arithmetic (no reciprocal, unlike the Counter's), and its Limit only the
// ring's length: 600 per minute is one more large ring between the windows
// of a second and of a day, which the suite's probes (1 ms, 1 s, 1 h, 40
// days) see as 1 s and 24 h do; under -race it cost CI 24 s.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		limit   int
		window  time.Duration
		counter bool // the Counter only
	}{
		{2, time.Second, false},
		{25, time.Second, false},
		{600, time.Minute, true},
		{1000, 24 * time.Hour, false},
	} {
		cfg := slidingwindow.Config{Limit: tc.limit, Window: tc.window, Name: "sliding"}
		// subject is the suite's Subject for the Log or the Counter of cfg,
		// as mk makes one.
		subject := func(mk func(testing.TB, slidingwindow.Config) ratekit.Limiter, zero func() ratekit.Limiter) conformance.Subject {
			return conformance.Subject{
				New:               func(tb testing.TB) ratekit.Limiter { return mk(tb, cfg) },
				Capacity:          tc.limit,
				Policy:            cfg.Name,
				Reconfigure:       reconfigureLimit(cfg),
				ReconfigureWindow: reconfigureWindow(cfg),
				NewWithHook: func(tb testing.TB, hook func(ratekit.Decision)) ratekit.Limiter {
					c := cfg
					c.OnLimitReached = hook
					return mk(tb, c)
				},
				WithClock: func(tb testing.TB, c clock.Clock) ratekit.Limiter { return mk(tb, withClock(cfg, c)) },
				Zero:      zero,
			}
		}
		if !tc.counter {
			t.Run(fmt.Sprintf("Log/%d-per-%v", tc.limit, tc.window), func(t *testing.T) {
				conformance.Run(t, subject(
					func(tb testing.TB, c slidingwindow.Config) ratekit.Limiter { return mustLog(tb, c) },
					func() ratekit.Limiter { return new(slidingwindow.Log) }))
			})
		}
		t.Run(fmt.Sprintf("Counter/%d-per-%v", tc.limit, tc.window), func(t *testing.T) {
			conformance.Run(t, subject(
				func(tb testing.TB, c slidingwindow.Config) ratekit.Limiter { return mustCounter(tb, c) },
				func() ratekit.Limiter { return new(slidingwindow.Counter) }))
		})
	}
}

// TestReconfigureDownUpKeepsUnits is issue #16's attack: Limit 100, 100
// taken at t0, then ten cycles of Reconfigure(60), Reconfigure(100) and a
// drain at t0. Lowering the Limit dropped the units above it, and raising
// it again let 100 more pass: 500 in one window. Units taken stay counted.
func TestReconfigureDownUpKeepsUnits(t *testing.T) {
	for _, kind := range []string{"Log", "Counter"} {
		t.Run(kind, func(t *testing.T) {
			cfg := slidingwindow.Config{Limit: 100, Window: time.Minute}
			var l interface {
				ratekit.Limiter
				Reconfigure(slidingwindow.Config) error
			}
			if kind == "Log" {
				l = mustLog(t, cfg)
			} else {
				l = mustCounter(t, cfg)
			}
			t0 := conformance.DefaultStart
			admitted := 0
			if l.Take(t0, 100).Allowed {
				admitted += 100
			}
			for range 10 {
				for _, limit := range []int{60, 100} {
					cfg.Limit = limit
					if err := l.Reconfigure(cfg); err != nil {
						t.Fatal(err)
					}
					for l.Take(t0, 1).Allowed {
						admitted++
					}
				}
			}
			if admitted != 100 {
				t.Fatalf("admitted %d at one instant; want 100", admitted)
			}
			// The units still expire when they would have: a Window on
			// for the Log, two fixed windows on for the Counter.
			end := t0.Add(time.Minute)
			if kind == "Counter" {
				end = t0.Truncate(time.Minute).Add(2 * time.Minute)
			}
			if d := l.Peek(end, 100); !d.Allowed {
				t.Fatalf("at +%v, Peek(100) = %v; want allowed", end.Sub(t0), d)
			}
			if d := l.Peek(end.Add(-1), 100); d.Allowed {
				t.Fatalf("at +%v, Peek(100) = %v; want denied", end.Add(-1).Sub(t0), d)
			}
		})
	}
}
