package model

import (
	"math/big"
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// FixedWindow is the reference model of fixedwindow.Limiter.
//
// A window's number is floor((unix nanoseconds + Offset) / Window), worked
// out with big integers from the definition: windows of the local time of a
// zone Offset east of UTC. The state is the number of the last window
// anything was counted in, its count, and whether the limit was reported
// reached in it. It is exact for every time, but the real limiter
// merges windows far from its epoch (fixedwindow.MinSpan), so compare them
// within a few decades of it.
type FixedWindow struct {
	mu sync.Mutex

	limit          int
	window, offset time.Duration
	name           string
	hook           bool // OnLimitReached is set

	has      bool     // a window is counted in
	win      *big.Int // its number
	count    int
	notified bool
	// mark is the latest window a refund gives nothing back in (nil:
	// none): UnmarshalBinary sets it to cover the windows of the replaced
	// and the restored state (see fixedwindow.Limiter.Refund).
	mark *big.Int

	notices int
}

// NewFixedWindow returns a fresh model. hook says whether the limiter it
// models has an OnLimitReached callback (the model counts the calls).
func NewFixedWindow(limit int, window, offset time.Duration, name string, hook bool) *FixedWindow {
	return &FixedWindow{limit: limit, window: window, offset: offset, name: name, hook: hook}
}

// number returns the number of the window containing t.
func (m *FixedWindow) number(t time.Time) *big.Int {
	ns := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
	ns.Add(ns, big.NewInt(int64(t.Nanosecond())))
	ns.Add(ns, big.NewInt(int64(m.offset)))
	// big.Int.Div rounds toward negative infinity for a positive divisor.
	return ns.Div(ns, big.NewInt(int64(m.window)))
}

// startOf returns the instant window w begins: w*Window - Offset after the
// Unix epoch.
func (m *FixedWindow) startOf(w *big.Int) time.Time {
	ns := new(big.Int).Mul(w, big.NewInt(int64(m.window)))
	ns.Sub(ns, big.NewInt(int64(m.offset)))
	sec, nsec := new(big.Int).DivMod(ns, big.NewInt(1e9), new(big.Int))
	return time.Unix(sec.Int64(), nsec.Int64())
}

func (m *FixedWindow) decide(now time.Time, n int, take bool) ratekit.Decision {
	d := ratekit.Decision{Limit: m.limit, Window: m.window, Policy: m.name}
	w := m.number(now)
	next := new(big.Int).Add(w, big.NewInt(1))
	toEnd := m.startOf(next).Sub(now)

	if m.has && w.Cmp(m.win) < 0 {
		// Stamped before the counted window: denied, n == 0 aside; retry
		// when the counted window begins, or ends if it cannot take n.
		untilStart := m.startOf(m.win).Sub(now)
		untilEnd := m.startOf(new(big.Int).Add(m.win, big.NewInt(1))).Sub(now)
		d.ResetAfter = untilStart
		if m.count > 0 {
			d.ResetAfter = untilEnd
		}
		switch {
		case n < 0 || n > m.limit:
			d.RetryAfter = ratekit.Never
		case n == 0:
			d.Allowed = true
		case n <= m.limit-m.count: // count+n would overflow a 32-bit int
			d.RetryAfter = untilStart
		default:
			d.RetryAfter = untilEnd
		}
		return d
	}

	count, notified := 0, false
	if m.has && w.Cmp(m.win) == 0 {
		count, notified = m.count, m.notified
	}
	d.Remaining = max(m.limit-count, 0)
	if count > 0 {
		d.ResetAfter = toEnd
	}
	switch {
	case n < 0 || n > m.limit:
		d.RetryAfter = ratekit.Never
	case n == 0:
		d.Allowed = true
	case n <= m.limit-count: // count+n would overflow a 32-bit int
		d.Allowed = true
		d.Remaining -= n
		d.ResetAfter = toEnd
		if take {
			m.has, m.win, m.count, m.notified = true, w, count+n, notified
		}
	default:
		d.RetryAfter = toEnd
		d.ResetAfter = toEnd
		if take && m.hook && !notified {
			m.notified = true
			m.notices++
		}
	}
	return d
}

// Take is fixedwindow.Limiter.Take.
func (m *FixedWindow) Take(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(now, n, true)
}

// Peek is fixedwindow.Limiter.Peek.
func (m *FixedWindow) Peek(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(now, n, false)
}

// Refund is fixedwindow.Limiter.Refund: only in the counted window, never
// below zero.
func (m *FixedWindow) Refund(at time.Time, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n > 0 && m.has && m.number(at).Cmp(m.win) == 0 && (m.mark == nil || m.number(at).Cmp(m.mark) > 0) {
		m.count = max(m.count-n, 0)
	}
}

// Idle is fixedwindow.Limiter.Idle.
func (m *FixedWindow) Idle(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mark != nil && m.number(now).Cmp(m.mark) <= 0 {
		return false // a refund in now's window may still find the mark
	}
	if !m.has {
		return true
	}
	c := m.number(now).Cmp(m.win)
	return c > 0 || c == 0 && m.count == 0 && !m.notified
}

// Reconfigure is fixedwindow.Limiter.Reconfigure at the instant at (read on
// the new Config's Clock): the counted window becomes the new window that
// contains at, or its own last instant if at is not within it, with its
// count and flag.
func (m *FixedWindow) Reconfigure(at time.Time, limit int, window, offset time.Duration, name string, hook bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var start, markEnd time.Time
	if m.has {
		start = m.startOf(new(big.Int).Add(m.win, big.NewInt(1))).Add(-1)
		if !at.Before(m.startOf(m.win)) && at.Before(start) {
			start = at
		}
	}
	if m.mark != nil {
		markEnd = m.startOf(new(big.Int).Add(m.mark, big.NewInt(1))).Add(-1)
	}
	m.limit, m.window, m.offset, m.name, m.hook = limit, window, offset, name, hook
	if m.has {
		m.win = m.number(start)
	}
	if m.mark != nil {
		m.mark = m.number(markEnd)
	}
}

// raiseMark raises the refund mark to the window containing t.
func (m *FixedWindow) raiseMark(t time.Time) {
	if w := m.number(t); m.mark == nil || w.Cmp(m.mark) > 0 {
		m.mark = w
	}
}

// Notices returns how many times OnLimitReached would have been called.
func (m *FixedWindow) Notices() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notices
}
