package fixedwindow

import (
	"math"
	"math/bits"
	"time"
)

// floorMod returns a mod b in [0, b) for b > 0.
func floorMod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// satAdd returns a + b for a, b >= 0, saturated at maxWait: a duration of
// centuries, never ratekit.Never, which is reserved for requests that can
// never be admitted (the merged last window's locate returns itself).
// Saturating at math.MaxInt64 told a request stamped in the zero time, or
// any time 292 years before the state's window, that it could never be
// admitted, and Wait gave up on it with ErrExceedsLimit.
func satAdd(a time.Duration, b int64) time.Duration {
	if int64(a) > maxWait-b {
		return maxWait
	}
	return a + time.Duration(b)
}

// maxWait is the longest finite wait a Decision reports: one below
// ratekit.Never (math.MaxInt64).
const maxWait = math.MaxInt64 - 1

// satMul returns k * w for w > 0, or math.MaxInt64 if the product does not
// fit.
func satMul(k uint64, w int64) int64 {
	if k > uint64(math.MaxInt64/w) {
		return math.MaxInt64
	}
	return int64(k) * w
}

// phase returns where, modulo w (w > 0), the windows of Offset off start:
// the residue in [0, w) of the Unix nanoseconds of every window start.
//
// Windows are windows of local time, Unix time + off (off is the zone's
// offset east of UTC), so a window starts where unix + off is a multiple
// of w, that is where unix = -off (mod w). -off itself would overflow for
// off = math.MinInt64, so it is taken modulo w first: with m = off mod w
// in [0, w), -off mod w is w - m, or 0 when m is 0; w - m is in (0, w] and
// cannot overflow. For a daily w, off = -5h (New York) gives 5h: windows
// start at 05:00 UTC, midnight in New York; off = +1h gives 23h.
func phase(off time.Duration, w int64) int64 {
	return (w - floorMod(int64(off), w)) % w
}

// alignDown returns the start of the window that contains t: the latest
// instant s <= t such that s's Unix time in nanoseconds, minus ph, is a
// multiple of w (w > 0, 0 <= ph < w; ph is the phase of the windows, see
// phase). t must carry no monotonic reading.
//
// It is exact for every time.Time, the zero time included. t.UnixNano()
// is not (it overflows outside 1678-2262), so it works on t's Unix seconds
// and nanoseconds modulo w instead:
//
//	(sec*1e9 + nsec - ph) mod w = ((sec mod w)*(1e9 mod w) + (nsec-ph) mod w) mod w
//
// where the product of two residues below 2^63 is formed in 128 bits, and
// the sum of two residues below 2^63 fits in a uint64.
func alignDown(t time.Time, w, ph int64) time.Time {
	uw := uint64(w)
	hi, lo := bits.Mul64(uint64(floorMod(t.Unix(), w)), 1e9%uw)
	secPart := bits.Rem64(hi, lo, uw)
	nsecPart := uint64(floorMod(int64(t.Nanosecond())-ph, w)) // nsec-ph is in (-w, 1e9)
	r := (secPart + nsecPart) % uw
	return t.Add(-time.Duration(r))
}

// far returns q = floor((now - epoch) / w) and r = (now - epoch) mod w for
// instants 2^33 seconds (272 years) or more apart, whose difference in
// nanoseconds may not fit in int64 (time.Time.Sub would saturate). It forms
// now - epoch exactly in 128 bits from Unix seconds and nanoseconds.
// A q beyond int64 (only for windows shorter than the distance divided by
// 2^63) is saturated to math.MinInt64 or math.MaxInt64, which every span
// clamps; r is then meaningless and 0.
func far(now, epoch time.Time, w int64) (q, r int64) {
	a, b := now.Unix(), epoch.Unix()
	s := a - b
	n := int64(now.Nanosecond()) - int64(epoch.Nanosecond())
	if n < 0 {
		s, n = s-1, n+1e9
	}
	// Now now - epoch = s*1e9 + n with 0 <= n < 1e9, unless the seconds
	// overflowed: a and b are int64s, so a-b (or a-b-1) wraps only when its
	// true value is beyond int64, i.e. when its sign disagrees with a >= b.
	if (a >= b) != (s >= 0) && !(a == b && s == -1) {
		if a >= b {
			return math.MaxInt64, 0
		}
		return math.MinInt64, 0
	}
	uw := uint64(w)
	if s >= 0 {
		hi, lo := bits.Mul64(uint64(s), 1e9)
		var c uint64
		lo, c = bits.Add64(lo, uint64(n), 0)
		hi += c
		if hi >= uw { // the quotient needs more than 64 bits
			return math.MaxInt64, 0
		}
		uq, ur := bits.Div64(hi, lo, uw)
		if uq > math.MaxInt64 {
			return math.MaxInt64, 0
		}
		return int64(uq), int64(ur)
	}
	// now - epoch = -m with m = -s*1e9 - n > 0; floor(-m/w) = -ceil(m/w).
	hi, lo := bits.Mul64(-uint64(s), 1e9)
	var bo uint64
	lo, bo = bits.Sub64(lo, uint64(n), 0)
	hi -= bo
	if hi >= uw {
		return math.MinInt64, 0
	}
	uq, ur := bits.Div64(hi, lo, uw)
	if uq >= 1<<63 {
		return math.MinInt64, 0
	}
	if ur != 0 {
		uq, ur = uq+1, uw-ur
	}
	return int64(-uq), int64(ur) // -uq wraps to the right int64, -2^63 included
}

// span returns the instant epoch + q*w, exactly for any q whose result
// has Unix seconds within ±(2^62-1), and the nearest such instant for the
// rest (which lie far beyond any real window, and which UnmarshalBinary
// accepts back).
func span(epoch time.Time, q, w int64) time.Time {
	const lim = 1<<62 - 1
	m := uint64(q)
	if q < 0 {
		m = -m
	}
	hi, lo := bits.Mul64(m, uint64(w))
	sec, nsec := uint64(lim), uint64(0)
	if hi < 1e9 {
		sec, nsec = bits.Div64(hi, lo, 1e9)
		sec = min(sec, lim)
	}
	// es in [-lim, lim] and sec in [0, lim]: es±sec stays within int64.
	es, en := max(min(epoch.Unix(), lim), -lim), int64(epoch.Nanosecond())
	if q < 0 {
		es, en = es-int64(sec), en-int64(nsec)
	} else {
		es, en = es+int64(sec), en+int64(nsec)
	}
	if es <= -lim || es >= lim {
		return time.Unix(max(min(es, lim), -lim), 0)
	}
	return time.Unix(es, en) // time.Unix carries en outside [0, 1e9) into the seconds
}
