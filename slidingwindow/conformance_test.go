package slidingwindow_test

import (
	"fmt"
	"testing"
	"time"

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
		cfg.Limit = limit
		return l.(interface {
			Reconfigure(slidingwindow.Config) error
		}).Reconfigure(cfg)
	}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{
		{2, time.Second},
		{25, time.Second},
		{600, time.Minute},
		{1000, 24 * time.Hour},
	} {
		cfg := slidingwindow.Config{Limit: tc.limit, Window: tc.window, Name: "sliding"}
		t.Run(fmt.Sprintf("Log/%d-per-%v", tc.limit, tc.window), func(t *testing.T) {
			conformance.Run(t, conformance.Subject{
				New:         func(tb testing.TB) ratekit.Limiter { return mustLog(tb, cfg) },
				Capacity:    tc.limit,
				Policy:      cfg.Name,
				Reconfigure: reconfigureLimit(cfg),
			})
		})
		t.Run(fmt.Sprintf("Counter/%d-per-%v", tc.limit, tc.window), func(t *testing.T) {
			conformance.Run(t, conformance.Subject{
				New:         func(tb testing.TB) ratekit.Limiter { return mustCounter(tb, cfg) },
				Capacity:    tc.limit,
				Policy:      cfg.Name,
				Reconfigure: reconfigureLimit(cfg),
			})
		})
	}
}
