package redisstore

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/ratekit/ratekit"
)

// Algorithm selects what a Limiter does with a key's units. The values
// match the embedded packages of the same names.
type Algorithm uint8

// The algorithms. The zero Algorithm is invalid.
const (
	// TokenBucket is GCRA: Limit units refill evenly over Window, at most
	// Burst at once (package tokenbucket).
	TokenBucket Algorithm = iota + 1
	// FixedWindow counts Limit units per window aligned to Unix time plus
	// Offset (package fixedwindow).
	FixedWindow
	// Rolling counts Limit units per window opened by the first event and
	// lasting Window (package rolling).
	Rolling
	// SlidingLog admits at most Limit units in any interval of length
	// Window, exactly, by logging admissions (slidingwindow.NewLog).
	SlidingLog
	// SlidingCounter estimates a sliding window from two fixed windows in
	// O(1) memory (slidingwindow.NewCounter).
	SlidingCounter
)

func (a Algorithm) String() string {
	switch a {
	case TokenBucket:
		return "TokenBucket"
	case FixedWindow:
		return "FixedWindow"
	case Rolling:
		return "Rolling"
	case SlidingLog:
		return "SlidingLog"
	case SlidingCounter:
		return "SlidingCounter"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// code is the algorithm's tag in keys and in the script.
func (a Algorithm) code() string {
	return [...]string{"", "tb", "fw", "rw", "sl", "sc"}[a]
}

// Bounds of a Config. Redis runs Lua, whose numbers are doubles, exact for
// integers below 2^53; the script works in microseconds, never forms a
// product of a count and a time (see ratekit.lua), and these bounds keep
// every number it does form below 2^53. 10^9 units a day, or over 30 days,
// work on every algorithm.
const (
	// MaxLimit is the largest Limit (and Burst): 2^31-1 units.
	MaxLimit = 1<<31 - 1
	// MaxWindow is the longest Window: 400 days.
	MaxWindow = 400 * 24 * time.Hour
	// MaxRefill is the longest time a TokenBucket may take to refill its
	// Burst (Burst·Window/Limit): 2^50 µs, about 35 years. It keeps the
	// bucket's theoretical arrival time, a Unix time in µs plus at most
	// this, below 2^53.
	MaxRefill = (1 << 50) * time.Microsecond
)

// Config configures a Limiter. The zero Config is invalid: Algorithm, Name,
// Limit and Window must be set.
type Config struct {
	// Algorithm is what the Limiter does.
	Algorithm Algorithm
	// Name is the policy's name, reported as every Decision's Policy, and
	// the middle of every key this Limiter writes (see the package doc): two
	// Limiters of one Algorithm and Name, in any process, share their keys'
	// state. It must not be empty nor contain ':', '{' or '}'.
	Name string
	// Limit is the units admitted per Window, 1 to MaxLimit.
	Limit int
	// Window is the window (or, for TokenBucket, the time Limit units take
	// to refill): a positive whole number of microseconds, at most
	// MaxWindow. Redis keeps time in microseconds (see the package doc).
	Window time.Duration
	// Burst is TokenBucket's capacity, 1 to MaxLimit, refilled in
	// Burst·Window/Limit, which must be at most MaxRefill (any Burst up to
	// 12,000 times Limit for a daily Window); other algorithms must leave
	// it 0.
	Burst int
	// Offset is, for FixedWindow, the UTC offset of the zone whose clock the
	// windows follow, east positive, as fixedwindow.Config.Offset: windows
	// start where Unix time plus Offset is a multiple of Window, so a daily
	// window with Offset -5h runs from midnight in New York (in winter). A
	// whole number of microseconds; only Offset modulo Window matters.
	// Other algorithms must leave it 0.
	Offset time.Duration
}

// Validate returns nil if c is usable, or an error wrapping
// ratekit.ErrInvalidConfig that says which field is wrong.
func (c Config) Validate() error {
	switch {
	case c.Algorithm < TokenBucket || c.Algorithm > SlidingCounter:
		return invalid("unknown %v", c.Algorithm)
	case c.Name == "":
		return invalid("Name must be set: it names the keys in Redis")
	case strings.ContainsAny(c.Name, ":{}"):
		return invalid("Name %q holds ':', '{' or '}'", c.Name)
	case c.Limit < 1 || c.Limit > MaxLimit:
		return invalid("Limit %d is outside [1, %d]", c.Limit, MaxLimit)
	case c.Window <= 0 || c.Window > MaxWindow:
		return invalid("Window %v is outside (0, %v]", c.Window, MaxWindow)
	case c.Window%time.Microsecond != 0:
		return invalid("Window %v is not a whole number of microseconds", c.Window)
	case c.Offset%time.Microsecond != 0:
		return invalid("Offset %v is not a whole number of microseconds", c.Offset)
	case c.Offset != 0 && c.Algorithm != FixedWindow:
		return invalid("Offset is for FixedWindow only, not %v", c.Algorithm)
	case c.Burst != 0 && c.Algorithm != TokenBucket:
		return invalid("Burst is for TokenBucket only, not %v", c.Algorithm)
	}
	w := c.Window.Microseconds()
	switch c.Algorithm {
	case TokenBucket:
		if c.Burst < 1 || c.Burst > MaxLimit {
			return invalid("TokenBucket Burst %d is outside [1, %d]", c.Burst, MaxLimit)
		}
		// Burst·w/Limit <= 2^50 µs, in 128 bits.
		hi, lo := bits.Mul64(uint64(c.Burst), uint64(w))
		mhi, mlo := bits.Mul64(uint64(MaxRefill/time.Microsecond), uint64(c.Limit))
		if hi > mhi || hi == mhi && lo > mlo {
			q, _ := bits.Div64(mhi, mlo, uint64(w)) // < 2^50·2^31/1 fits
			return invalid("TokenBucket Burst %d refills in over %v (MaxRefill) at Limit %d per %v: "+
				"the largest Burst a TokenBucket takes with that Limit and Window is %d",
				c.Burst, MaxRefill, c.Limit, c.Window, min(q, MaxLimit))
		}
	}
	return nil
}

// Limiter is one rate-limit policy kept in Redis for any number of keys
// (orgs, tokens, IPs): Take(ctx, key, n) decides for key's state, shared
// by every process that uses the same Store prefix and Config.Name.
//
// Build it with Store.Limiter; the zero Limiter is not usable. It is safe
// for concurrent use and holds no per-key state in the process. Each
// method is one round trip (EVALSHA of one Lua script), atomic on the
// server.
type Limiter struct {
	store  *Store
	cfg    Config
	prefix string // store prefix + alg + ":" + name + ":"
	window int64  // µs
	p3     int64  // Burst or Offset (µs, in [0, Window))
	// What every Decision reports.
	capacity int
	dwindow  time.Duration
}

// Limiter returns a Limiter for cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid. It does not contact Redis.
func (s *Store) Limiter(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Limiter{
		store:    s,
		cfg:      cfg,
		prefix:   s.prefix + cfg.Algorithm.code() + ":" + cfg.Name + ":",
		window:   cfg.Window.Microseconds(),
		capacity: cfg.Limit,
		dwindow:  cfg.Window,
	}
	switch cfg.Algorithm {
	case TokenBucket:
		l.p3 = int64(cfg.Burst)
		l.capacity = cfg.Burst
		l.dwindow = refill(cfg)
	case FixedWindow:
		// The phase of the window starts: -Offset mod Window.
		l.p3 = ((-cfg.Offset.Microseconds() % l.window) + l.window) % l.window
	}
	return l, nil
}

// Config returns the Limiter's Config.
func (l *Limiter) Config() Config { return l.cfg }

// Key returns the Redis key that holds key's state:
// prefix + algorithm + ":" + Name + ":" + key, e.g.
// "ratekit:tb:api:{org42}".
func (l *Limiter) Key(key string) string { return l.prefix + key }

// On names key of this Limiter as a member of Store.TakeAll.
func (l *Limiter) On(key string) Member { return Member{l: l, key: key} }

func (l *Limiter) member(key string) member {
	return member{key: l.prefix + key, alg: l.cfg.Algorithm.code(),
		limit: int64(l.cfg.Limit), window: l.window, p: l.p3}
}

// decision turns a script result into this Limiter's Decision.
func (l *Limiter) decision(r result) ratekit.Decision {
	d := ratekit.Decision{
		Allowed:    r.allowed,
		Limit:      l.capacity,
		Remaining:  int(r.remaining),
		Window:     l.dwindow,
		ResetAfter: dur(r.reset),
		Policy:     l.cfg.Name,
	}
	if r.retry < 0 {
		d.RetryAfter = ratekit.Never
	} else {
		d.RetryAfter = dur(r.retry)
	}
	return d
}

func (l *Limiter) one(ctx context.Context, op, key string, n int, now string) (ratekit.Decision, error) {
	rs, _, err := l.store.run(ctx, op, n, now, []member{l.member(key)})
	if err != nil {
		return ratekit.Decision{}, err
	}
	return l.decision(rs[0]), nil
}

// Take admits n units for key at the server's time and takes them, or takes
// nothing and denies, exactly as the embedded algorithm would, edge cases
// included: the package doc says them, and the microsecond resolution. The
// capacity is Limit (Burst for a token bucket).
//
// The error is Redis's (connection, timeout, a key of the wrong type), with
// the zero Decision; ctx bounds the round trip.
func (l *Limiter) Take(ctx context.Context, key string, n int) (ratekit.Decision, error) {
	return l.one(ctx, "t", key, n, "")
}

// Peek reports what Take(ctx, key, n) would decide, Remaining included,
// taking nothing.
func (l *Limiter) Peek(ctx context.Context, key string, n int) (ratekit.Decision, error) {
	return l.one(ctx, "p", key, n, "")
}

// Refund gives back n units an allowed Take took for key, at the server's
// time: for work that did not happen. It never raises capacity above what
// the key would have had without the Take; n <= 0 does nothing.
//
// Refund does not know when the Take was. A window algorithm gives units
// back to the window open at the server's now: if the Take counted in a
// window that has closed since, and the key has opened another, that
// window gets them. The sliding log gives back its oldest live units,
// which frees capacity no sooner than the Take's own would. Use RefundAt
// with the Take's time (from TakeAt) where that matters.
func (l *Limiter) Refund(ctx context.Context, key string, n int) error {
	_, err := l.one(ctx, "r", key, n, "")
	return err
}

// TakeAt is Take at the injected time now instead of the server's TIME.
// It is a hook for tests (decisions at fixed instants, compared with the
// embedded limiters) and for callers who keep one clock themselves:
// replicas whose clocks disagree lose the agreement that the server's time
// gives them. now is truncated to the microsecond and clamped to [1970,
// 2112]; times that go backwards are stale and never admit more. TTLs are
// still counted on the server's clock, from the call.
func (l *Limiter) TakeAt(ctx context.Context, key string, now time.Time, n int) (ratekit.Decision, error) {
	return l.one(ctx, "t", key, n, micros(now))
}

// PeekAt is Peek at the injected time now (see TakeAt).
func (l *Limiter) PeekAt(ctx context.Context, key string, now time.Time, n int) (ratekit.Decision, error) {
	return l.one(ctx, "p", key, n, micros(now))
}

// RefundAt gives back n units that an allowed Take for key took at `at`
// (see TakeAt), with the embedded algorithm's Refund semantics.
func (l *Limiter) RefundAt(ctx context.Context, key string, at time.Time, n int) error {
	_, err := l.one(ctx, "r", key, n, micros(at))
	return err
}

// Reset deletes key's state: the key is fresh again.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.store.rdb.Del(ctx, l.prefix+key).Err(); err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	return nil
}

// refill is a token bucket's Decision.Window, the time to refill Burst from
// empty, Burst·Window/Limit rounded up to the nanosecond as
// tokenbucket.Limiter reports it. The product is formed in 128 bits; the
// quotient is at most MaxRefill, far below 2^63 ns.
func refill(cfg Config) time.Duration {
	hi, lo := bits.Mul64(uint64(cfg.Burst), uint64(cfg.Window))
	q, r := bits.Div64(hi, lo, uint64(cfg.Limit))
	if r > 0 {
		q++
	}
	return time.Duration(q)
}
