package model

import (
	"fmt"
	"math/big"
	"sync"
	"time"
)

// This file gives the models what a linearizability checker
// (internal/lincheck) needs on top of sequential use: Clone, because a
// checker's model steps must not mutate the state they start from; State, a
// canonical description of everything a later decision depends on, for the
// checker's state equality and its visualisation; Restore, the model of
// UnmarshalBinary of a state another limiter of the model saved.
//
// Clone and State are derived from the struct's fields by reflection
// (fields.go), not listed by hand: a field added to a model is copied and
// described without anyone remembering to, and a checker comparing States
// cannot merge two states that differ in it. Fields no decision depends on
// are left out of State by name, and TestFieldsCovered checks every other
// field changes the State and survives Clone.

// cloneOf returns a deep copy of *m (see copyFields), read with mu, m's
// mutex, held (nil: m has none).
func cloneOf[T any](mu *sync.Mutex, m *T) *T {
	if mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	c := new(T)
	copyFields(c, m)
	return c
}

// stateOf is describeFields(m, skip...), read with mu, m's mutex, held.
func stateOf[T any](mu *sync.Mutex, m *T, skip ...string) string {
	mu.Lock()
	defer mu.Unlock()
	return describeFields(m, skip...)
}

// Clone returns an independent copy of the model.
func (m *TokenBucket) Clone() *TokenBucket { return cloneOf(&m.mu, m) }

// State describes every field: the configuration, the TAT and the bound on
// stamps (rational ns from the epoch; nil: full since forever, and no
// stamp).
func (m *TokenBucket) State() string { return stateOf(&m.mu, m) }

// Restore is UnmarshalBinary of the state from saved: the instant at which
// the bucket is full is kept, rounded up to this bucket's time scale (1/q ns,
// q the denominator of Window/Limit in lowest terms), so exactly when
// saved's scale divides it; under a slower rate than saved's, moved to the
// instant it was last empty plus saved's Burst at this rate. Both must share the epoch. The Takes counted
// in the replaced state no longer count, and none of this bucket's is
// counted in the restored one: the bound on their stamps (and the mark of
// an earlier restore) becomes the restore mark, at or before which a Refund
// gives nothing back, and the bound on stamps starts afresh.
func (m *TokenBucket) Restore(saved *TokenBucket) {
	s := saved.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen != nil && (m.mark == nil || m.seen.Cmp(m.mark) > 0) {
		m.mark = m.seen
	}
	m.seen = nil
	if s.tat == nil {
		m.tat = nil
		return
	}
	q := m.t.Denom()
	m.tat = roundUp(s.tat, q)
	// A state saved under another rate is carried from the instant it was
	// last empty, a saved Burst's refill before it is full: full no sooner
	// than that instant plus the saved Burst at this rate (tokenbucket's
	// carryRestored; the same instant at the same rate).
	e := roundUp(new(big.Rat).Sub(s.tat, s.tau), q)
	e.Add(e, new(big.Rat).Mul(m.t, ratInt(int64(s.burst))))
	if e.Cmp(m.tat) > 0 {
		m.tat = e
	}
}

// Clone returns an independent copy of the model.
func (m *FixedWindow) Clone() *FixedWindow { return cloneOf(&m.mu, m) }

// State describes the configuration and the counted window. The count of
// notices is left out: no decision depends on it.
func (m *FixedWindow) State() string { return stateOf(&m.mu, m, "notices") }

// Restore is UnmarshalBinary of the state from saved: its counted window is
// placed as Reconfigure places it, in this model's window that contains its
// start, with its count and notified mark; refunds stamped in that window
// or the replaced one, or earlier, give nothing back from then on.
func (m *FixedWindow) Restore(saved *FixedWindow) {
	s := saved.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	marking := m.has || m.mark != nil // a model that never counted has nothing to refund
	if m.has {
		m.raiseMark(m.startOf(m.win))
	}
	m.has, m.count, m.notified, m.win = s.has, s.count, s.notified, nil
	if s.has {
		m.win = m.number(s.startOf(new(big.Int).Add(s.win, big.NewInt(1))).Add(-1)) // its last instant
		if marking {
			m.raiseMark(m.startOf(m.win))
		}
	}
}

// Clone returns an independent copy of the model.
func (m *Rolling) Clone() *Rolling { return cloneOf(&m.mu, m) }

// State describes the configuration and the window. Notified, a count of
// calls, is left out: no decision depends on it.
func (m *Rolling) State() string { return stateOf(&m.mu, m, "Notified") }

// Restore is UnmarshalBinary of the state from saved: its window's start,
// count and notified mark, under this model's configuration (saved under a
// longer Window, its window starts at the old one's last instant unless
// this Window from its start is still open then); whether units were taken
// after the start is not saved, and is assumed (Restored).
func (m *Rolling) Restore(saved *Rolling) {
	s := saved.Clone()
	m.mu.Lock()
	if s.count > 0 && m.window < s.window {
		// Saved under a longer Window: carried as Reconfigure carries it,
		// with no instant of a change (its units may all have been taken
		// at the old window's last instant).
		if a := s.start.Add(s.window - 1); !a.Before(s.start.Add(m.window)) {
			s.start = a
		}
	}
	if m.count > 0 || m.spent || m.marked {
		// The refund mark: the ends of the replaced (open or spent) and
		// the restored window, in this model's Window.
		for _, c := range []*Rolling{m, s} {
			if e := c.start.Add(m.window - 1); (c.count > 0 || c.spent) && (!m.marked || e.After(m.mark)) {
				m.marked, m.mark = true, e
			}
		}
	}
	m.start, m.count, m.notified, m.spent = s.start, s.count, s.notified, false
	if m.count == 0 {
		m.start, m.notified = time.Time{}, false
	}
	m.mu.Unlock()
	m.Restored()
}

// Clone returns an independent copy of the model.
func (m *SlidingLog) Clone() *SlidingLog { return cloneOf(nil, m) }

// State describes the configuration, the ring size, the units remembered
// (placeholders included) and the clock.
func (m *SlidingLog) State() string {
	return fmt.Sprintf("size=%d %s", m.size(), describeFields(m))
}

// Restore is UnmarshalBinary of the state saved (Persist's view of it:
// every unit it remembers, its clock and its lost mark) into this log,
// under its Limit and Window. The ring is rewritten in place, keeping its size, and
// grows only to hold more units than it has slots.
func (m *SlidingLog) Restore(saved *SlidingLog) {
	s := saved.Clone()
	s.Persist()
	m.ring = max(m.size(), len(s.units))
	for _, c := range []*SlidingLog{m, s} {
		if !m.hasClock && !m.marked {
			break // never recorded: nothing to refund
		}
		if c.hasClock && (!m.marked || c.clock > m.restored) {
			m.restored, m.marked = c.clock, true
		}
	}
	m.units, m.clock, m.hasClock = s.units, s.clock, s.hasClock
	m.lost, m.hasLost = s.lost, s.hasLost // the restored state replaces the ring whole
}

// Clone returns an independent copy of the model.
func (m *SlidingCounter) Clone() *SlidingCounter { return cloneOf(nil, m) }

// State describes the configuration and the two counts.
func (m *SlidingCounter) State() string {
	return describeFields(m)
}

// Reconfigure is slidingwindow.Counter.Reconfigure to a Config of the same
// Window: the counts are kept, above a lowered Limit too. (A change of
// Window, which moves the counts to another window, is not modelled.)
// A window the counter no longer knows is judged at stale times as holding
// the most any Limit set so far let it hold (see staleDecision).
func (m *SlidingCounter) Reconfigure(limit int, name string) {
	m.forgot = max(m.forgot, m.Limit)
	m.Limit, m.Name = limit, name
}

// Restore is UnmarshalBinary of the state saved, which has this counter's
// Window: its window and counts, and the most a window it no longer knows
// may hold if that is above its Limit; refunds stamped in that window or
// the replaced one, or earlier, give nothing back from then on.
func (m *SlidingCounter) Restore(saved *SlidingCounter) {
	for _, c := range []*SlidingCounter{m, saved} {
		if !m.started && !m.marked {
			break // never counted: nothing to refund
		}
		if c.started && (!m.marked || c.k > m.mark) {
			m.marked, m.mark = true, c.k
		}
	}
	m.started, m.k, m.cur, m.prev = saved.started, saved.k, saved.cur, saved.prev
	if saved.forgot > saved.Limit {
		// Saved by a counter whose Limit went down: a forgotten window
		// counts as it did there (slidingwindow's format version 3).
		m.forgot = max(m.forgot, saved.forgot)
	}
}

// Clone returns an independent copy of the model.
func (m *Concurrency) Clone() *Concurrency { return cloneOf(&m.mu, m) }

// State describes the limit, what is held and queued, and the estimator.
// Epoch, fixed at construction, is left out.
func (m *Concurrency) State() string { return stateOf(&m.mu, m, "Epoch") }
