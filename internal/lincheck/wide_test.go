package lincheck

import (
	"math"
)

// wide is n as an int, clamped to math.MaxInt: a count past 2^31 then
// compiles on 32-bit platforms, and is exactly n on 64-bit ones.
func wide(n int64) int { return int(min(n, math.MaxInt)) }
