package model

import (
	"fmt"
	"math/big"
	"slices"
	"time"
)

// This file gives the models what a linearizability checker
// (internal/lincheck) needs on top of sequential use: Clone, because a
// checker's model steps must not mutate the state they start from; State, a
// canonical description of everything a later decision depends on, for the
// checker's state equality and its visualisation; Restore, the model of
// UnmarshalBinary of a state another limiter of the model saved.

// Clone returns an independent copy of the model.
func (m *TokenBucket) Clone() *TokenBucket {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &TokenBucket{burst: m.burst, name: m.name, epoch: m.epoch, window: m.window,
		t: new(big.Rat).Set(m.t), tau: new(big.Rat).Set(m.tau)}
	if m.tat != nil {
		c.tat = new(big.Rat).Set(m.tat)
	}
	return c
}

// State describes the configuration and the TAT (ns from the epoch).
func (m *TokenBucket) State() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	tat := "full"
	if m.tat != nil {
		tat = "tat=" + m.tat.RatString()
	}
	return fmt.Sprintf("T=%s burst=%d %q %s", m.t.RatString(), m.burst, m.name, tat)
}

// Restore is UnmarshalBinary of the state from saved: the instant at which
// the bucket is full is kept, rounded up to this bucket's time scale (1/q ns,
// q the denominator of Window/Limit in lowest terms), so exactly when
// saved's scale divides it. Both must share the epoch.
func (m *TokenBucket) Restore(saved *TokenBucket) {
	s := saved.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.tat == nil {
		m.tat = nil
		return
	}
	q := m.t.Denom()
	units, r := new(big.Int).DivMod(new(big.Int).Mul(s.tat.Num(), q), s.tat.Denom(), new(big.Int))
	if r.Sign() != 0 {
		units.Add(units, big.NewInt(1))
	}
	m.tat = new(big.Rat).SetFrac(units, q)
}

// Clone returns an independent copy of the model.
func (m *FixedWindow) Clone() *FixedWindow {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &FixedWindow{limit: m.limit, window: m.window, offset: m.offset, name: m.name, hook: m.hook,
		has: m.has, count: m.count, notified: m.notified, notices: m.notices}
	if m.win != nil {
		c.win = new(big.Int).Set(m.win)
	}
	return c
}

// State describes the configuration and the counted window. The count of
// notices is left out: no decision depends on it.
func (m *FixedWindow) State() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := "none"
	if m.has {
		w = fmt.Sprintf("win=%v count=%d notified=%v", m.win, m.count, m.notified)
	}
	return fmt.Sprintf("%d/%v+%v %q hook=%v %s", m.limit, m.window, m.offset, m.name, m.hook, w)
}

// Restore is UnmarshalBinary of the state from saved: its counted window is
// placed as Reconfigure places it, in this model's window that contains its
// start, with its count and notified mark.
func (m *FixedWindow) Restore(saved *FixedWindow) {
	s := saved.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.has, m.count, m.notified, m.win = s.has, s.count, s.notified, nil
	if s.has {
		m.win = m.number(s.startOf(s.win))
	}
}

// Clone returns an independent copy of the model.
func (m *Rolling) Clone() *Rolling {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &Rolling{limit: m.limit, window: m.window, name: m.name, hooked: m.hooked,
		start: m.start, count: m.count, notified: m.notified, Notified: m.Notified}
}

// State describes the configuration and the window (start as Unix ns).
func (m *Rolling) State() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := "none"
	if m.count > 0 {
		w = fmt.Sprintf("start=%d count=%d notified=%v", m.start.UnixNano(), m.count, m.notified)
	}
	return fmt.Sprintf("%d/%v %q hook=%v %s", m.limit, m.window, m.name, m.hooked, w)
}

// Restore is UnmarshalBinary of the state from saved: its window's start,
// count and notified mark, under this model's configuration.
func (m *Rolling) Restore(saved *Rolling) {
	s := saved.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.start, m.count, m.notified = s.start, s.count, s.notified
	if m.count == 0 {
		m.start, m.notified = time.Time{}, false
	}
}

// Clone returns an independent copy of the model.
func (m *SlidingLog) Clone() *SlidingLog {
	c := *m
	c.units = slices.Clone(m.units)
	return &c
}

// State describes the configuration, the ring size and the units
// remembered.
func (m *SlidingLog) State() string {
	return fmt.Sprintf("%d/%v %q size=%d clock=%v/%v units=%v", m.Limit, m.Window, m.Name, m.size(), m.hasClock, m.clock, m.units)
}

// Restore is UnmarshalBinary of the state saved (Persist's view of it: the
// units that count at its clock, and the clock) into this log, under its
// Limit and Window. The ring is rewritten in place, keeping its size, and
// grows only to hold more units than it has slots.
func (m *SlidingLog) Restore(saved *SlidingLog) {
	s := saved.Clone()
	s.Persist()
	m.ring = max(m.size(), len(s.units))
	m.units, m.clock, m.hasClock = s.units, s.clock, s.hasClock
}

// Clone returns an independent copy of the model.
func (m *SlidingCounter) Clone() *SlidingCounter {
	c := *m
	return &c
}

// State describes the configuration and the two counts.
func (m *SlidingCounter) State() string {
	return fmt.Sprintf("%d/%v %q started=%v k=%d cur=%d prev=%d", m.Limit, m.Window, m.Name, m.started, m.k, m.cur, m.prev)
}

// Reconfigure is slidingwindow.Counter.Reconfigure to a Config of the same
// Window: the counts are kept, above a lowered Limit too. (A change of
// Window, which moves the counts to another window, is not modelled.)
func (m *SlidingCounter) Reconfigure(limit int, name string) {
	m.Limit, m.Name = limit, name
}

// Restore is UnmarshalBinary of the state saved, which has this counter's
// Window: its window and counts.
func (m *SlidingCounter) Restore(saved *SlidingCounter) {
	m.started, m.k, m.cur, m.prev = saved.started, saved.k, saved.cur, saved.prev
}

// Clone returns an independent copy of the model.
func (m *Concurrency) Clone() *Concurrency {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &Concurrency{Limit: m.Limit, Name: m.Name, Held: m.Held, Queue: slices.Clone(m.Queue),
		Epoch: m.Epoch, Hold: m.Hold, Admitted: m.Admitted, Open: m.Open,
		T1: m.T1, H1: m.H1, C1: m.C1, Next: m.Next}
}

// State describes the limit, what is held and queued, and the estimator.
func (m *Concurrency) State() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("%d %q held=%d queue=%v hold=%d admitted=%d open=%v t1=%d h1=%d c1=%d next=%d",
		m.Limit, m.Name, m.Held, m.Queue, m.Hold, m.Admitted, m.Open, m.T1, m.H1, m.C1, m.Next)
}
