package redisstore_test

import (
	"math/big"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
)

// Reference models of the script's algorithms: plain Go, times in int64
// microseconds, exact rationals (math/big) where the script divides, no
// cleverness. They decide what DESIGN.md and the package doc say, and the
// tests hold the script to the same Decisions. (They live here rather than
// in internal/model because this module owns only redisstore/.)

type model interface {
	decide(now int64, n int, take bool) ratekit.Decision
	refund(at int64, n int)
	// setLimit changes the Limit from the next call on, as a Limiter of
	// the same Algorithm and Name with another Limit does.
	setLimit(limit int64)
}

func newModel(cfg redisstore.Config) model {
	b := base{limit: int64(cfg.Limit), w: cfg.Window.Microseconds(), name: cfg.Name}
	switch cfg.Algorithm {
	case redisstore.TokenBucket:
		b.limit = int64(cfg.Burst)
		b.dwindow = time.Duration(ceil(quo(mul(rat(int64(cfg.Burst)), rat(int64(cfg.Window))), rat(int64(cfg.Limit)))))
		return &tbModel{base: b, rate: int64(cfg.Limit), burst: int64(cfg.Burst)}
	case redisstore.FixedWindow:
		w := cfg.Window.Microseconds()
		return &winModel{base: b.withWindow(cfg.Window), aligned: true, offset: ((-cfg.Offset.Microseconds() % w) + w) % w}
	case redisstore.Rolling:
		return &winModel{base: b.withWindow(cfg.Window)}
	case redisstore.SlidingLog:
		return &logModel{base: b.withWindow(cfg.Window)}
	case redisstore.SlidingCounter:
		return &counterModel{base: b.withWindow(cfg.Window)}
	}
	panic("unknown algorithm")
}

type base struct {
	limit   int64 // capacity: Decision.Limit
	w       int64 // µs
	name    string
	dwindow time.Duration
}

func (b base) withWindow(w time.Duration) base { b.dwindow = w; return b }

func (b *base) setLimit(limit int64) { b.limit = limit }

func (b base) d(allowed bool, remaining, reset, retry int64) ratekit.Decision {
	d := ratekit.Decision{Allowed: allowed, Limit: int(b.limit), Remaining: int(max(remaining, 0)),
		Window: b.dwindow, ResetAfter: time.Duration(reset) * time.Microsecond,
		RetryAfter: time.Duration(retry) * time.Microsecond, Policy: b.name}
	if retry < 0 {
		d.RetryAfter = ratekit.Never
	}
	return d
}

// scriptMicros is the instant, in Unix µs, that the script decides at for
// the injected time t: TakeAt, PeekAt and RefundAt truncate t to the µs
// and clamp it to [0, 2^52] (1970 to 2112; see micros in store.go), so the
// models decide at the same instant. The randomized tests reach both ends
// with the largest Windows: tb-max and sc-max step 400 days at a time.
func scriptMicros(t time.Time) int64 { return min(max(t.UnixMicro(), 0), 1<<52) }

func rat(a int64) *big.Rat        { return new(big.Rat).SetInt64(a) }
func frac(a, b int64) *big.Rat    { return big.NewRat(a, b) }
func add(a, b *big.Rat) *big.Rat  { return new(big.Rat).Add(a, b) }
func sub(a, b *big.Rat) *big.Rat  { return new(big.Rat).Sub(a, b) }
func mul(a, b *big.Rat) *big.Rat  { return new(big.Rat).Mul(a, b) }
func quo(a, b *big.Rat) *big.Rat  { return new(big.Rat).Quo(a, b) }
func maxr(a, b *big.Rat) *big.Rat { return map[bool]*big.Rat{true: a, false: b}[a.Cmp(b) >= 0] }

func floor(r *big.Rat) int64 {
	q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: floor for a positive denominator
	return q.Int64()
}

func ceil(r *big.Rat) int64 { return -floor(new(big.Rat).Neg(r)) }

// tbModel is GCRA with the theoretical arrival time tat as an exact
// rational number of µs (nil: the bucket is full).
type tbModel struct {
	base
	rate, burst int64
	tat         *big.Rat
	z           int64 // the latest stamp of an admitted Take (valid once tat != nil)
	// wrate, ww: the rate (Limit per Window µs) the tat was last written
	// under (valid once tat != nil).
	wrate, ww int64
	y         int64 // the latest stamp of an admitted Take, which z may pass
}

// carried is the tat read under the current rate (the script's tbcarry):
// if it was written under another, the units not refilled at y, rounded up
// to whole ones at the old rate, refill from y at the new one.
func (m *tbModel) carried() *big.Rat {
	if !m.rerated() || m.tat.Cmp(rat(m.y)) <= 0 {
		return m.tat
	}
	units := ceil(quo(sub(m.tat, rat(m.y)), frac(m.ww, m.wrate)))
	return add(rat(m.y), mul(rat(units), frac(m.w, m.rate)))
}

// setRate changes the rate and Burst from the next call on, as a Limiter of
// the same Algorithm and Name with another Limit, Window or Burst does.
func (m *tbModel) setRate(rate int64, w time.Duration, burst int64) {
	m.rate, m.w, m.burst, m.limit = rate, w.Microseconds(), burst, burst
	m.dwindow = time.Duration(ceil(quo(mul(rat(burst), rat(int64(w))), rat(rate))))
}

// rerated reports whether the tat was last written under another rate: a
// refund then gives nothing back, and the next write moves z to max(z, now)
// plus the new Burst's refill, so that no Take from before it gets anything
// back later either (the script's tb.refund and tb.save).
func (m *tbModel) rerated() bool {
	return m.tat != nil && (m.wrate != m.rate || m.ww != m.w)
}

// read returns the tat as a decision under the Limit in force reads it:
// the script keeps the tat's fraction of a µs in units of 1/Limit of the
// Limit it was written under, so under another Limit it reads the tat
// rounded up to a multiple of 1/Limit µs (a bucket that much emptier: never
// more admitted than the exact tat would admit). Under the Limit it was
// written under, a tat is a multiple of 1/Limit µs already (every n·T is),
// and so is one carried to the new rate (see carried).
func (m *tbModel) read() *big.Rat {
	tat := m.carried()
	if tat == nil || m.wrate == m.rate {
		return tat
	}
	x := mul(tat, rat(m.rate)) // beyond int64: Unix µs times a Limit
	c := new(big.Int).Neg(new(big.Int).Div(new(big.Int).Neg(x.Num()), x.Denom()))
	return new(big.Rat).SetFrac(c, big.NewInt(m.rate))
}

func (m *tbModel) decide(now int64, n int, take bool) ratekit.Decision {
	T := frac(m.w, m.rate)
	capacity := mul(rat(m.burst), T)
	debt := rat(0)
	if tat := m.read(); tat != nil {
		debt = maxr(sub(tat, rat(now)), rat(0))
	}
	remaining := int64(0)
	if debt.Cmp(capacity) <= 0 {
		remaining = floor(quo(sub(capacity, debt), T))
	}
	reset := ceil(debt)
	switch {
	case n < 0 || int64(n) > m.burst:
		return m.d(false, remaining, reset, -1)
	case n == 0:
		return m.d(true, remaining, reset, 0)
	}
	after := add(debt, mul(rat(int64(n)), T))
	if after.Cmp(capacity) <= 0 {
		if take {
			if m.tat == nil || now > m.z {
				m.z = now
			}
			if m.tat == nil || now > m.y {
				m.y = now
			}
			if m.rerated() {
				m.z += ceil(capacity)
			}
			m.tat = add(rat(now), after)
			m.wrate, m.ww = m.rate, m.w
		}
		return m.d(true, floor(quo(sub(capacity, after), T)), ceil(after), 0)
	}
	return m.d(false, remaining, reset, ceil(sub(after, capacity)))
}

func (m *tbModel) refund(at int64, n int) {
	if n <= 0 || m.tat == nil || m.tat.Cmp(rat(at)) <= 0 || m.rerated() {
		return
	}
	// Give back n·T less the refill since at that Takes stamped up to z may
	// have used; never to before at (tokenbucket.Limiter.Refund's rule).
	give := sub(mul(rat(min(int64(n), m.burst)), frac(m.w, m.rate)), rat(max(m.z-at, 0)))
	if give.Sign() <= 0 {
		return
	}
	m.tat = maxr(sub(m.tat, give), rat(at))
}

// winModel is a fixed (aligned) or rolling window: start s, count c; open
// at t while c > 0 and t < s + w. A stale t (before s) counts into the
// open rolling window; a fixed window denies it. A window refunded to zero
// keeps its start (set stays true): a rolling one is spent, and a stale t
// before its start is denied, as before a fixed window's start.
type winModel struct {
	base
	aligned bool
	offset  int64 // the phase of window starts, for aligned windows
	s, c    int64
	set     bool // a window has been counted in (s is its start)
	// later: a unit of the rolling window was taken after its start;
	// moved: a refund at the start moved it (then refunds are plain).
	later, moved bool
}

func (m *winModel) open(t int64) bool { return m.c > 0 && t < m.s+m.w }

func (m *winModel) decide(now int64, n int, take bool) ratekit.Decision {
	if m.set && now < m.s && (m.aligned || m.c == 0) {
		until := m.s - now
		reset := until
		if m.c > 0 {
			reset += m.w
		}
		switch {
		case n < 0 || int64(n) > m.limit:
			return m.d(false, 0, reset, -1)
		case n == 0:
			return m.d(true, 0, reset, 0)
		case m.c+int64(n) > m.limit:
			return m.d(false, 0, reset, until+m.w)
		}
		return m.d(false, 0, reset, until)
	}
	s, c, later, moved := m.s, m.c, m.later, m.moved
	if !m.open(now) {
		s, c, later, moved = now, 0, false, false
		if m.aligned {
			k := new(big.Int).Div(big.NewInt(now-m.offset), big.NewInt(m.w)).Int64()
			s = k*m.w + m.offset
		}
	}
	span := s + m.w - now
	reset := int64(0)
	if c > 0 {
		reset = span
	}
	switch {
	case n < 0 || int64(n) > m.limit:
		return m.d(false, m.limit-c, reset, -1)
	case n == 0:
		return m.d(true, m.limit-c, reset, 0)
	case c+int64(n) <= m.limit:
		if take {
			m.s, m.c, m.set = s, c+int64(n), true
			m.later, m.moved = later || now > s, moved
		}
		return m.d(true, m.limit-c-int64(n), span, 0)
	}
	return m.d(false, m.limit-c, span, span)
}

func (m *winModel) refund(at int64, n int) {
	if n <= 0 || m.c == 0 || at < m.s || !m.open(at) {
		return
	}
	k := min(int64(n), m.c)
	if !m.aligned && at == m.s && m.later && !m.moved && k < m.c {
		// The refunded Take may have opened the window the later units
		// joined: without it, the window would open by s+w-1µs at the
		// latest; s+w closes it no sooner (and as the embedded limiter's
		// s+w-1ns does on the µs grid).
		m.s, m.moved = m.s+m.w, true
	}
	m.c -= k
}

// logModel is the exact sliding log: entries of (time, units); an entry at
// e counts at x while x - e < w, whatever x (a stale x counts entries
// recorded after it too). Its clock t is the newest instant it has
// recorded or refunded at (floor); units are recorded at max(now, clock).
// It keeps expired entries, dropping the oldest on each write only while
// Limit newer units are kept and the entry has expired at the clock; once
// it has dropped one (forgot), a refund re-files the units it removes at
// min(clock - w, the oldest entry), standing for the forgotten ones. The
// newest entry it dropped is its lost mark: a time that entry counts at
// admits nothing (as slidingwindow.Log's lost mark), so a Limit lowered
// and raised again never admits more there than the units it forgot allow.
type logModel struct {
	base
	es      []logEntry // oldest first
	floor   int64
	forgot  bool
	lost    int64
	hasLost bool
}

type logEntry struct{ t, u int64 }

// setWindow changes the Window from the next call on, as a Limiter of the
// same Algorithm and Name with another Window does: every entry kept counts
// by the new Window (an entry expired under the old one counts again while
// the log still holds it).
func (m *logModel) setWindow(w time.Duration) { m.w, m.dwindow = w.Microseconds(), w }

func (m *logModel) clamp(now int64) int64 {
	t := max(now, m.floor)
	if len(m.es) > 0 {
		t = max(t, m.es[len(m.es)-1].t)
	}
	return t
}

// live is the entries that count at x.
func (m *logModel) live(x int64) []logEntry {
	var out []logEntry
	for _, e := range m.es {
		if x-e.t < m.w {
			out = append(out, e)
		}
	}
	return out
}

// trim drops the oldest entries expired at the clock t while Limit newer
// units remain.
func (m *logModel) trim(t int64) {
	total := int64(0)
	for _, e := range m.es {
		total += e.u
	}
	for len(m.es) > 0 && m.es[0].t <= t-m.w && total-m.es[0].u >= m.limit {
		total -= m.es[0].u
		m.lost, m.hasLost = max(m.lost, m.es[0].t), true
		m.es = m.es[1:]
		m.forgot = true
	}
}

func (m *logModel) decide(now int64, n int, take bool) ratekit.Decision {
	t := m.clamp(now)
	live := m.live(now)
	c := int64(0)
	for _, e := range live {
		c += e.u
	}
	reset := int64(0)
	if c > 0 {
		reset = live[len(live)-1].t + m.w - now
	}
	real := c
	lost := m.hasLost && now-m.lost < m.w
	if lost {
		c = max(c, m.limit)
		reset = max(reset, m.lost+m.w-now)
	}
	switch {
	case n < 0 || int64(n) > m.limit:
		return m.d(false, m.limit-c, reset, -1)
	case n == 0:
		return m.d(true, m.limit-c, reset, 0)
	case c+int64(n) <= m.limit:
		if take {
			if k := len(m.es) - 1; k >= 0 && m.es[k].t == t {
				m.es[k].u += int64(n)
			} else {
				m.es = append(m.es, logEntry{t, int64(n)})
			}
			m.trim(t)
		}
		return m.d(true, m.limit-c-int64(n), t+m.w-now, 0)
	}
	retry := int64(0)
	if real+int64(n) > m.limit {
		acc := int64(0)
		for _, e := range live {
			acc += e.u
			if real-acc+int64(n) <= m.limit {
				retry = e.t + m.w - now
				break
			}
		}
	}
	if lost {
		retry = max(retry, m.lost+m.w-now)
	}
	return m.d(false, m.limit-c, reset, retry)
}

// refund removes the n oldest live units recorded at or after at.
func (m *logModel) refund(at int64, n int) {
	t := m.clamp(at)
	if n <= 0 || at <= t-m.w {
		return
	}
	left := int64(n)
	var kept []logEntry
	for _, e := range m.es {
		if e.t >= at && t-e.t < m.w {
			k := min(left, e.u)
			e.u -= k
			left -= k
		}
		if e.u > 0 {
			kept = append(kept, e)
		}
	}
	if left == int64(n) {
		return
	}
	if m.forgot {
		bound := t - m.w
		if len(m.es) > 0 {
			bound = min(bound, m.es[0].t)
		}
		if m.hasLost {
			// Every entry is at or after the lost mark: under a longer
			// Window than it was trimmed under, t - w may be before it.
			bound = max(bound, m.lost)
		}
		if len(kept) > 0 && kept[0].t == bound {
			kept[0].u += int64(n) - left
		} else {
			kept = append([]logEntry{{bound, int64(n) - left}}, kept...)
		}
	}
	m.es, m.floor = kept, t
	m.trim(t)
}

// counterModel is the sliding counter: windows aligned to Unix time, the
// current count c of the window starting at s and the previous count pr;
// the estimate at t is pr·(w - (t-s))/w + c. Its RetryAfter is found by
// bisection over time, independently of the script's closed form.
type counterModel struct {
	base
	s, c, pr int64
	set      bool
	most     int64 // the most the window before the stored ones may hold (see carried)
	ww       int64 // the Window (µs) the state was written under (valid once set)
}

// setWindow changes the Window from the next call on, as a Limiter of the
// same Algorithm and Name with another Window does: the state is read
// under it (carried) at every call until a write keeps it.
func (m *counterModel) setWindow(w time.Duration) { m.w, m.dwindow = w.Microseconds(), w }

// scMost is the most the script counts a forgotten window as holding.
const scMost = 1<<47 - 1

// carried is the state as read under the current Window (the script's
// sccarry, slidingwindow.Counter.Reconfigure's rule): both windows written
// under another Window count in the new window holding the last µs of the
// written current one, and a window the key forgets may hold what each of
// the ceil(new/old) old windows it meets held (the Counter's forgotFrom)
// or that carried count, if more; at most scMost.
func (m *counterModel) carried() counterModel {
	k := *m
	if !k.set || k.ww == k.w {
		return k
	}
	r := (k.w + k.ww - 1) / k.ww
	k.most = scMost
	if m.most <= scMost/r {
		k.most = min(max(m.most*r, m.c+m.pr), scMost)
	}
	k.s = new(big.Int).Div(big.NewInt(k.s+k.ww-1), big.NewInt(k.w)).Int64() * k.w
	k.c, k.pr, k.ww = k.c+k.pr, 0, k.w
	return k
}

// forgot is the most units the window before the stored ones may hold: the
// Limit, or the largest one a Take was admitted under if that is more.
func (m *counterModel) forgot() int64 { return max(m.limit, m.most) }

// view is the state seen at now: window start, elapsed, cur, prev.
func (m *counterModel) view(now int64) (s, el, c, pr int64) {
	t := now
	if m.set && m.s > t {
		t = m.s
	}
	s = new(big.Int).Div(big.NewInt(t), big.NewInt(m.w)).Int64() * m.w
	if m.set {
		switch {
		case m.s > s-m.w:
			c, pr = m.c, m.pr
		case m.s > s-2*m.w:
			pr = m.c
		}
	}
	return s, t - s, c, pr
}

// stale reports whether now is before the stored window.
func (m *counterModel) stale(now int64) bool { return m.set && now < m.s }

// estimate is pr·(w-el)/w + c + extra. A stale now (before the stored
// window s) is judged by its own window: both stored windows count in
// full and the window before them as full, forgot()·(w-e)/w with e now's
// offset into the window before s (0 if earlier still).
func (m *counterModel) estimate(now, extra int64) *big.Rat {
	if m.stale(now) {
		e := max(now-(m.s-m.w), 0)
		return add(quo(mul(rat(m.forgot()), rat(m.w-e)), rat(m.w)), rat(m.c+m.pr+extra))
	}
	_, el, c, pr := m.view(now)
	return add(quo(mul(rat(pr), rat(m.w-el)), rat(m.w)), rat(c+extra))
}

func (m *counterModel) fits(now int64, n int64) bool {
	return m.estimate(now, n).Cmp(rat(m.limit)) <= 0
}

func (m *counterModel) remaining(now, extra int64) int64 {
	return max(floor(sub(rat(m.limit), m.estimate(now, extra))), 0)
}

// reset is until the estimate is zero: for a stale now no sooner than the
// stored window's start, until which the forgotten window counts.
func (m *counterModel) reset(now, extra int64) int64 {
	s, _, c, pr := m.view(now)
	r := int64(0)
	switch {
	case c+extra > 0:
		r = s + 2*m.w - now
	case pr > 0:
		r = s + m.w - now
	}
	if m.stale(now) {
		r = max(r, m.s-now)
	}
	return r
}

func (m *counterModel) decide(now int64, n int, take bool) ratekit.Decision {
	k := m.carried()
	return k.decideCarried(now, n, take, m)
}

// decideCarried decides on the carried state m; an admitted Take writes it,
// as taken, to into.
func (m *counterModel) decideCarried(now int64, n int, take bool, into *counterModel) ratekit.Decision {
	switch {
	case n < 0 || int64(n) > m.limit:
		return m.d(false, m.remaining(now, 0), m.reset(now, 0), -1)
	case n == 0:
		return m.d(true, m.remaining(now, 0), m.reset(now, 0), 0)
	case m.fits(now, int64(n)):
		d := m.d(true, m.remaining(now, int64(n)), m.reset(now, int64(n)), 0)
		if take {
			s, _, c, pr := m.view(now) // a stale now: the stored window
			m.s, m.c, m.pr, m.set, m.most, m.ww = s, c+int64(n), pr, true, m.forgot(), m.w
			*into = *m
		}
		return d
	}
	// Bisection: the first instant at which n fits. Admission only gets
	// easier as time passes, and by two windows on everything has expired.
	s, _, _, _ := m.view(now)
	lo, hi := now, s+2*m.w
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if m.fits(mid, int64(n)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return m.d(false, m.remaining(now, 0), m.reset(now, 0), hi-now)
}

func (m *counterModel) refund(at int64, n int) {
	if n <= 0 || !m.set {
		return
	}
	k := m.carried() // written only if the refund gives something back
	switch {
	case at >= k.s && at < k.s+k.w:
		k.c -= min(int64(n), k.c)
	case at >= k.s-k.w && at < k.s:
		k.pr -= min(int64(n), k.pr)
	default:
		return
	}
	*m = k
	// An emptied key keeps its window (stale times before it stay judged
	// against it).
}
