package tokenbucket

import "math/bits"

// divider divides by a fixed positive divisor with a multiply and a shift
// instead of a hardware division. Take divides twice (by the emission interval
// for Remaining, by the time scale for ResetAfter); a 64-bit DIV costs 15-40
// cycles on common x86 cores against 3-4 for MUL, which is most of the gap
// between a bare CAS and a Take.
//
// The method is Granlund and Montgomery's ("Division by invariant integers
// using multiplication", 1994). For a divisor d that is not a power of two,
// let l = floor(log2 d), so 2^l < d < 2^(l+1), and m = ceil(2^(64+l) / d).
// Then m < 2^64 (because d > 2^l), and the error e = m*d - 2^(64+l) lies in
// (0, d). For 0 <= x:
//
//	m*x / 2^(64+l) = x/d + x*e/(d*2^(64+l))
//
// and the second term is below 1/d whenever x*e < 2^(64+l), which holds for
// every x < 2^63 since x*e < 2^63 * 2^(l+1) = 2^(64+l). A term below 1/d cannot
// carry x/d past the next integer, so floor(m*x / 2^(64+l)) = floor(x/d): the
// high word of the 128-bit product m*x, shifted right by l. Powers of two
// are a plain shift (m would be 2^64, one bit too wide).
type divider struct {
	m  uint64 // the magic multiplier; 0 for a power of two
	d  uint64 // the divisor
	sh uint   // l, the shift
}

func newDivider(d uint64) divider {
	l := uint(bits.Len64(d) - 1)
	if d&(d-1) == 0 {
		return divider{d: d, sh: l}
	}
	// floor(2^(64+l) / d): the dividend's high word 2^l is below d, as
	// bits.Div64 requires. Adding one gives the ceiling, since d is not a
	// power of two and so does not divide 2^(64+l).
	quo, _ := bits.Div64(1<<l, 0, d)
	return divider{m: quo + 1, d: d, sh: l}
}

// div returns floor(x/d) for 0 <= x < 2^63.
func (v divider) div(x uint64) uint64 {
	if v.m == 0 {
		return x >> v.sh
	}
	hi, _ := bits.Mul64(v.m, x)
	return hi >> v.sh
}

// ceil returns ceil(x/d) for 0 <= x with x+d-1 < 2^63. Every caller's x is
// bounded by 2^62 + 2^61 (see the bounds in tokenbucket.go) and d by 2^60.
func (v divider) ceil(x int64) int64 {
	return int64(v.div(uint64(x) + v.d - 1))
}
