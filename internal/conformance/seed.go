package conformance

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// Seed returns the seed of a randomized test: SeedEnv's value if set, or
// else one drawn afresh. It logs the seed with the command that replays
// it, so that a failure in CI can be rerun locally. In a test whose
// goroutines race, the seed replays the random choices, not the schedule.
// A SeedEnv that is not a uint64 fails tb.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := rand.Uint64()
	if v := os.Getenv(SeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			tb.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		seed = s
	}
	tb.Logf("seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	return seed
}
