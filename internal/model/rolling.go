package model

import (
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// Rolling is the reference model of rolling.Limiter, written in time.Time
// with a mutex and plain fields.
//
// A window opens at the first admitted unit while none is open and stays
// open until start+Window. A window whose count is zero is not open; if
// refunds took it to zero (spent), a Take stamped before its start opens the
// next window at that start. A time before an open window's start is
// counted into it. Refunds are accepted
// for times within [start, start+Window); one at start itself, with units
// left that were taken at times after start, moves start to
// start+Window-1ns. OnLimitReached fires once per window, at its first
// denial (Notified counts the calls).
type Rolling struct {
	mu sync.Mutex

	limit  int
	window time.Duration
	name   string
	hooked bool // an OnLimitReached is configured

	start    time.Time
	count    int
	notified bool
	later    bool // a unit taken at a time after start is in the window
	// spent: the window at start was refunded to zero (no window is
	// open); a Take stamped before start opens its window at start, and a
	// restore marks it as it would an open one.
	spent bool

	// marked says a refund stamped at or before mark gives nothing back:
	// set by a restore into a limiter with a window open or a mark (see
	// rolling.Limiter.UnmarshalBinary).
	marked bool
	mark   time.Time

	// Notified counts the denials that would call OnLimitReached.
	Notified int
}

// NewRolling returns a model with no window open. hooked says whether an
// OnLimitReached callback is configured (its calls are counted in Notified).
func NewRolling(limit int, window time.Duration, name string, hooked bool) *Rolling {
	return &Rolling{limit: limit, window: window, name: name, hooked: hooked}
}

// Reconfigure changes the limit, window, name and hook at once, at the
// instant at (read on the new Config's Clock); the window keeps its count
// and notified mark, and its start unless the window is shorter and a
// window of the new length from there is closed at a, the latest of at and
// the old window's last instant: then it starts at a, with the later mark.
func (m *Rolling) Reconfigure(at time.Time, limit int, window time.Duration, name string, hooked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count > 0 && window < m.window {
		a := m.start.Add(m.window - 1)
		if !at.Before(m.start) && at.Before(a) {
			a = at
		}
		if !a.Before(m.start.Add(window)) {
			m.start, m.later = a, true
		}
	}
	m.limit, m.window, m.name, m.hooked = limit, window, name, hooked
}

// open reports whether a window is open at now.
func (m *Rolling) open(now time.Time) bool {
	return m.count > 0 && now.Before(m.start.Add(m.window))
}

// Take decides and applies Take(now, n).
func (m *Rolling) Take(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(now, n, true)
}

// Peek decides Take(now, n) without applying it.
func (m *Rolling) Peek(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(now, n, false)
}

func (m *Rolling) decide(now time.Time, n int, take bool) ratekit.Decision {
	d := ratekit.Decision{Limit: m.limit, Window: m.window, Policy: m.name, Remaining: m.limit}
	if m.spent && now.Before(m.start) {
		// Before a spent window's start nothing is admitted: the window the
		// refunded Take opened replaced one that may count there.
		d.Remaining, d.ResetAfter = 0, until(m.start, now)
		switch {
		case n < 0 || n > m.limit:
			d.RetryAfter = ratekit.Never
		case n == 0:
			d.Allowed = true
		default:
			d.RetryAfter = d.ResetAfter
		}
		return d
	}
	open := m.open(now)
	if open {
		d.Remaining = max(0, m.limit-m.count)
		d.ResetAfter = until(m.start.Add(m.window), now)
	}
	switch {
	case n < 0 || n > m.limit:
		d.RetryAfter = ratekit.Never
	case n == 0:
		d.Allowed = true
	case !open:
		start := now
		d.Allowed = true
		d.Remaining = m.limit - n
		d.ResetAfter = until(start.Add(m.window), now)
		if take {
			m.start, m.count, m.notified, m.later, m.spent = start, n, false, false, false
		}
	case n <= d.Remaining:
		d.Allowed = true
		d.Remaining -= n
		if take {
			m.count += n
			m.later = m.later || now.After(m.start)
		}
	default:
		d.RetryAfter = d.ResetAfter
		if take && m.hooked && !m.notified {
			m.notified = true
			m.Notified++
		}
	}
	return d
}

// until is end-now, capped one below ratekit.Never (which is for requests
// that can never be admitted) as the limiter caps what it reports, where
// time.Time.Sub saturates at Never: a stale time centuries before a window.
func until(end, now time.Time) time.Duration {
	return min(end.Sub(now), ratekit.Never-1)
}

// Refund gives back up to n units if at is within the open window.
func (m *Rolling) Refund(at time.Time, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n <= 0 || m.count == 0 || at.Before(m.start) || !at.Before(m.start.Add(m.window)) {
		return
	}
	if m.marked && !at.After(m.mark) {
		n = 0 // restored since: nothing back, but the start may move
	}
	if at.Equal(m.start) && m.later && n < m.count {
		m.start, m.later = m.start.Add(m.window-1), false
	}
	m.count -= min(n, m.count)
	m.spent = m.count == 0
}

// Restored is what rolling.Limiter's MarshalBinary and UnmarshalBinary do
// to the state: everything is kept (a spent window's start too) but
// whether units were taken after the start, which is assumed.
func (m *Rolling) Restored() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.later = m.count > 0
}

// Idle reports whether no window is open at now, now is not before a
// spent window's start, and now is after the refund mark.
func (m *Rolling) Idle(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marked && !now.After(m.mark) {
		return false // a refund stamped at now would find the mark
	}
	return !m.open(now) && !(m.spent && now.Before(m.start))
}
