package conformance

import (
	"math"
	"testing"
)

// Wide is n as an int, clamped to math.MaxInt: a test's count past 2^31
// then compiles on 32-bit platforms, and is exactly n on 64-bit ones.
func Wide(n int64) int { return int(min(n, math.MaxInt)) }

// Need64 skips a test whose counts pass 2^31, which an int cannot hold on
// a 32-bit platform; on 64-bit ones the test runs in full.
func Need64(tb testing.TB) {
	tb.Helper()
	if math.MaxInt < 1<<40 {
		tb.Skip("64-bit only: its counts pass 2^31")
	}
}
