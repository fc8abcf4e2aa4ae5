package fixedwindow_test

import (
	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/fixedwindow"
)

// withClock returns cfg reading clk, for conformance.Subject.WithClock.
func withClock(cfg fixedwindow.Config, clk clock.Clock) fixedwindow.Config {
	cfg.Clock = clk
	return cfg
}
