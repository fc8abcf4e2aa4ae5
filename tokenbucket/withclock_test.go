package tokenbucket_test

import (
	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/tokenbucket"
)

// withClock returns cfg reading clk, for conformance.Subject.WithClock.
func withClock(cfg tokenbucket.Config, clk clock.Clock) tokenbucket.Config {
	cfg.Clock = clk
	return cfg
}
