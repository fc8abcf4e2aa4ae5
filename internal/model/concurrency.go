package model

import (
	"math"
	"math/big"
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// Concurrency is the reference model of concurrency.Limiter: the same
// decisions, queue and hold-time estimate, written plainly. A mutex guards
// plain fields, the queue is a slice, and the estimator's arithmetic is
// done in math/big, so nothing here can overflow or round differently by
// accident. It is slow and that is fine.
//
// Acquire callers are modelled by Enqueue and Cancel with caller-chosen
// ids; the methods that can grant units to the queue return the ids they
// granted, in order.
type Concurrency struct {
	mu sync.Mutex

	Limit int
	Name  string
	Held  int
	Queue []ConcurrencyWaiter

	// The hold-time estimator (see concurrency.Limiter's doc).
	Epoch    time.Time
	Hold     int64  // ns; 0 before the first nonzero sample
	Admitted uint64 // units ever admitted
	Open     bool   // a measuring interval is open:
	T1       int64  //   opened at T1 (ns since Epoch)
	H1       int    //   leaving H1 units held
	C1       uint64 //   when Admitted was C1
	Next     int64  // no sample before Next
}

// ConcurrencyWaiter is a queued Acquire call.
type ConcurrencyWaiter struct{ ID, N int }

// The model's copies of the estimator's constants.
const (
	concDefaultHold = int64(time.Millisecond)
	concMaxEstimate = int64(24 * time.Hour)
	concMinSpacing  = int64(100 * time.Microsecond)
	concMinRetry    = int64(ratekit.MinRetry)
)

// NewConcurrency returns a model of a fresh concurrency.Limiter whose
// estimator measures time from epoch.
func NewConcurrency(limit int, name string, epoch time.Time) *Concurrency {
	return &Concurrency{Limit: limit, Name: name, Epoch: epoch, Next: math.MinInt64}
}

func (m *Concurrency) queued() int {
	q := 0
	for _, w := range m.Queue {
		q += w.N
	}
	return q
}

// Peek is what Take(now, n) would decide.
func (m *Concurrency) Peek(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, _ := m.decide(n)
	return d
}

// decide returns the decision on n and the units held after it.
func (m *Concurrency) decide(n int) (ratekit.Decision, int) {
	d := ratekit.Decision{Limit: m.Limit, Policy: m.Name}
	waiting := len(m.Queue) > 0
	q := m.queued()
	if !waiting && m.Held < m.Limit {
		d.Remaining = m.Limit - m.Held
	}
	h := m.Held
	switch {
	case n < 0 || n > m.Limit:
		d.RetryAfter = ratekit.Never
	case n == 0:
		d.Allowed = true
	case waiting || m.Held+n > m.Limit:
		d.RetryAfter = m.estimate(m.Held+q+n-m.Limit, m.Held)
	default:
		d.Allowed = true
		d.Remaining -= n
		h += n
	}
	if h > 0 {
		d.ResetAfter = m.estimate(h+q, h)
	}
	return d, h
}

// Take decides on n at now and, if allowed, takes n.
func (m *Concurrency) Take(now time.Time, n int) ratekit.Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, h := m.decide(n)
	if d.Allowed && n > 0 {
		before := m.Held
		m.Held = h
		m.admit(now, before, n)
	}
	return d
}

// TryAcquire is concurrency.Limiter.TryAcquire(n) with the Config's clock
// reading now: Take's admission without the Decision, which samples the
// hold time only when the units ever admitted cross a multiple of 64.
func (m *Concurrency) TryAcquire(now time.Time, n int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, h := m.decide(n)
	if !d.Allowed || n == 0 {
		return d.Allowed
	}
	before := m.Held
	m.Held = h
	if (m.Admitted+uint64(n))%64 < uint64(n) {
		m.admit(now, before, n)
	} else {
		m.Admitted += uint64(n)
	}
	return true
}

// Release gives back n units and grants the queue, timing any grant at
// now. ok is false, and nothing changes, for the misuse the real limiter
// refuses and counts: n < 0 or n > Held.
func (m *Concurrency) Release(now time.Time, n int) (granted []int, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < 0 || n > m.Held {
		return nil, false
	}
	m.Held -= n
	return m.grant(now), true
}

// Enqueue is Acquire(n) by caller id at now, with a live context. It
// reports whether the units were taken at once (nobody queued and n fits);
// err is true for n < 0 or n > Limit. Otherwise the caller is queued.
func (m *Concurrency) Enqueue(now time.Time, id, n int) (took, err bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < 0 || n > m.Limit {
		return false, true
	}
	if n == 0 {
		return true, false
	}
	if len(m.Queue) == 0 && m.Held+n <= m.Limit {
		before := m.Held
		m.Held += n
		m.admit(now, before, n)
		return true, false
	}
	m.Queue = append(m.Queue, ConcurrencyWaiter{ID: id, N: n})
	return false, false
}

// Cancel is the context of queued caller id being cancelled at now: it
// leaves the queue, and those behind it that now fit are granted. A caller
// not queued is ignored.
func (m *Concurrency) Cancel(now time.Time, id int) (granted []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, w := range m.Queue {
		if w.ID == id {
			m.Queue = append(m.Queue[:i:i], m.Queue[i+1:]...)
			return m.grant(now)
		}
	}
	return nil
}

// Reconfigure sets the limit and name at now: queued callers wanting more
// than limit fail, then the queue is granted.
func (m *Concurrency) Reconfigure(now time.Time, limit int, name string) (failed, granted []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Limit, m.Name = limit, name
	var keep []ConcurrencyWaiter
	for _, w := range m.Queue {
		if w.N > limit {
			failed = append(failed, w.ID)
		} else {
			keep = append(keep, w)
		}
	}
	m.Queue = keep
	return failed, m.grant(now)
}

// grant admits queued callers from the head while they fit.
func (m *Concurrency) grant(now time.Time) []int {
	var ids []int
	before, units := m.Held, 0
	for len(m.Queue) > 0 && m.Held+m.Queue[0].N <= m.Limit {
		m.Held += m.Queue[0].N
		units += m.Queue[0].N
		ids = append(ids, m.Queue[0].ID)
		m.Queue = m.Queue[1:]
	}
	if units > 0 {
		m.admit(now, before, units)
	}
	return ids
}

// Idle reports nothing held and nobody queued.
func (m *Concurrency) Idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Held == 0 && len(m.Queue) == 0
}

// Waiting is the number of queued callers.
func (m *Concurrency) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.Queue)
}

// Restore is UnmarshalBinary of a saved estimate: the estimate is replaced
// and the measuring interval closed.
func (m *Concurrency) Restore(hold int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Hold = hold
	m.Open = false
	m.T1, m.H1, m.C1 = 0, 0, 0
	m.Next = math.MinInt64
}

// admit records n units admitted at now with before held, and samples the
// hold time when the spacing allows.
func (m *Concurrency) admit(now time.Time, before, n int) {
	m.Admitted += uint64(n)
	t := int64(now.Sub(m.Epoch))
	// Too soon is at most the largest spacing (a quarter of the largest
	// estimate) before Next; a time further back went back past the open
	// interval and is sampled, which opens a new interval there (after
	// one admission stamped far ahead, the estimator still samples).
	if d := new(big.Int).Sub(big.NewInt(m.Next), big.NewInt(t)); d.Sign() > 0 && d.Cmp(big.NewInt(concMaxEstimate/4)) <= 0 {
		return
	}
	if h := min(m.H1, before); h > 0 && m.Open && t > m.T1 {
		dt := new(big.Int).Sub(big.NewInt(t), big.NewInt(m.T1))
		if dt.Cmp(big.NewInt(concMaxEstimate)) <= 0 {
			area := new(big.Int).Mul(big.NewInt(int64(h)), dt)
			units := new(big.Int).SetUint64(m.Admitted - m.C1)
			s := new(big.Int).Quo(area, units)
			if s.Cmp(big.NewInt(concMaxEstimate)) > 0 {
				s.SetInt64(concMaxEstimate)
			}
			if m.Hold == 0 {
				m.Hold = s.Int64()
			} else {
				m.Hold += (s.Int64() - m.Hold) / 8
			}
		}
	}
	m.Open, m.T1, m.H1, m.C1 = true, t, before+n, m.Admitted
	next := new(big.Int).Add(big.NewInt(t), big.NewInt(max(m.Hold/4, concMinSpacing)))
	if next.IsInt64() {
		m.Next = next.Int64()
	} else {
		m.Next = math.MaxInt64
	}
}

// estimate is hold·k/h rounded up, clamped to [MinRetry, 24h], with hold
// 1ms before any sample and k, h at least 1.
func (m *Concurrency) estimate(k, h int) time.Duration {
	hold := m.Hold
	if hold == 0 {
		hold = concDefaultHold
	}
	k, h = max(k, 1), max(h, 1)
	num := new(big.Int).Mul(big.NewInt(hold), big.NewInt(int64(k)))
	q, r := new(big.Int).QuoRem(num, big.NewInt(int64(h)), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	switch {
	case q.Cmp(big.NewInt(concMinRetry)) < 0:
		return time.Duration(concMinRetry)
	case q.Cmp(big.NewInt(concMaxEstimate)) > 0:
		return time.Duration(concMaxEstimate)
	}
	return time.Duration(q.Int64())
}
