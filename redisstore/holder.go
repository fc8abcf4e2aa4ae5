package redisstore

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// Holder is one key of a Semaphore as a ratekit.Holder, so that a
// concurrency limit shared by every replica composes with rate limits in
// ratekit.AllOf and ratekit.TakeAll (ReleaseAll releases it). Release has
// no lease to name, so the Holder keeps the leases its own Takes were
// granted, in this process, and Release(n) gives back n units of them,
// newest first (shrinking a lease in Redis when n is less than it holds).
//
// A failed call decides by the AdapterConfig's policy, as Adapter does.
// Units admitted by FailOpen or by the fallback while Redis was away are
// remembered as such and released there, not in Redis. A Release that
// fails leaves its lease to expire: the units come back after Lease.
//
// Build it with Semaphore.For. It is safe for concurrent use.
type Holder struct {
	m   *Semaphore
	key string
	a   Adapter // the policy; its l is nil

	rmu    sync.Mutex // serialises Releases
	mu     sync.Mutex
	leases []Lease // granted and not yet released, oldest first
}

var _ ratekit.Holder = (*Holder)(nil)

// local marks a lease of units admitted without Redis: by FailOpen (ID
// "open") or by the fallback (ID "fallback").
const (
	openLease     = "open"
	fallbackLease = "fallback"
)

// For returns key of m as a ratekit.Holder, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (see Limiter.For). A
// FailFallback Holder's Fallback should be a ratekit.Holder (a local
// concurrency.Limiter), so that releases reach it. cfg.CallerTime passes
// the Take's time to Redis, where the lease then expires at now + Lease.
func (m *Semaphore) For(key string, cfg AdapterConfig) (*Holder, error) {
	l := &Limiter{store: m.store, cfg: Config{Name: m.cfg.Name}, capacity: m.cfg.Limit}
	a, err := l.For(key, cfg)
	if err != nil {
		return nil, err
	}
	return &Holder{m: m, key: key, a: *a}, nil
}

// Take holds n units for a Lease if they fit (Semaphore.Take), and keeps
// the Lease for Release. If Redis does not answer, the policy decides.
func (h *Holder) Take(now time.Time, n int) ratekit.Decision {
	at := ""
	if h.a.cfg.CallerTime {
		at = micros(now)
	}
	var lease Lease
	var d ratekit.Decision
	_, err := h.a.guard(func(ctx context.Context) (ratekit.Decision, error) {
		var err error
		lease, d, err = h.m.take(ctx, h.key, n, at)
		return d, err
	})
	if err != nil {
		d = h.a.failed(err, "t", now, n)
		if d.Allowed && n > 0 {
			id := openLease
			if h.a.cfg.OnFailure == FailFallback {
				id = fallbackLease
			}
			lease = Lease{Key: h.key, ID: id, N: n}
		}
	}
	if lease.N > 0 {
		h.mu.Lock()
		h.leases = append(h.leases, lease)
		h.mu.Unlock()
	}
	return d
}

// Peek is Semaphore.Peek, or the policy's decision.
func (h *Holder) Peek(now time.Time, n int) ratekit.Decision {
	at := ""
	if h.a.cfg.CallerTime {
		at = micros(now)
	}
	d, err := h.a.guard(func(ctx context.Context) (ratekit.Decision, error) {
		return h.m.peek(ctx, h.key, n, at)
	})
	if err != nil {
		return h.a.failed(err, "p", now, n)
	}
	return d
}

// Refund is Release(n).
func (h *Holder) Refund(_ time.Time, n int) { h.Release(n) }

// Release gives back n units of the leases this Holder was granted, newest
// first. Releasing more than it holds releases what it holds. Releases of
// one Holder are serialised, so that two shrinking one lease agree on it.
func (h *Holder) Release(n int) {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	type part struct {
		l Lease // as held before this Release
		k int   // units given back: all of l.N, or fewer (a shrink)
	}
	var parts []part
	h.mu.Lock()
	for n > 0 && len(h.leases) > 0 {
		last := &h.leases[len(h.leases)-1]
		k := min(n, last.N)
		parts = append(parts, part{*last, k})
		n -= k
		if last.N -= k; last.N == 0 {
			h.leases = h.leases[:len(h.leases)-1]
		}
	}
	h.mu.Unlock()
	for _, p := range parts {
		switch {
		case p.l.ID == openLease:
		case p.l.ID == fallbackLease:
			if fb, ok := h.a.cfg.Fallback.(ratekit.Holder); ok {
				fb.Release(p.k)
			}
		default:
			_, err := h.a.guard(func(ctx context.Context) (ratekit.Decision, error) {
				if p.k == p.l.N {
					return ratekit.Decision{}, h.m.Release(ctx, p.l)
				}
				_, _, err := h.m.store.run(ctx, "s", p.k, "", []member{h.m.member(p.l.Key, p.l.ID+":"+strconv.Itoa(p.l.N))})
				return ratekit.Decision{}, err
			})
			if err != nil {
				h.a.report(err) // the lease expires by itself
			}
		}
	}
}

// Idle reports whether the Holder holds no lease, so that a ratekit.Keyed
// may drop it (the key's state is in Redis) without losing units it must
// release.
func (h *Holder) Idle(time.Time) bool { return h.Held() == 0 }

// Held returns the units this Holder holds through its leases (some may
// have expired in Redis if they were not extended).
func (h *Holder) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.leases {
		n += l.N
	}
	return n
}

// Extend renews every lease this Holder holds in Redis for another Lease,
// for work that outlasts it. It returns how many units it could not renew
// (their leases had expired: those units may be someone else's now) and
// the first error.
func (h *Holder) Extend(ctx context.Context) (lost int, err error) {
	h.mu.Lock()
	ls := append([]Lease(nil), h.leases...)
	h.mu.Unlock()
	for _, l := range ls {
		if l.ID == openLease || l.ID == fallbackLease {
			continue
		}
		ok, e := h.m.Extend(ctx, l)
		if e != nil && err == nil {
			err = e
		}
		if e == nil && !ok {
			lost += l.N
		}
	}
	return lost, err
}
