package tokenbucket

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"time"

	"github.com/ratekit/ratekit/internal/core"
)

// Reconfigure changes the rate and the burst at once, taking effect for
// every call that starts after it returns; it is safe while other goroutines
// take. It returns an error wrapping ratekit.ErrInvalidConfig, and changes
// nothing, if cfg is invalid.
//
// Units taken stay counted whatever limits come and go: the units taken and
// not yet refilled at the instant of the change (read on cfg.Clock), the
// bucket's empty part, carry over as a number of units and from then on
// refill at the new rate. A bucket of Burst 10 with 4 taken, raised to Burst
// 20, holds 16; lowered to Burst 3 it is 1 unit in debt, and admits nothing
// until that unit and the next have refilled; raised back to 10 it holds 6,
// as if it had never been lowered. An empty bucket stays empty, and a
// bucket 3 units in debt to Wait's reservations stays 3 units in debt, at
// that instant: a Take stamped before it is stale to the new state and
// finds the bucket emptier by the time between. So a limiter driven by
// times that are not cfg.Clock's (a replay of old events, a test with
// time.Date and no clock.Mock) must be given a Clock on the same timeline,
// or after Reconfigure it may admit nothing until its times reach the
// instant the Clock read. A bucket full at that instant keeps the instant
// it has been full since (a new one: every time), so that a Take stamped
// before the change is decided as before it, and a Reconfigure to the
// Config in force changes no decision at all; under a slower rate that
// instant moves to the one the bucket was last empty plus Burst units of
// the new rate, if that is later, and never past the change. Fractions of a
// unit are kept exactly where the new time scale can hold them and
// otherwise rounded towards less capacity, never more; when the rate
// changes (Limit or Window), a unit partly refilled counts as not refilled
// at all, since a bucket of the new rate all along could not have refilled
// it as far. A debt
// longer than 3*2^60/q ns at the new rate (q the denominator of the new
// Window/Limit in ns, in lowest terms: about 110 years at q = 1) is cut to
// that, or to the instant the bucket was to be full at the old rate plus
// the new Burst's refill, if that is later; nothing shorter is forgiven,
// and a clock glitch (a Take far ahead) stays counted until its units
// refill. The instant of the change is read exactly however far it is
// from the limiter's epoch (a glitch moves that epoch), and a TAT past the
// new parameters' range moves their epoch forward, as UnmarshalBinary
// does. Waiters already asleep keep the times
// they reserved; cancelling one of them after a Reconfigure gives nothing
// back. A Refund of a Take from before the change gives back only what of it
// was still empty at the change, and nothing at all if the change was to
// the rate (then refunds of Takes stamped within the new Burst's refill
// time after the latest stamp seen give back less, too; see carryZ).
func (l *Limiter) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	now := core.Clock(cfg.Clock).Now()
	np, err := paramsAt(cfg, now)
	if err != nil {
		return err
	}
	for {
		if l.c.Cur() == nil {
			// The zero Limiter, configured for the first time: nothing to
			// carry. Its zeroBlock is never written, so there is nothing to
			// seal; the CAS in Adopt orders racing first configurations.
			if l.c.Adopt(np, minTAT, minTAT) {
				return nil
			}
			continue
		}
		b, tat0 := l.c.Load()
		c := newChange(b.P, np, now)
		// Where the carried TAT, Z and the restore mark land decides the
		// epoch: past np's range (the bucket full more than 2^62/q ns
		// after np's epoch: a glitch taken at its word, or a debt of the
		// old rate; or Takes stamped that far after it), the epoch moves
		// forward as UnmarshalBinary moves it, so that all three are kept
		// (cut to maxTAT, Z or the mark would come back below the Takes
		// they stand for when a later Take moves the epoch forward:
		// TestFarReconfigureKeepsStamps). The TAT and Z read under the
		// seal are the ones carried; if they no longer fit (Takes moved
		// them on meanwhile), the block is put back as it was and the
		// change starts again.
		var mark *big.Int
		if m := b.P.exactMark(); m != nil {
			mark = c.seen(m) // rounded later, as Z is
		}
		mp, err := c.place(latest(c.carry(b.P.exactTAT(tat0)), c.z(b.P.exactZ(b.Aux.Load())), mark))
		if err != nil {
			return err
		}
		if mark != nil {
			mp = mp.withMark(c.shifted(mark)) // one before mp's range is kept in pastMark
		}
		again := false
		if l.c.Replace(b, func(tat, seen int64) (*params, int64, int64) {
			v, zv := c.carry(b.P.exactTAT(tat)), c.z(b.P.exactZ(seen))
			if latest(v, zv) != nil && c.shifted(latest(v, zv)).Cmp(big.NewInt(maxTAT)) > 0 {
				again = true
				return b.P, tat, seen
			}
			// A TAT or a stamp carried to before mp's range is kept in
			// mp's past or pastZ (see far.go).
			w, z := c.in(v, maxTAT), int64(minTAT)
			var past, pastZ *big.Int
			if w == minTAT && v != nil {
				past = c.shifted(v)
			}
			if zv != nil {
				if z = c.in(zv, maxTAT); z == minTAT {
					pastZ = c.shifted(zv)
				}
			}
			return mp.withPasts(past, pastZ), w, z
		}) && !again {
			return nil
		}
	}
}

// latest returns the latest of vs, nil ones left out (nil if all are).
func latest(vs ...*big.Int) *big.Int {
	var m *big.Int
	for _, v := range vs {
		if v != nil && (m == nil || v.Cmp(m) > 0) {
			m = v
		}
	}
	return m
}

// paramsAt returns parameters of cfg (valid) whose epoch is within half
// their fast range of now: the interned ones if they are (always, at q = 1),
// else new ones, private, with their epoch at now.
func paramsAt(cfg Config, now time.Time) (*params, error) {
	p, err := shared(cfg)
	if err != nil {
		return nil, err
	}
	if ns := p.since(now); -p.rng/2 <= ns && ns <= p.rng/2 {
		return p, nil
	}
	return newParams(cfg, now)
}

// change is a Reconfigure from the parameters p to np at an instant, now:
// s, now in p's units from p's epoch, exact at any distance from it (a
// glitch moves p's epoch up to 292 years and more from the clock's
// reading), and s2, now in np's (|s2| <= 2^59, see paramsAt). Its
// conversions return values in np's units from np's epoch, as big.Int,
// nil for minTAT; shift, set by place, is how many ns np's epoch then
// moves forward, and in and shifted express a value from the moved epoch.
type change struct {
	p, np *params
	s     *big.Int
	s2    int64
	shift *big.Int // ns; nil until place sets it
}

func newChange(p, np *params, now time.Time) *change {
	ns := now.Sub(p.epoch)
	rel := big.NewInt(int64(ns))
	if ns == math.MinInt64 || ns == math.MaxInt64 {
		// Sub saturated: more than 292 years apart, so the wall clock's
		// (a monotonic reading spans no such time).
		rel = new(big.Int).Sub(unixNano(now), unixNano(p.epoch))
	}
	return &change{p: p, np: np, s: rel.Mul(rel, big.NewInt(p.q)), s2: np.since(now) * np.q}
}

// carry converts the TAT old of p into a TAT of np, read at the instant of
// the change. With d = max(old - s, 0) the empty part of the bucket in p's
// units, d/p1 units are taken and not yet refilled (more than Burst1 for a
// debt). Keeping that many leaves empty
//
//	d2 = d/p1 * p2 = d*p2 / p1
//
// units of np, rounded up: beyond np's tau (Burst2*p2) when Burst2 is below
// the units taken, a debt that refills before anything is admitted. (The
// product reaches 2^94, hence math/big: this is a slow path.) A d2 over
// maxCarry is cut to that, or, if later, to the instant the old bucket is
// full plus a new Burst's refill, which cuts nothing when the rate stays:
// so a glitch (a Take far ahead, see Time in the package documentation)
// stays counted until then, and after a rate change the bucket holds
// nothing until the instant the old one was to be full.
func (c *change) carry(old *big.Int) *big.Int {
	p, np := c.p, c.np
	if old == nil {
		// Full since forever: so at every time, as a new limiter of np.
		return nil
	}
	d := new(big.Int).Sub(old, c.s)
	if d.Sign() <= 0 {
		return c.keptFull(old)
	}
	var d2 *big.Int
	if !rateChanged(p, np) {
		d2 = ceilDiv(new(big.Int).Mul(d, big.NewInt(np.p)), big.NewInt(p.p))
	} else {
		// A unit partly refilled at the old rate counts whole at the new
		// one, which could not have refilled it as far (see Reconfigure).
		d2 = new(big.Int).Mul(ceilDiv(d, big.NewInt(p.p)), big.NewInt(np.p))
	}
	if d2.Cmp(big.NewInt(maxCarry)) > 0 {
		// The old bucket's own: the instant it is full, d from now, plus
		// a new Burst's refill (at the same rate, more than d2).
		own := ceilDiv(new(big.Int).Mul(d, big.NewInt(np.q)), big.NewInt(p.q))
		own.Add(own, big.NewInt(np.tau))
		if own.Cmp(big.NewInt(maxCarry)) < 0 {
			own.SetInt64(maxCarry)
		}
		if d2.Cmp(own) > 0 {
			d2 = own
		}
	}
	return d2.Add(d2, big.NewInt(c.s2))
}

// keptFull is carry's TAT for a bucket full at the instant of the change
// (old <= s): it keeps the instant it was full at, so that a Take stamped
// before the change is decided as before it (a Reconfigure to the Config
// in force changes no decision). A slower rate moves that instant to the
// one the bucket was last empty, old - tau, plus Burst units of np, if
// that is later (a stale Take then finds no more than the old bucket
// held), but never past s2: full at the change, as at any instant it is
// full. The instants are converted as seen converts a bound, relative to
// the change and rounded up.
func (c *change) keptFull(old *big.Int) *big.Int {
	p, np := c.p, c.np
	t := c.seen(old)
	if e := c.seen(new(big.Int).Sub(old, big.NewInt(p.tau))); rateChanged(p, np) {
		e.Add(e, new(big.Int).Mul(big.NewInt(p.burst), big.NewInt(np.p)))
		if e.Cmp(t) > 0 {
			t = e
		}
	}
	if s2 := big.NewInt(c.s2); t.Cmp(s2) > 0 {
		return s2
	}
	return t
}

// seen converts v, an instant in p's units (a bound on stamps, a TAT),
// into np's, relative to the change and rounded up (a higher bound only
// makes refunds give back less): ceil((v - s) * q2 / q1) + s2.
func (c *change) seen(v *big.Int) *big.Int {
	d := new(big.Int).Sub(v, c.s)
	d = ceilDiv(d.Mul(d, big.NewInt(c.np.q)), big.NewInt(c.p.q))
	return d.Add(d, big.NewInt(c.s2))
}

// place returns np, or if v (the latest of carry's TAT, Z and the restore
// mark, nil if none: see Reconfigure) is past np's range, private
// parameters of np's Config with the epoch moved forward by whole ns until
// v is at most fastBound past it, as UnmarshalBinary moves it; it sets
// shift. Times near the old epoch are then before the fast range, decided
// exactly there (see far.go).
func (c *change) place(v *big.Int) (*params, error) {
	np := c.np
	c.shift = new(big.Int)
	if v == nil || v.Cmp(big.NewInt(maxTAT)) <= 0 {
		return np, nil
	}
	by := new(big.Int).Div(new(big.Int).Sub(v, big.NewInt(fastBound)), big.NewInt(np.q)) // Euclidean
	by.Add(by, big.NewInt(1))
	c.shift = by
	var epoch time.Time
	if by.IsInt64() {
		epoch = np.epoch.Add(time.Duration(by.Int64()))
	} else {
		// More than 292 years: from the epoch's Unix time (v is before
		// the TAT of p, a time.Time's instant, so the new epoch is one
		// too). A monotonic reading cannot span that far.
		sec, nsec := new(big.Int).DivMod(new(big.Int).Add(by, unixNano(np.epoch)), big.NewInt(int64(time.Second)), new(big.Int))
		epoch = time.Unix(sec.Int64(), nsec.Int64())
	}
	return newParams(np.cfg, epoch)
}

// shifted returns v (not nil) in units from the epoch place chose.
func (c *change) shifted(v *big.Int) *big.Int {
	return new(big.Int).Sub(v, new(big.Int).Mul(c.shift, big.NewInt(c.np.q)))
}

// in returns v (nil for minTAT) as a word from the epoch place chose: one
// before the fast range is minTAT, whose TAT the caller keeps in the
// parameters' past (see far.go), and one past hi is hi.
func (c *change) in(v *big.Int, hi int64) int64 {
	if v == nil {
		return minTAT
	}
	v = c.shifted(v)
	switch {
	case v.Cmp(big.NewInt(-fastBound)) < 0:
		return minTAT
	case v.Cmp(big.NewInt(hi)) > 0:
		return hi
	}
	return v.Int64()
}

// maxCarry is the most a Reconfigure keeps of the empty part (and debt) of a
// bucket, in units of the new scale, beyond what the old rate kept (see
// carry): a bound relative to the instant of the change, not to the
// parameters' epoch, so that what is forgiven does not depend on when the
// parameters were made.
const maxCarry = maxTAT - fastBound

// z is Reconfigure's new Z: seen's conversion of the old one, raised so
// that a Refund of a Take from before the change gives back no more than
// the carry kept of it.
//
// The carry reads the TAT at now, as a Take of 0 units stamped now would
// (max(TAT, s)): what had refilled of a Take by now is forgotten, and a
// refund must not give it back. When the rate stays (only Burst changes),
// that is all the carry does, and Refund's proof holds for it if Z counts
// now as a stamp. When the rate changes, the carry also scales the time
// from now to the TAT, stamps and gaps between them included, which a
// refund reads unscaled: it would give back more than was kept (a Take of
// 6 from a bucket of 10 at 10/s, stamped 0.5 s before a change to 5/s,
// keeps 0.2 s of the new rate and would give back 0.7 s; a Take stamped
// after now, followed by Takes after the change, is kept shortened by a
// faster rate). Then Z is set one new Burst's refill past that, so that no
// Take admitted before the change gets anything back: a refund gives back
// at most Burst's refill less Z minus its stamp. Refunds of Takes stamped
// within that time after it give back less, too. (TestRefundAcrossRateChange,
// TestRefundAcrossRateChangeRandom and conformance's RefundAcrossReconfigure
// failed without these raises.) Z is given and returned exactly (see
// exactZ), in np's units from np's epoch before place moves it; nil (no
// Take admitted since the last restore) stays nil.
func (c *change) z(seen *big.Int) *big.Int {
	if seen == nil {
		return nil
	}
	z := c.seen(seen)
	if s2 := big.NewInt(c.s2); z.Cmp(s2) < 0 {
		z = s2
	}
	if rateChanged(c.p, c.np) {
		z.Add(z, big.NewInt(c.np.tau))
	}
	return z
}

// rateChanged reports whether the emission intervals in ns of p and np,
// p.p/p.q and np.p/np.q, differ (the products reach 2^120: math/big).
func rateChanged(p, np *params) bool {
	return new(big.Int).Mul(big.NewInt(np.p), big.NewInt(p.q)).Cmp(new(big.Int).Mul(big.NewInt(p.p), big.NewInt(np.q))) != 0
}

// ceilDiv returns ceil(a/b) for b > 0.
func ceilDiv(a, b *big.Int) *big.Int {
	q, m := new(big.Int).DivMod(a, b, new(big.Int)) // Euclidean: m >= 0
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// stateVersion is the format version of MarshalBinary's output. Version 1:
//
//	header  "rk", core.TokenBucket, 1
//	uvarint kind: 0 = full since forever (a new limiter); 1 = a TAT follows
//	varint  the TAT's whole Unix nanoseconds (wall clock), rounded down
//	uvarint its fraction's numerator r, 0 <= r < den
//	uvarint the fraction's denominator den, 1 <= den <= 2^32 (the time scale q)
//
// Version 2 (wideVersion) is written only for a TAT that int64 Unix
// nanoseconds cannot hold (before 1678 or after 2262-04-11, which a
// Config.Clock may read): kind is 1, and the TAT's whole Unix nanoseconds
// are two varints instead, Unix seconds and a nanosecond within the second
// (0 to 999,999,999), followed by r and den as in version 1.
//
// Version 3 (rateVersion) records the rate the state was saved under, so
// that a limiter of another rate can carry it (see UnmarshalBinary); it is
// written for every state with a TAT (kind 1), and version 1 only for a
// full bucket (kind 0), which needs no rate: builds that read versions 1
// and 2 only still read a new limiter's state, and refuse a version 3
// state with an error wrapping ratekit.ErrInvalidState ("format version
// 3"). Its payload:
//
//	uvarint kind: 1
//	varint  the TAT's Unix seconds, uvarint its nanosecond within the second
//	uvarint r and den, as in version 1
//	uvarint the emission interval's numerator p: Window/Limit is p/den ns,
//	        1 <= p <= 2^60
//	uvarint Burst, 1 <= Burst, Burst*p <= 2^60
const (
	stateVersion = 1
	wideVersion  = 2
	rateVersion  = 3
)

// MarshalBinary encodes the bucket's state in wall-clock terms: the Unix
// time, exact to the time scale, at which the bucket will be full, with the
// rate and Burst it is full at (format version 3; a bucket full since
// forever, a new limiter's: version 1, see stateVersion). A limiter
// restored from it after downtime has refilled by the time that passed;
// one of another rate carries it (see UnmarshalBinary). It never fails.
func (l *Limiter) MarshalBinary() ([]byte, error) {
	blk, tat := l.load()
	p := blk.P
	t := p.exactTAT(tat) // before the fast range, too (see past)
	if t == nil {
		b := core.AppendHeader(make([]byte, 0, core.HeaderLen+1), core.TokenBucket, stateVersion)
		return binary.AppendUvarint(b, 0), nil
	}
	whole, rb := new(big.Int).DivMod(t, big.NewInt(p.q), new(big.Int)) // Euclidean: 0 <= r < q
	r := rb.Int64()
	unix := unixNano(p.epoch)
	unix.Add(unix, whole)
	b := make([]byte, 0, core.HeaderLen+7*binary.MaxVarintLen64)
	{
		sec, nsec := new(big.Int).DivMod(unix, big.NewInt(int64(time.Second)), new(big.Int)) // Euclidean: nsec >= 0
		switch {
		case sec.Cmp(big.NewInt(core.MaxUnixSec)) > 0:
			// Past the last second time.Time holds: an epoch within 292
			// years of it. Saturated to the last instant, later than the
			// TAT: the restored bucket is full later, never sooner.
			sec.SetInt64(core.MaxUnixSec)
			nsec.SetInt64(int64(time.Second) - 1)
			r = p.q - 1
		case !sec.IsInt64():
			// Before every Unix second an int64 holds (an epoch within
			// 292 years of time.Time's first second): the bucket is full
			// at every time after it, so full at the first.
			sec.SetInt64(math.MinInt64)
			nsec.SetInt64(0)
			r = 0
		}
		b = core.AppendHeader(b, core.TokenBucket, rateVersion)
		b = binary.AppendUvarint(b, 1)
		b = binary.AppendVarint(b, sec.Int64())
		b = binary.AppendUvarint(b, nsec.Uint64())
	}
	b = binary.AppendUvarint(b, uint64(r))
	b = binary.AppendUvarint(b, uint64(p.q))
	b = binary.AppendUvarint(b, uint64(p.p))
	return binary.AppendUvarint(b, uint64(p.burst)), nil
}

// unixNano returns t's wall clock in Unix ns, for any year.
func unixNano(t time.Time) *big.Int {
	v := big.NewInt(t.Unix())
	v.Mul(v, big.NewInt(int64(time.Second)))
	return v.Add(v, big.NewInt(int64(t.Nanosecond())))
}

// UnmarshalBinary restores a state written by MarshalBinary, of format
// version 1, 2 or 3. Truncated, corrupt or foreign bytes, and decoded values
// out of range (a version 2 instant past the last second time.Time holds),
// return an error wrapping ratekit.ErrInvalidState and leave the limiter
// unchanged. It is safe while other goroutines take.
//
// The instant at which the bucket is full is kept exactly when the state's
// time scale divides this limiter's (as it does for the same Config), and
// otherwise rounded later (less capacity). An instant more than 2^62/q ns
// past the limiter's epoch (146 years at q = 1) moves the epoch forward, so
// that the instant is kept in any year; one more than 2^60/q ns before it
// (36 years at q = 1, 1.15 s at q = 999999937: a restart long after the
// save) moves the epoch back to the instant, in any year, so that a
// Take stamped at the saver's times is decided on the fast path (see Time
// in the package documentation); a Take near the old epoch moves it
// forward again, as it does in the saver. Either move gives the Limiter
// parameters of its own. (Restored into a Limiter that has taken, the
// epoch moves back only as far as keeps the mark below within 2^62/q ns
// after it; further back, the epoch stays and the TAT is kept exactly before
// the fast range: the saver's times are decided as the saver decided
// them, off the fast path.)
//
// A version 3 state records the rate and Burst it was saved under, and a
// limiter of another rate carries it as Reconfigure does (Persistence in
// the ratekit package documentation), from the state's own instant: the
// state does not record when it was saved, so its units may all have been
// taken when the bucket was last empty, a Burst's refill before the
// instant it is full. The bucket restored is full at the later of that
// instant and Burst units of this rate after the one it was last empty:
// 10 taken at once from a bucket of 10 a second at r (full at r+1s),
// restored into 10 per 2 seconds, is full at r+2s, as a bucket of the new
// rate all along; 1 taken at r (full at r+0.1s) is full at r+1.1s, as if
// the Burst had been taken 0.9 s before r. A faster rate, or a Burst
// change at the same rate, keeps the instant. The carry does not start at
// the restoring Clock's reading, as Reconfigure's does: the time between
// the save and that reading refilled the bucket at the old rate, which a
// bucket of this rate all along would not have (10 taken at r restored at
// r+0.5s would be full at r+1.5s, not r+2s). A debt beyond the Burst (Wait's
// reservations, a Burst lowered by Reconfigure) is kept as time, not
// carried as units, and a carry of more than 2^62/q ns is cut to that.
// Version 1 and 2 states record no rate and are restored as this
// limiter's own: restored into a slower rate, they count fewer units than
// were taken.
//
// Restoring into a Limiter that has taken (or was restored before) marks
// the Takes it admitted: from then on a Refund stamped at or before the
// latest of their stamps gives nothing back, since the restored state
// never counted them. The Limiter keeps that mark in parameters of its
// own (a copy of its Config's, 240 bytes); a restore into a new
// Limiter, as package persist does, keeps the shared ones.
func (l *Limiter) UnmarshalBinary(b []byte) error {
	var wide, rated bool
	payload, err := core.ParseHeader(b, core.TokenBucket, rateVersion)
	if err == nil {
		wide, rated = true, true
	} else if payload, wide, err = core.ParseHeaders(b, core.TokenBucket, stateVersion, wideVersion); err != nil {
		if len(b) >= core.HeaderLen {
			if _, e := core.ParseHeader(b, core.TokenBucket, b[3]); e == nil {
				return core.InvalidState(pkg, "format version %d, this build reads 1, 2 and 3", b[3])
			}
		}
		return err
	}
	r := core.NewReader(core.TokenBucket, payload)
	kind := r.Uint64()
	var unix *big.Int // the TAT's whole Unix nanoseconds, if kind is 1
	var num, den uint64
	var sr *savedRate
	switch {
	case kind == 0 && !wide:
	case kind == 1 && !wide:
		unix = big.NewInt(r.Int64())
	case kind == 1:
		unix = unixNano(r.Unix("TAT"))
	case kind == 0:
		r.Fail("no TAT in a version %d or %d state", wideVersion, rateVersion)
	default:
		r.Fail("unknown state kind %d", kind)
	}
	if unix != nil {
		num, den = r.Uint64(), r.Uint64()
		if den == 0 || den > maxScale {
			r.Fail("time scale %d outside [1, 2^32]", den)
		} else if num >= den {
			r.Fail("fraction %d/%d is not below 1", num, den)
		}
	}
	if rated && unix != nil {
		p, burst := r.Uint64(), r.Uint64()
		hi, tau := bits.Mul64(p, burst)
		switch {
		case p == 0 || p > fastBound:
			r.Fail("emission interval %d/%d ns: numerator outside [1, 2^60]", p, den)
		case burst == 0 || hi != 0 || tau > fastBound:
			r.Fail("Burst %d at %d/%d ns a unit: outside [1, 2^60/%d]", burst, p, den, p)
		default:
			sr = &savedRate{tau: tau, burst: burst}
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	if l.c.Cur() == nil {
		return core.InvalidState(pkg, "the zero Limiter has no configuration to restore a state into; create it with New")
	}
	for {
		b, _ := l.c.Load()
		if done, err := l.restore(b, unix, num, den, sr); done || err != nil {
			return err
		}
	}
}

// savedRate is the rate a version 3 state was saved under: tau, the time
// to refill its Burst from empty, in units of 1/den ns (den the state's
// time scale), and the Burst.
type savedRate struct {
	tau, burst uint64
}

// maxUnixNano is the last Unix nanosecond time.Time holds.
var maxUnixNano = new(big.Int).Add(new(big.Int).Mul(big.NewInt(core.MaxUnixSec), big.NewInt(int64(time.Second))), big.NewInt(int64(time.Second)-1))

// restore replaces b, the block in force, by the state UnmarshalBinary
// decoded, and reports whether it did (false: another replacement sealed b
// first; the caller starts again). sr, if not nil, is the rate the state
// was saved under.
func (l *Limiter) restore(b *block, unix *big.Int, num, den uint64, sr *savedRate) (bool, error) {
	// The restored state keeps nothing of the TAT and the stamps before
	// the fast range that p may hold (see past): p0 is p without them.
	p, p0 := b.P, b.P.withPasts(nil, nil)
	np, tat := p0, int64(minTAT) // the same epoch keeps the parameters, which may be shared
	var shift *big.Int           // ns the epoch moves forward (back, if negative) by, if it does
	var far *big.Int             // the TAT in p's units, if before p's fast range
	if unix != nil {
		// v = ceil(((unix - epoch) + num/den) * q), in this limiter's units.
		q := big.NewInt(p.q)
		rel := new(big.Int).Sub(unix, unixNano(p.epoch))
		v := new(big.Int).Mul(rel, q)
		v.Add(v, ceilDiv(new(big.Int).Mul(new(big.Int).SetUint64(num), q), new(big.Int).SetUint64(den)))
		if sr != nil {
			v = carryRestored(v, rel, num, den, sr, p)
		}
		switch {
		case v.Cmp(big.NewInt(-fastBound)) < 0:
			// Before the fast range: move the epoch back by whole ns to the
			// TAT (0 <= tat < q), so that the saver's times are on the
			// fast path; a Take near this limiter's old epoch moves it
			// forward again, as in the saver.
			far = new(big.Int).Set(v)
			by, rem := new(big.Int).DivMod(v, q, new(big.Int)) // Euclidean: rem >= 0
			shift = new(big.Int).Set(by)
			var epoch time.Time
			if by.IsInt64() {
				epoch = p.epoch.Add(time.Duration(by.Int64()))
			} else {
				// More than 292 years back: from the epoch's Unix time, as
				// below (full at every time this limiter read, the saver's
				// drained instants admitted a Burst).
				sec, nsec := new(big.Int).DivMod(by.Add(by, unixNano(p.epoch)), big.NewInt(int64(time.Second)), new(big.Int))
				epoch = time.Unix(sec.Int64(), nsec.Int64())
			}
			var err error
			np, err = newParams(p.cfg, epoch)
			if err != nil {
				return false, core.InvalidState(pkg, "%v", err) // cannot happen: p.cfg was validated
			}
			tat = rem.Int64()
		case v.Cmp(big.NewInt(maxTAT)) <= 0:
			tat = v.Int64()
		default:
			// Further ahead than the state holds: move the epoch forward by
			// whole ns until the TAT is at most fastBound past it. (Times
			// near the TAT are on the fast path; times near the old epoch
			// are before it, where the bucket is empty: see far.go.)
			by, rem := new(big.Int).DivMod(new(big.Int).Sub(v, big.NewInt(fastBound)), q, new(big.Int))
			by.Add(by, big.NewInt(1))
			shift = new(big.Int).Set(by)
			var epoch time.Time
			if by.IsInt64() {
				epoch = p.epoch.Add(time.Duration(by.Int64()))
			} else {
				// More than 292 years: from the epoch's Unix time (the
				// TAT is a time.Time's, so the new epoch, before it, is
				// one too). A monotonic reading cannot span that far.
				sec, nsec := new(big.Int).DivMod(by.Add(by, unixNano(p.epoch)), big.NewInt(int64(time.Second)), new(big.Int))
				epoch = time.Unix(sec.Int64(), nsec.Int64())
			}
			var err error
			np, err = newParams(p.cfg, epoch)
			if err != nil {
				return false, core.InvalidState(pkg, "%v", err) // cannot happen: p.cfg was validated
			}
			tat = fastBound - (p.q - rem.Int64()) // v - shift*q
		}
	}
	// The Takes counted in the replaced state are no longer counted, and
	// none of this limiter's is counted in the restored one: a Refund of
	// any Take admitted before the restore must give nothing back. Z, the
	// replaced block's Aux, bounds their stamps (an admitted Take raises
	// it before its CAS), and the replaced parameters' mark those of the
	// Takes before an earlier restore: the larger of the two, in np's
	// units, is the new mark (see params.mark), and the new Z starts
	// afresh, since the restored TAT reflects no Take of this limiter.
	// (Bounding Z by the restored TAT instead, as this did before, gave
	// back units into a restored state with room: a limiter that took 5
	// of 10, restored a state with 3 taken and refunded its 5 admitted 9.)
	return l.c.Replace(b, func(_, seen int64) (*params, int64, int64) {
		m := latest(p.exactMark(), p.exactZ(seen)) // exact, in p's units
		if m == nil || shift == nil {
			return np.withMark(m), tat, minTAT
		}
		// The epoch moves: the mark moves by as much, exactly (one
		// before np's range is kept in pastMark). If it moves back and
		// the mark cannot follow (the Takes it marks are more than
		// 2^62/q ns after the restored TAT), the epoch stays, with the
		// mark: a Refund of those Takes must give nothing back. The TAT,
		// before the fast range, is kept exactly in past (see far.go), so
		// the saver's times are decided as the saver decided them, off
		// the fast path.
		mm := new(big.Int).Sub(m, new(big.Int).Mul(shift, big.NewInt(p.q)))
		if mm.Cmp(big.NewInt(maxTAT)) > 0 {
			return p0.withMark(m).withPasts(far, nil), minTAT, minTAT
		}
		return np.withMark(mm), tat, minTAT
	}), nil
}

// carryRestored returns the TAT v (this limiter's units, from p's epoch)
// of a state saved under the rate sr, carried as Reconfigure carries one
// (see carry) from the instant the bucket was last empty, the state's own
// instant (see UnmarshalBinary): that instant, tau before the TAT
// rel + num/den ns, rounded up, plus Burst emission intervals of p, cut at
// maxCarry, if that is later than v; and never past the last instant
// time.Time holds, unless v is.
func carryRestored(v, rel *big.Int, num, den uint64, sr *savedRate, p *params) *big.Int {
	// ceil(((rel*den + num - tau) * q) / den)
	e := new(big.Int).Mul(rel, new(big.Int).SetUint64(den))
	e.Add(e, new(big.Int).SetUint64(num))
	e.Sub(e, new(big.Int).SetUint64(sr.tau))
	e = ceilDiv(e.Mul(e, big.NewInt(p.q)), new(big.Int).SetUint64(den))
	d := new(big.Int).Mul(new(big.Int).SetUint64(sr.burst), big.NewInt(p.p))
	if d.Cmp(big.NewInt(maxCarry)) > 0 {
		d.SetInt64(maxCarry)
	}
	c := e.Add(e, d)
	if c.Cmp(v) <= 0 {
		return v
	}
	last := new(big.Int).Sub(maxUnixNano, unixNano(p.epoch))
	last.Mul(last, big.NewInt(p.q))
	if c.Cmp(last) > 0 {
		if last.Cmp(v) <= 0 {
			return v
		}
		return last
	}
	return c
}
