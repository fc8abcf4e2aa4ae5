package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/ratekit/ratekit"
)

// SemaphoreConfig configures a Semaphore. The zero value is invalid: Name,
// Limit and Lease must be set.
type SemaphoreConfig struct {
	// Name is the policy's name and the middle of its keys, as
	// Config.Name.
	Name string
	// Limit is how many units may be held at once per key, 1 to MaxLimit.
	Limit int
	// Lease is how long units stay held without a Release or Extend: the
	// time after which the units of a holder that died come back. A
	// positive whole number of microseconds, at most MaxWindow. Choose it
	// longer than the work usually takes and Extend long work.
	Lease time.Duration
}

// Validate returns nil if c is usable, or an error wrapping
// ratekit.ErrInvalidConfig.
func (c SemaphoreConfig) Validate() error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, ":{}"):
		return invalid("Semaphore Name %q must be set, without ':', '{' or '}'", c.Name)
	case c.Limit < 1 || c.Limit > MaxLimit:
		return invalid("Semaphore Limit %d is outside [1, %d]", c.Limit, MaxLimit)
	case c.Lease <= 0 || c.Lease > MaxWindow || c.Lease%time.Microsecond != 0:
		return invalid("Semaphore Lease %v must be a positive whole number of µs, at most %v", c.Lease, MaxWindow)
	}
	return nil
}

// Semaphore is a concurrency limit kept in Redis for any number of keys:
// at most Limit units held at once per key across every replica (Sanity's
// 100 concurrent mutations per dataset). Units are held by leases that
// expire, so a replica that dies while holding units does not leak them
// for longer than Lease.
//
// Build it with Store.Semaphore; the zero Semaphore is not usable. It is
// safe for concurrent use. Each method is one round trip. The state of a
// key is a sorted set of leases (score: expiry in µs, member "id:units")
// with a running total of their units, so a Take reads only the leases
// that have expired and, on a denial, the first that will.
type Semaphore struct {
	store  *Store
	cfg    SemaphoreConfig
	prefix string
	lease  int64 // µs
}

// Lease is units held by an allowed Semaphore.Take. Pass it to Release
// when the work is done, and to Extend to hold the units longer. The zero
// Lease (from a denied or n == 0 Take) holds nothing; releasing it does
// nothing.
type Lease struct {
	// Key is the Semaphore key the units are held on.
	Key string
	// ID identifies the lease: 128 random bits in hex.
	ID string
	// N is the number of units held.
	N int
}

// Semaphore returns a Semaphore for cfg, or an error wrapping
// ratekit.ErrInvalidConfig. It does not contact Redis.
func (s *Store) Semaphore(cfg SemaphoreConfig) (*Semaphore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Semaphore{store: s, cfg: cfg, prefix: s.prefix + "cc:" + cfg.Name + ":", lease: cfg.Lease.Microseconds()}, nil
}

// On names key of this Semaphore as a member of Store.Hold and PeekAll.
func (m *Semaphore) On(key string) Member { return Member{sem: m, key: key} }

// Key returns the Redis key that holds key's leases.
func (m *Semaphore) Key(key string) string { return m.prefix + key }

func (m *Semaphore) member(key, lease string) member {
	return member{key: m.prefix + key, alg: "cc", limit: int64(m.cfg.Limit), window: m.lease, p4: lease}
}

func (m *Semaphore) decision(r result) ratekit.Decision {
	d := ratekit.Decision{Allowed: r.allowed, Limit: m.cfg.Limit, Remaining: int(r.remaining),
		ResetAfter: dur(r.reset), Policy: m.cfg.Name}
	if r.retry < 0 {
		d.RetryAfter = ratekit.Never
	} else {
		d.RetryAfter = dur(r.retry)
	}
	return d
}

// Take holds n units of key for Lease if they fit under Limit with the
// live leases, and returns the Lease; or holds nothing and denies. n == 0
// is allowed and holds nothing; n < 0 and n > Limit are denied with
// RetryAfter ratekit.Never. A denial's RetryAfter is how long until enough
// leases expire if none is released or extended: an upper bound, since
// holders usually release sooner. ResetAfter is until the last lease
// expires. Window is 0. Time is the server's.
func (m *Semaphore) Take(ctx context.Context, key string, n int) (Lease, ratekit.Decision, error) {
	return m.take(ctx, key, n, "")
}

// TakeAt is Take at an injected time (see Limiter.TakeAt): the lease
// expires at now + Lease.
func (m *Semaphore) TakeAt(ctx context.Context, key string, now time.Time, n int) (Lease, ratekit.Decision, error) {
	return m.take(ctx, key, n, micros(now))
}

func (m *Semaphore) take(ctx context.Context, key string, n int, now string) (Lease, ratekit.Decision, error) {
	id := newID()
	rs, _, err := m.store.run(ctx, "t", n, now, []member{m.member(key, id+":"+strconv.Itoa(max(n, 0)))})
	if err != nil {
		return Lease{}, ratekit.Decision{}, err
	}
	d := m.decision(rs[0])
	if !d.Allowed || n == 0 {
		return Lease{}, d, nil
	}
	return Lease{Key: key, ID: id, N: n}, d, nil
}

// Peek reports what Take(ctx, key, n) would decide, holding nothing.
func (m *Semaphore) Peek(ctx context.Context, key string, n int) (ratekit.Decision, error) {
	return m.peek(ctx, key, n, "")
}

// PeekAt is Peek at an injected time.
func (m *Semaphore) PeekAt(ctx context.Context, key string, now time.Time, n int) (ratekit.Decision, error) {
	return m.peek(ctx, key, n, micros(now))
}

func (m *Semaphore) peek(ctx context.Context, key string, n int, now string) (ratekit.Decision, error) {
	rs, _, err := m.store.run(ctx, "p", n, now, []member{m.member(key, "")})
	if err != nil {
		return ratekit.Decision{}, err
	}
	return m.decision(rs[0]), nil
}

// Release gives back the units of lease at once. Releasing a lease twice,
// or one that has expired, does nothing: units are never given back twice.
func (m *Semaphore) Release(ctx context.Context, lease Lease) error {
	if lease.N <= 0 {
		return nil
	}
	_, _, err := m.store.run(ctx, "r", lease.N, "", []member{m.member(lease.Key, lease.ID+":"+strconv.Itoa(lease.N))})
	return err
}

// Extend holds lease's units for another Lease from now (the server's) and
// reports whether it could: false if the lease has expired or was
// released, in which case its units may already be someone else's and the
// work should stop.
func (m *Semaphore) Extend(ctx context.Context, lease Lease) (bool, error) {
	return m.extend(ctx, lease, "")
}

// ExtendAt is Extend at an injected time.
func (m *Semaphore) ExtendAt(ctx context.Context, lease Lease, now time.Time) (bool, error) {
	return m.extend(ctx, lease, micros(now))
}

func (m *Semaphore) extend(ctx context.Context, lease Lease, now string) (bool, error) {
	if lease.N <= 0 {
		return false, nil
	}
	rs, _, err := m.store.run(ctx, "x", lease.N, now, []member{m.member(lease.Key, lease.ID+":"+strconv.Itoa(lease.N))})
	if err != nil {
		return false, err
	}
	return rs[0].allowed, nil
}

// newID returns 128 random bits in hex. crypto/rand.Read never fails.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
