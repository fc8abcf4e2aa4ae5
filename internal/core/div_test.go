package core

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDivider checks Div and Ceil against hardware division at the edges
// of their ranges and at random, for divisors of every width.
func TestDivider(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	divisors := []uint64{1, 2, 3, 7, 60e9, 86400e9, 1<<32 + 1, 1<<62 - 1, 1 << 62, math.MaxInt64}
	for range 200 {
		divisors = append(divisors, r.Uint64N(math.MaxInt64)+1, r.Uint64N(1<<uint(1+r.IntN(62)))+1)
	}
	for _, d := range divisors {
		v := NewDivider(d)
		xs := []uint64{0, 1, d - 1, d, d + 1, math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64 - d + 1}
		for range 200 {
			xs = append(xs, r.Uint64N(math.MaxInt64))
		}
		for _, x := range xs {
			if x > math.MaxInt64 {
				continue
			}
			if got := v.Div(x); got != x/d {
				t.Fatalf("Div(%d)/%d = %d, want %d", x, d, got, x/d)
			}
			if x+d-1 <= math.MaxInt64 && x+d-1 >= x {
				want := int64(x / d)
				if x%d != 0 {
					want++
				}
				if got := v.Ceil(int64(x)); got != want {
					t.Fatalf("Ceil(%d)/%d = %d, want %d", x, d, got, want)
				}
			}
		}
	}
}
