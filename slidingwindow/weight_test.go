package slidingwindow_test

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestWeightQuo: the quotient-only division of Take's fast path, on a
// dividend normalised by shifting e, is floor(prev·e/d) exactly, for
// divisors from 1ns to MaxWindow and the extremes of prev and e.
func TestWeightQuo(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 17))
	check := func(d, prev, e uint64) {
		t.Helper()
		want := new(big.Int).Mul(new(big.Int).SetUint64(prev), new(big.Int).SetUint64(e))
		want.Quo(want, new(big.Int).SetUint64(d))
		if got := slidingwindow.WeightQuo(d, prev, e); got != want.Uint64() {
			t.Fatalf("floor(%d·%d/%d) = %d; want %s", prev, e, d, got, want)
		}
	}
	maxW := uint64(slidingwindow.MaxWindow)
	for _, d := range []uint64{1, 2, 3, 7, 1e9, 1e9 + 7, 60e9, 86400e9, maxW - 1, maxW} {
		for _, prev := range []uint64{0, 1, 2, 1<<31 - 1} {
			for _, e := range []uint64{0, 1, d / 2, d - 1} {
				if e < d {
					check(d, prev, e)
				}
			}
		}
	}
	for range 100_000 {
		d := 1 + rng.Uint64N(maxW)
		check(d, rng.Uint64N(1<<31), rng.Uint64N(d))
	}
}
