package model

import (
	"math/big"
	"time"

	"github.com/ratekit/ratekit"
)

// SlidingLog is the definition of slidingwindow.Log. Times are durations
// from any fixed instant; the model never clamps them, so drive it and the
// real Log with times within a few centuries of each other.
//
// The log remembers the instants of the newest units up to its ring size,
// oldest first, and its clock: the newest instant it ever recorded. The
// ring size is Limit, or more when Reconfigure lowered the Limit: the ring
// never shrinks, and every unit it remembered is kept. A unit at e counts at now while
// now-e < Window, units after now included: every time, stale or not, is
// judged by itself. A Take records its units at the clock (at now, unless
// now is stale). A unit is dropped when ring-size newer ones are recorded;
// the admission that drops it saw it expired at its now, so it could still
// count at a staler time. A Refund on a full ring (as many units as its
// size, which may be above the Limit) leaves, for each unit it removes, a
// placeholder for a dropped unit: an instant no later than the oldest unit
// left and than clock-Window (see slidingwindow's remove). The newest
// unit a Take dropped is the lost mark: at a time it counts at, the log
// admits nothing until it expires (see slidingwindow's lost).
type SlidingLog struct {
	Limit  int
	Window time.Duration
	Name   string

	ring     int             // 0: Limit
	units    []time.Duration // oldest first, at most size()
	clock    time.Duration
	hasClock bool
	// restored, if marked, is the latest instant a refund gives nothing
	// back at or before: the clock of the state a restore replaced, or of
	// the restored one (see slidingwindow.Log.UnmarshalBinary).
	restored time.Duration
	marked   bool
	// lost, if hasLost, is the newest unit a Take dropped.
	lost    time.Duration
	hasLost bool
}

// size is how many units the log remembers.
func (m *SlidingLog) size() int { return max(m.Limit, m.ring) }

// Take is slidingwindow.Log.Take.
func (m *SlidingLog) Take(now time.Duration, n int) ratekit.Decision {
	d, t := m.decide(now, n)
	if d.Allowed && n > 0 {
		for range n {
			m.units = append(m.units, t)
		}
		if k := len(m.units) - m.size(); k > 0 {
			if e := m.units[k-1]; !m.hasLost || e > m.lost {
				m.lost, m.hasLost = e, true
			}
			m.units = m.units[k:]
		}
		m.clock, m.hasClock = t, true
	}
	return d
}

// Peek is slidingwindow.Log.Peek.
func (m *SlidingLog) Peek(now time.Duration, n int) ratekit.Decision {
	d, _ := m.decide(now, n)
	return d
}

// Refund removes the n oldest units recorded at or after `at`, or, if no
// unit recorded before `at` is remembered, the n oldest recorded exactly at
// `at`. If the ring was full (at its size, which may be above the Limit),
// each unit removed leaves a placeholder (see SlidingLog).
func (m *SlidingLog) Refund(at time.Duration, n int) {
	if m.marked && at <= m.restored {
		return
	}
	full := len(m.units) == m.size() // the ring's size, above the Limit after Reconfigure lowered it
	older := len(m.units) > 0 && m.units[0] < at
	k := 0
	for i := 0; i < len(m.units) && n > 0; {
		if e := m.units[i]; e == at || e > at && older {
			m.units = append(m.units[:i], m.units[i+1:]...)
			n--
			k++
		} else {
			i++
		}
	}
	if !full || k == 0 {
		return
	}
	bound := m.clock - m.Window
	if len(m.units) > 0 {
		bound = min(bound, m.units[0])
	}
	placeholders := make([]time.Duration, k, k+len(m.units))
	for i := range placeholders {
		placeholders[i] = bound
	}
	m.units = append(placeholders, m.units...)
}

// Idle is slidingwindow.Log.Idle.
func (m *SlidingLog) Idle(now time.Duration) bool {
	if m.hasClock && now < m.clock || m.marked && now <= m.restored {
		return false
	}
	return len(m.live(now)) == 0
}

// Persist keeps what slidingwindow.Log.MarshalBinary saves, every unit the
// log remembers (placeholders included), the clock and the lost mark,
// restored into a new Log of the same Config, whose ring grows to hold them
// all.
func (m *SlidingLog) Persist() {
	m.ring = len(m.units)
}

// PersistV1 is Persist through slidingwindow.Log's format version 1, as
// builds before version 2 wrote it: only the units that count at the clock,
// and no lost mark.
func (m *SlidingLog) PersistV1() {
	if m.hasClock {
		m.units = m.live(m.clock)
	}
	m.ring = len(m.units)
	m.hasLost = false
}

// Reconfigure keeps every unit the log remembers (placeholders included),
// and the ring never shrinks: it becomes max(limit, its size before).
func (m *SlidingLog) Reconfigure(limit int, window time.Duration) {
	m.ring = max(m.size(), len(m.units))
	m.Limit, m.Window = limit, window
}

// live returns the units that count at t, oldest first.
func (m *SlidingLog) live(t time.Duration) []time.Duration {
	var live []time.Duration
	for _, e := range m.units {
		if t-e < m.Window {
			live = append(live, e)
		}
	}
	return live
}

func (m *SlidingLog) decide(now time.Duration, n int) (ratekit.Decision, time.Duration) {
	t := now
	if m.hasClock && m.clock > t {
		t = m.clock
	}
	live := m.live(now)
	count := len(live)
	d := ratekit.Decision{Limit: m.Limit, Window: m.Window, Policy: m.Name, Remaining: max(m.Limit-count, 0)}
	// Until every unit that counts has expired.
	if count > 0 {
		d.ResetAfter = live[count-1] + m.Window - now
	}
	lost := m.hasLost && now-m.lost < m.Window
	if lost {
		count = max(count, m.Limit)
		d.Remaining = 0
		d.ResetAfter = max(d.ResetAfter, m.lost+m.Window-now)
	}
	switch {
	case n < 0 || n > m.Limit:
		d.RetryAfter = ratekit.Never
	case n == 0:
		// Allowed always, an over-full log included (Remaining 0).
		d.Allowed = true
	case count+n <= m.Limit:
		d.Allowed = true
		d.Remaining -= n
		d.ResetAfter = t + m.Window - now
	default:
		// The first count+n-Limit units, oldest first, must expire: unit
		// Limit-n counting from the newest (and the lost mark).
		if j := len(m.units) - 1 - (m.Limit - n); j >= 0 {
			d.RetryAfter = m.units[j] + m.Window - now
		}
		if lost {
			d.RetryAfter = max(d.RetryAfter, m.lost+m.Window-now)
		}
	}
	return d, t
}

// SlidingCounter is the definition of slidingwindow.Counter, in exact
// rational arithmetic (math/big), with fixed windows aligned to Unix time.
type SlidingCounter struct {
	Limit  int
	Window time.Duration
	Name   string

	started   bool
	k         int64 // Unix index of the current fixed window
	cur, prev int   // units in window k and in window k-1

	// marked says a refund stamped in window mark or earlier gives nothing
	// back: UnmarshalBinary sets it to the later of the replaced and the
	// restored window (see slidingwindow.Counter.UnmarshalBinary).
	marked bool
	mark   int64

	// forgot is the largest Limit set before the current one (0: none):
	// with the current Limit, the most a window the counter no longer
	// knows can hold (see staleDecision).
	forgot int
}

// view is the counter as seen from now: the fixed window of evaluation, the
// offset into it, and the counts of it and the one before.
func (m *SlidingCounter) view(now time.Time) (k int64, e time.Duration, cur, prev int) {
	k = m.window(now)
	e = time.Duration(now.UnixNano() - k*int64(m.Window))
	switch {
	case !m.started || k >= m.k+2:
		return k, e, 0, 0
	case k == m.k+1:
		return k, e, 0, m.cur
	case k == m.k:
		return k, e, m.cur, m.prev
	}
	// A stale time: the counter's window as it is, judged by staleDecision.
	return m.k, 0, m.cur, m.prev
}

// stale reports whether now is before the counter's window.
func (m *SlidingCounter) stale(now time.Time) bool {
	return m.started && m.window(now) < m.k
}

// window returns the Unix index of the fixed window holding t.
func (m *SlidingCounter) window(t time.Time) int64 {
	w, u := int64(m.Window), t.UnixNano()
	k := u / w
	if u%w < 0 {
		k--
	}
	return k
}

// estimate is cur + prev·(Window-e)/Window.
func (m *SlidingCounter) estimate(e time.Duration, cur, prev int) *big.Rat {
	r := new(big.Rat).SetFrac(big.NewInt(int64(m.Window-e)), big.NewInt(int64(m.Window)))
	r.Mul(r, big.NewRat(int64(prev), 1))
	return r.Add(r, big.NewRat(int64(cur), 1))
}

// admits reports whether n more units pass at offset e with these counts.
func (m *SlidingCounter) admits(e time.Duration, cur, prev, n int) bool {
	est := m.estimate(e, cur, prev)
	return est.Add(est, big.NewRat(int64(n), 1)).Cmp(big.NewRat(int64(m.Limit), 1)) <= 0
}

// Take is slidingwindow.Counter.Take.
func (m *SlidingCounter) Take(now time.Time, n int) ratekit.Decision {
	d := m.Peek(now, n)
	if d.Allowed && n > 0 {
		k, _, cur, prev := m.view(now)
		m.started, m.k, m.cur, m.prev = true, k, cur+n, prev
	}
	return d
}

// Peek is slidingwindow.Counter.Peek.
func (m *SlidingCounter) Peek(now time.Time, n int) ratekit.Decision {
	if m.stale(now) {
		return m.staleDecision(now, n)
	}
	k, e, cur, prev := m.view(now)
	d := ratekit.Decision{Limit: m.Limit, Window: m.Window, Policy: m.Name}
	switch {
	case n < 0 || n > m.Limit:
		d.RetryAfter = ratekit.Never
	case n == 0 || m.admits(e, cur, prev, n):
		// n == 0 is allowed always, an over-full window included.
		d.Allowed = true
		cur += n
	default:
		d.RetryAfter = m.admitAt(k, e, cur, prev, n).Sub(now)
	}
	// Remaining: the most units admitted next, found by counting down.
	for r := m.Limit; r >= 0; r-- {
		if m.admits(e, cur, prev, r) {
			d.Remaining = r
			break
		}
	}
	start := time.Unix(0, k*int64(m.Window))
	switch {
	case cur > 0:
		d.ResetAfter = start.Add(2 * m.Window).Sub(now)
	case prev > 0:
		d.ResetAfter = start.Add(m.Window).Sub(now)
	}
	return d
}

// staleDecision is Peek at a time before the counter's window k: judged
// by its own window. In window k-1 the units of windows k and k-1 count in
// full and window k-2, which the counter no longer knows, counts as Limit
// units (or a larger Limit set before, see Reconfigure), weighted as a
// previous window is; a time before window k-1 is
// judged as the start of k-1. n == 0 is allowed. An admitted stale Take
// counts in window k.
func (m *SlidingCounter) staleDecision(now time.Time, n int) ratekit.Decision {
	start := time.Unix(0, m.k*int64(m.Window))
	sStart := start.Add(-m.Window)
	e := max(now.Sub(sStart), 0)
	cur, prev := m.cur+m.prev, max(m.Limit, m.forgot)
	d := ratekit.Decision{Limit: m.Limit, Window: m.Window, Policy: m.Name}
	added := 0
	switch {
	case n < 0 || n > m.Limit:
		d.RetryAfter = ratekit.Never
	case n == 0 || m.admits(e, cur, prev, n):
		d.Allowed = true
		added = max(n, 0)
	default:
		d.RetryAfter = m.firstAdmitted([]span{
			{e, cur, prev, sStart},
			{0, m.cur, m.prev, start},
			{0, 0, m.cur, start.Add(m.Window)},
			{0, 0, 0, start.Add(2 * m.Window)},
		}, n).Sub(now)
	}
	for r := m.Limit; r >= 0; r-- {
		if m.admits(e, cur+added, prev, r) {
			d.Remaining = r
			break
		}
	}
	switch {
	case m.cur+added > 0:
		d.ResetAfter = start.Add(2 * m.Window).Sub(now)
	case m.prev > 0:
		d.ResetAfter = start.Add(m.Window).Sub(now)
	default:
		d.ResetAfter = start.Sub(now)
	}
	return d
}

// span is a stretch of one fixed window, from an offset on, with its counts.
type span struct {
	from      time.Duration
	cur, prev int
	start     time.Time
}

// firstAdmitted is the first instant in spans, in order, at which n units
// pass, found by bisection on the (monotone) admission test.
func (m *SlidingCounter) firstAdmitted(spans []span, n int) time.Time {
	for _, w := range spans {
		if !m.admits(m.Window-1, w.cur, w.prev, n) {
			continue
		}
		lo, hi := w.from, m.Window-1 // admitted at hi
		for lo < hi {
			mid := lo + (hi-lo)/2
			if m.admits(mid, w.cur, w.prev, n) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return w.start.Add(lo)
	}
	panic("unreachable: nothing counts two windows on")
}

// admitAt is the first instant at which n units pass if nothing more is
// taken: the smallest offset in window k, k+1 or k+2 where they do, found
// by bisection on the (monotone) admission test.
func (m *SlidingCounter) admitAt(k int64, e time.Duration, cur, prev, n int) time.Time {
	start := time.Unix(0, k*int64(m.Window))
	return m.firstAdmitted([]span{
		{e, cur, prev, start},
		{0, 0, cur, start.Add(m.Window)},
		{0, 0, 0, start.Add(2 * m.Window)},
	}, n)
}

// Refund takes n units off the count of the window `at` falls in, if it is
// the counter's current or previous window. n <= 0 does nothing.
func (m *SlidingCounter) Refund(at time.Time, n int) {
	if n <= 0 {
		return
	}
	switch k := m.window(at); {
	case !m.started, m.marked && k <= m.mark:
	case k == m.k:
		m.cur = max(0, m.cur-n)
	case k == m.k-1:
		m.prev = max(0, m.prev-n)
	}
}

// Idle is slidingwindow.Counter.Idle.
func (m *SlidingCounter) Idle(now time.Time) bool {
	if m.marked && m.window(now) <= m.mark {
		return false // a refund stamped at now would find the mark
	}
	if !m.started {
		return true
	}
	_, _, cur, prev := m.view(now)
	return m.window(now) >= m.k && cur == 0 && prev == 0
}
