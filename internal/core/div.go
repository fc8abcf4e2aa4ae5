package core

import "math/bits"

// Divider divides by a fixed positive divisor with a multiply and a shift
// instead of a hardware division: a 64-bit DIV costs 15-40 cycles on common
// x86 cores against 3-4 for MUL, a large part of a Take that divides. The
// zero Divider is not usable: make one with NewDivider.
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
// every x < 2^63 since x*e < 2^63 * 2^(l+1) = 2^(64+l). A term below 1/d
// cannot carry x/d past the next integer, so floor(m*x / 2^(64+l)) =
// floor(x/d): the high word of the 128-bit product m*x, shifted right by l.
// Powers of two are a plain shift (m would be 2^64, one bit too wide).
type Divider struct {
	m  uint64 // the magic multiplier; 0 for a power of two
	d  uint64 // the divisor
	sh uint   // l, the shift
}

// NewDivider returns a Divider by d, which must be in [1, 2^63).
func NewDivider(d uint64) Divider {
	l := uint(bits.Len64(d) - 1)
	if d&(d-1) == 0 {
		return Divider{d: d, sh: l}
	}
	// floor(2^(64+l) / d): the dividend's high word 2^l is below d, as
	// bits.Div64 requires. Adding one gives the ceiling, since d is not a
	// power of two and so does not divide 2^(64+l).
	quo, _ := bits.Div64(1<<l, 0, d)
	return Divider{m: quo + 1, d: d, sh: l}
}

// Div returns floor(x/d) for 0 <= x < 2^63.
//
// sh is at most 62, and the shifts say so (& 63): a Go shift by a variable
// count is otherwise guarded for counts of 64 and over, three instructions
// each that x86's SHR, which masks its count, does not need.
func (v Divider) Div(x uint64) uint64 {
	if v.m == 0 {
		return x >> (v.sh & 63)
	}
	hi, _ := bits.Mul64(v.m, x)
	return hi >> (v.sh & 63)
}

// Ceil returns ceil(x/d) for 0 <= x with x+d-1 < 2^63.
func (v Divider) Ceil(x int64) int64 {
	return int64(v.Div(uint64(x) + v.d - 1))
}
