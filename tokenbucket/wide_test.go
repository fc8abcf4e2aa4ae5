package tokenbucket_test

import (
	"math"
	"testing"
)

// wide is n as an int, clamped to math.MaxInt: a count past 2^31 then
// compiles on 32-bit platforms, and is exactly n on 64-bit ones.
func wide(n int64) int { return int(min(n, math.MaxInt)) }

// need64 skips a test whose counts pass 2^31, which an int cannot hold on a
// 32-bit platform; on 64-bit ones the test runs in full.
func need64(t testing.TB) {
	t.Helper()
	if math.MaxInt < 1<<40 {
		t.Skip("64-bit only: its counts pass 2^31")
	}
}
