package rolling_test

import (
	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/rolling"
)

// withClock returns cfg reading clk, for conformance.Subject.WithClock.
func withClock(cfg rolling.Config, clk clock.Clock) rolling.Config {
	cfg.Clock = clk
	return cfg
}
