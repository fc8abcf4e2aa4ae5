package slidingwindow_test

import (
	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/slidingwindow"
)

// withClock returns cfg reading clk, for conformance.Subject.WithClock.
func withClock(cfg slidingwindow.Config, clk clock.Clock) slidingwindow.Config {
	cfg.Clock = clk
	return cfg
}
