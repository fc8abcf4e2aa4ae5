package model

import (
	"math"
	"math/big"
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// TokenBucket is the reference model of tokenbucket.Limiter: GCRA in exact
// rational nanoseconds (math/big), under a mutex, with no bounds and no
// cleverness. Its time is now - Epoch in ns, exactly in any year (where
// time.Time.Sub saturates, 292 years apart, from the wall clocks' Unix
// times); it knows nothing of the real limiter's epoch or fast-path range,
// and the limiter decides every time as it does. The durations it reports
// are capped one below ratekit.Never, as the limiter's are.
type TokenBucket struct {
	mu     sync.Mutex
	burst  int
	name   string
	t      *big.Rat // the emission interval, Window/Limit ns
	tau    *big.Rat // Burst*t: the time to refill Burst from empty
	tat    *big.Rat // when the bucket is full again; nil: full since forever
	seen   *big.Rat // the latest stamp of a Take admitted or raced (see Stamp); nil: none
	mark   *big.Rat // a Refund stamped at or before it gives nothing back (see Restore); nil: none
	epoch  time.Time
	window time.Duration
}

// NewTokenBucket returns a full bucket. Limit, window and burst must be
// positive.
func NewTokenBucket(limit int, window time.Duration, burst int, name string, epoch time.Time) *TokenBucket {
	m := &TokenBucket{epoch: epoch}
	m.set(limit, window, burst, name)
	return m
}

func (m *TokenBucket) set(limit int, window time.Duration, burst int, name string) {
	m.burst, m.name = burst, name
	m.t = big.NewRat(int64(window), int64(limit))
	m.tau = new(big.Rat).Mul(m.t, ratInt(int64(burst)))
	m.window = time.Duration(ceil(m.tau))
}

func ratInt(v int64) *big.Rat { return new(big.Rat).SetInt64(v) }

func (m *TokenBucket) at(now time.Time) *big.Rat {
	if d := now.Sub(m.epoch); d != math.MinInt64 && d != math.MaxInt64 {
		return ratInt(int64(d))
	}
	return new(big.Rat).SetInt(new(big.Int).Sub(unixNano(now), unixNano(m.epoch))) // Sub saturated
}

// unixNano returns t's wall clock in Unix ns, for any year.
func unixNano(t time.Time) *big.Int {
	v := big.NewInt(t.Unix())
	v.Mul(v, big.NewInt(int64(time.Second)))
	return v.Add(v, big.NewInt(int64(t.Nanosecond())))
}

// dur is x ns rounded up, capped one below ratekit.Never (which is for
// requests that can never be admitted), as the limiter caps what it
// reports: a time centuries before the TAT.
func dur(x *big.Rat) time.Duration {
	q, r := new(big.Int).DivMod(x.Num(), x.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() || q.Int64() > int64(ratekit.Never-1) {
		return ratekit.Never - 1
	}
	return time.Duration(q.Int64())
}

// ceil rounds x up to an integer.
func ceil(x *big.Rat) int64 {
	q, r := new(big.Int).DivMod(x.Num(), x.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

// floor rounds x down to an integer.
func floor(x *big.Rat) int64 {
	q, _ := new(big.Int).DivMod(x.Num(), x.Denom(), new(big.Int))
	return q.Int64()
}

// empty returns d = max(TAT - now, 0): how long until the bucket is full.
func (m *TokenBucket) empty(now *big.Rat) *big.Rat {
	if m.tat == nil || m.tat.Cmp(now) <= 0 {
		return new(big.Rat)
	}
	return new(big.Rat).Sub(m.tat, now)
}

// holds returns how many whole units the bucket holds when d of it is empty.
func (m *TokenBucket) holds(d *big.Rat) int {
	if d.Cmp(m.tau) > 0 {
		return 0
	}
	return int(floor(new(big.Rat).Quo(new(big.Rat).Sub(m.tau, d), m.t)))
}

// Take decides a request for n units at now and, if admitted, takes them.
func (m *TokenBucket) Take(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(now, n, true)
}

// Peek decides as Take would, taking nothing.
func (m *TokenBucket) Peek(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(now, n, false)
}

func (m *TokenBucket) decide(nowT time.Time, n int, take bool) ratekit.Decision {
	now := m.at(nowT)
	d := m.empty(now)
	dec := ratekit.Decision{Limit: m.burst, Window: m.window, Policy: m.name}
	dec.Remaining = m.holds(d)
	dec.ResetAfter = dur(d)
	switch {
	case n == 0:
		dec.Allowed = true
		return dec
	case n < 0 || n > m.burst:
		dec.RetryAfter = ratekit.Never
		return dec
	}
	nd := new(big.Rat).Add(d, new(big.Rat).Mul(m.t, ratInt(int64(n))))
	if nd.Cmp(m.tau) > 0 {
		dec.RetryAfter = dur(new(big.Rat).Sub(nd, m.tau))
		return dec
	}
	dec.Allowed = true
	dec.Remaining = m.holds(nd)
	dec.ResetAfter = dur(nd)
	if take {
		m.tat = new(big.Rat).Add(now, nd)
		if m.seen == nil || now.Cmp(m.seen) > 0 {
			m.seen = now
		}
	}
	return dec
}

// Stamp raises the bound on stamps to now, if later: what a Take stamped now
// does when it finds a state that admits it, before it tries to store its
// TAT. If it then loses the race to another call, a Refund may see the
// raise before the Take is decided, and a Take denied on retry leaves it
// (see tokenbucket.Limiter.Refund). The model's Take only raises the bound
// when admitted; a checker adds a Stamp, which it may take or not,
// anywhere in the call of each Take of 0 < n <= Burst.
func (m *TokenBucket) Stamp(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.at(now); m.seen == nil || a.Cmp(m.seen) > 0 {
		m.seen = a
	}
}

// Refund moves the TAT back by n emission intervals (n capped at Burst),
// less the time by which the bound on stamps (those of admitted Takes, and
// of denied ones given to Stamp) is later than `at`, but not to before `at`
// and never forward.
func (m *TokenBucket) Refund(at time.Time, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n <= 0 || m.tat == nil {
		return
	}
	n = min(n, m.burst)
	a := m.at(at)
	if m.mark != nil && a.Cmp(m.mark) <= 0 {
		return // a Take from before a restore
	}
	give := new(big.Rat).Mul(m.t, ratInt(int64(n)))
	if m.seen != nil && m.seen.Cmp(a) > 0 {
		give.Sub(give, new(big.Rat).Sub(m.seen, a))
	}
	if give.Sign() <= 0 {
		return
	}
	next := new(big.Rat).Sub(m.tat, give)
	floor := a
	if m.tat.Cmp(floor) < 0 {
		floor = m.tat
	}
	if next.Cmp(floor) < 0 {
		next = floor
	}
	m.tat = next
}

// Idle reports whether the bucket is full at now and its restore mark, if
// any, is at least tau (a refill of Burst) before now: a new bucket in its
// place has no mark.
func (m *TokenBucket) Idle(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.at(now)
	if m.mark != nil && new(big.Rat).Sub(a, m.tau).Cmp(m.mark) < 0 {
		return false
	}
	return m.empty(a).Sign() == 0
}

// Reconfigure changes the rate and burst at now, keeping the units taken
// and not yet refilled (the empty part, a fraction, or a debt). The new
// empty part is rounded up to the new rate's resolution, 1/q ns, where q is
// the denominator of the new Window/Limit in lowest terms, and capped at
// 3*2^60 of those units or the time to the old bucket's TAT plus a new
// Burst's refill, whichever is more (a debt beyond that is forgiven, as in
// the real one).
// A bucket full at now keeps the instant it is full since, moved as the
// real one's keptFull moves it under a slower rate.
func (m *TokenBucket) Reconfigure(now time.Time, limit int, window time.Duration, burst int, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at := m.at(now)
	deficit := new(big.Rat).Quo(m.empty(at), m.t) // units taken, not yet refilled
	oldT, oldTau, oldBurst, oldTAT := m.t, m.tau, m.burst, m.tat
	m.set(limit, window, burst, name)
	if m.tat == nil || deficit.Sign() == 0 {
		// Full at now: full since forever stays so; otherwise the instant
		// it was full at is kept, under a slower rate moved to the instant
		// it was last empty plus oldBurst units of the new rate if later,
		// never past now, rounded up (the real one's keptFull).
		if m.tat != nil {
			t := oldTAT
			if m.t.Cmp(oldT) > 0 {
				e := new(big.Rat).Sub(oldTAT, oldTau)
				e.Add(e, new(big.Rat).Mul(m.t, ratInt(int64(oldBurst))))
				if e.Cmp(t) > 0 {
					t = e
				}
			}
			if t.Cmp(at) > 0 {
				t = at
			}
			m.tat = roundUp(t, m.t.Denom())
		}
		m.carryBounds(at, oldT)
		return
	}
	if m.t.Cmp(oldT) != 0 && !deficit.IsInt() {
		// A unit partly refilled at the old rate counts whole at the new.
		deficit.SetInt(new(big.Int).Add(new(big.Int).Quo(deficit.Num(), deficit.Denom()), big.NewInt(1)))
	}
	d2 := new(big.Rat).Mul(deficit, m.t)
	q := m.t.Denom()
	units, r := new(big.Int).DivMod(new(big.Int).Mul(d2.Num(), q), d2.Denom(), new(big.Int))
	if r.Sign() != 0 {
		units.Add(units, big.NewInt(1))
	}
	if limit := big.NewInt(1<<62 - 1<<60); units.Cmp(limit) > 0 {
		// The real one keeps at most 3*2^60 units (its maxCarry), or, if
		// more, the time from now to the instant the old bucket is full,
		// rounded up, plus a new Burst's refill: more than its own debt
		// when the rate stays (tokenbucket's carry).
		own := new(big.Rat).Mul(m.empty(at), new(big.Rat).SetInt(q))
		ownUnits, r := new(big.Int).DivMod(own.Num(), own.Denom(), new(big.Int))
		if r.Sign() != 0 {
			ownUnits.Add(ownUnits, big.NewInt(1))
		}
		ownUnits.Add(ownUnits, new(big.Int).Mul(m.tau.Num(), new(big.Int).Quo(q, m.tau.Denom())))
		if ownUnits.Cmp(limit) > 0 {
			limit = ownUnits
		}
		if units.Cmp(limit) > 0 {
			units = limit
		}
	}
	d2.SetFrac(units, q)
	m.tat = new(big.Rat).Add(at, d2)
	m.carryBounds(at, oldT)
}

// carryBounds is Reconfigure's change at at, from the emission interval
// oldT, of the bound on stamps and the restore mark.
func (m *TokenBucket) carryBounds(at, oldT *big.Rat) {
	q := m.t.Denom()
	// The bound on stamps and the restore mark are kept at the new
	// resolution, rounded up.
	m.seen, m.mark = roundUp(m.seen, q), roundUp(m.mark, q)
	// The bound on stamps counts now as a stamp and, when the rate changes,
	// moves one new Burst's refill past that: a refund gives back nothing of
	// what the carry forgot or rescaled (tokenbucket's carryZ).
	if m.seen != nil {
		if at.Cmp(m.seen) > 0 {
			m.seen = at
		}
		if m.t.Cmp(oldT) != 0 {
			m.seen = new(big.Rat).Add(m.seen, m.tau)
		}
	}
}

// roundUp returns x rounded up to a multiple of 1/q, or nil for nil.
func roundUp(x *big.Rat, q *big.Int) *big.Rat {
	if x == nil {
		return nil
	}
	s := new(big.Rat).Mul(x, new(big.Rat).SetInt(q))
	v, r := new(big.Int).DivMod(s.Num(), s.Denom(), new(big.Int))
	if r.Sign() != 0 {
		v.Add(v, big.NewInt(1))
	}
	return new(big.Rat).SetFrac(v, q)
}
