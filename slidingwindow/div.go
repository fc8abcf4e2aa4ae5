package slidingwindow

import "math/bits"

// recip divides by a fixed divisor with multiplications instead of a
// hardware division: a Counter divides by its Window on every admitted Take
// (the previous window's weight, prev·(Window-e)/Window, a 128-bit
// dividend), and a 128-by-64-bit DIV costs tens of cycles, most of a Take.
//
// The method is Möller and Granlund's 2-by-1 division with a precomputed
// reciprocal ("Improved division by invariant integers", 2011, Algorithm 4).
// The divisor is shifted left by s until its top bit is set (d), and
// v = floor((2^128-1)/d) - 2^64. For a dividend u = u1·2^64 + u0 with
// u1 < d, the high word of v·u1 + u, plus one, is the quotient or one more
// than it, and the low words tell which: at most two corrections, each a
// compare. A dividend is shifted by the same s, which changes no quotient
// and scales the remainder by 2^s.
type recip struct {
	d uint64 // the divisor shifted left by s: its top bit is set
	v uint64 // floor((2^128-1)/d) - 2^64
	s uint   // the shift
}

// newRecip returns the reciprocal of d > 0.
func newRecip(d uint64) recip {
	s := uint(bits.LeadingZeros64(d))
	d <<= s
	// (2^128-1) - 2^64·d = (^d)·2^64 + (2^64-1), and ^d < d.
	v, _ := bits.Div64(^d, ^uint64(0), d)
	return recip{d: d, v: v, s: s}
}

// divmod returns the quotient and remainder of hi·2^64+lo by the divisor,
// whose quotient must fit 64 bits (hi·2^64+lo < divisor·2^64).
func (r recip) divmod(hi, lo uint64) (q, rem uint64) {
	// Shifted by s, the dividend still fits 128 bits, and u1 < d, since
	// it is below divisor·2^64·2^s = d·2^64. (lo >> 64 is 0 in Go.)
	u1 := hi<<r.s | lo>>(64-r.s)
	u0 := lo << r.s
	q1, q0 := bits.Mul64(r.v, u1)
	q0, c := bits.Add64(q0, u0, 0)
	q1 += u1 + c + 1
	rem = u0 - q1*r.d
	if rem > q0 {
		q1--
		rem += r.d
	}
	if rem >= r.d { // rare
		q1++
		rem -= r.d
	}
	return q1, rem >> r.s
}

// div returns floor(x/divisor).
func (r recip) div(x uint64) uint64 {
	q, _ := r.divmod(0, x)
	return q
}

// quo is divmod's quotient alone, for the hot path, of a dividend
// already shifted left by the divisor's shift (u1·2^64+u0, u1 < d): small
// enough to inline. A caller multiplying into the dividend shifts a factor
// instead, which is free when it has room (weight's e < Window).
func (r recip) quo(u1, u0 uint64) uint64 {
	q1, q0 := bits.Mul64(r.v, u1)
	q0, c := bits.Add64(q0, u0, 0)
	q1 += u1 + c + 1
	rem := u0 - q1*r.d
	if rem > q0 {
		q1--
		rem += r.d
	}
	if rem >= r.d { // rare
		q1++
	}
	return q1
}
