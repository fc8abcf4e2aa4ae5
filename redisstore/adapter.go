package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ratekit/ratekit"
)

// FailurePolicy is what an Adapter decides when Redis does not answer (a
// connection error, a timeout, a server restarting). The zero value is
// FailOpen.
type FailurePolicy uint8

const (
	// FailOpen admits every request that could ever be admitted (0 <= n <=
	// capacity), as if the key were fresh: an outage of Redis does not
	// become an outage of the service, and quotas are not enforced while it
	// lasts. Use AdapterConfig.OnError to see it happen.
	FailOpen FailurePolicy = iota
	// FailClosed denies every request with n > 0, RetryAfter
	// AdapterConfig.RetryAfter: quotas are never exceeded, and nothing is
	// served while Redis is unreachable.
	FailClosed
	// FailFallback decides with AdapterConfig.Fallback, a local embedded
	// limiter (a tokenbucket or rolling.Limiter with this replica's share
	// of the limit, say): quotas hold roughly, per replica, until Redis is
	// back. The fallback sees only the requests Redis did not decide.
	FailFallback
)

func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "FailOpen"
	case FailClosed:
		return "FailClosed"
	case FailFallback:
		return "FailFallback"
	}
	return fmt.Sprintf("FailurePolicy(%d)", uint8(p))
}

// Defaults of an AdapterConfig.
const (
	DefaultTimeout    = 100 * time.Millisecond
	DefaultRetryAfter = time.Second
)

// AdapterConfig configures an Adapter. The zero AdapterConfig fails open
// after DefaultTimeout and uses the server's time.
type AdapterConfig struct {
	// OnFailure is the policy when Redis does not answer.
	OnFailure FailurePolicy
	// Fallback is FailFallback's local limiter; it must be set for
	// FailFallback and is ignored otherwise. It is called with the time the
	// Adapter was called with.
	Fallback ratekit.Limiter
	// Timeout bounds each call to Redis (0 is DefaultTimeout). The
	// go-redis client honours it on the socket only with its Options'
	// ContextTimeoutEnabled set; otherwise its own DialTimeout and
	// ReadTimeout bound a call that hangs.
	Timeout time.Duration
	// RetryAfter is FailClosed's RetryAfter (0 is DefaultRetryAfter).
	RetryAfter time.Duration
	// OnError, if not nil, is called with the key and the error of every
	// call Redis did not answer, whatever the policy, on the caller's
	// goroutine before the Adapter returns: count them, log them, alert.
	OnError func(key string, err error)
	// Cooldown, if positive, makes a failed call mark the Store down for
	// that long: Adapters of the Store with a Cooldown then decide by
	// their policy at once, without waiting on Redis, and report
	// ErrCoolingDown to OnError. Without it every call during an outage
	// waits up to Timeout. The cooldown is timed on the process's
	// monotonic clock, whatever the times passed in.
	Cooldown time.Duration
	// CallerTime passes the time Take, Peek and Refund are called with to
	// Redis (see Limiter.TakeAt) instead of using the server's TIME. Only
	// for tests and single-clock deployments: replicas whose clocks
	// disagree then disagree about windows too.
	CallerTime bool
}

// Adapter is one key of a Redis Limiter as a ratekit.Limiter, so that it
// composes with embedded limiters (ratekit.TakeAll, AllOf, Wait, httplimit)
// wherever a ratekit.Limiter is taken. The interface has no error, so the
// Adapter decides what a failed round trip means by its FailurePolicy.
//
// By default the time passed to Take, Peek and Refund is not used for the
// decision: Redis decides at its own time, the one all replicas share (see
// AdapterConfig.CallerTime); it is passed to the fallback limiter.
//
// Build it with Limiter.For, or Local.For to decide through a Local's
// leases and deny cache. It is safe for concurrent use.
type Adapter struct {
	l   *Limiter
	q   *Local // nil: every call is the Limiter's
	key string
	cfg AdapterConfig
}

var _ ratekit.Limiter = (*Adapter)(nil)

// For returns key of l as a ratekit.Limiter, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid (FailFallback without a
// Fallback, negative durations, an unknown policy). It does not contact
// Redis.
func (l *Limiter) For(key string, cfg AdapterConfig) (*Adapter, error) {
	switch {
	case cfg.OnFailure > FailFallback:
		return nil, invalid("unknown %v", cfg.OnFailure)
	case cfg.OnFailure == FailFallback && cfg.Fallback == nil:
		return nil, invalid("FailFallback needs a Fallback limiter")
	case cfg.Timeout < 0:
		return nil, invalid("Timeout %v is negative", cfg.Timeout)
	case cfg.RetryAfter < 0:
		return nil, invalid("RetryAfter %v is negative", cfg.RetryAfter)
	case cfg.Cooldown < 0:
		return nil, invalid("Cooldown %v is negative", cfg.Cooldown)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	return &Adapter{l: l, key: key, cfg: cfg}, nil
}

// For returns key of q as a ratekit.Limiter, as Limiter.For does, whose
// Take, Peek and Refund are the Local's (TakeAt, PeekAt and RefundAt with
// AdapterConfig.CallerTime): decided from the replica's lease or deny
// cache when they can, else in Redis, and by cfg's FailurePolicy when
// Redis fails. The Adapter keeps no state of its own (Idle reports true);
// the key's lease and denial are the Local's, given back by its Sweep and
// Close. Errors wrap ratekit.ErrInvalidConfig, as Limiter.For's.
func (q *Local) For(key string, cfg AdapterConfig) (*Adapter, error) {
	a, err := q.l.For(key, cfg)
	if err != nil {
		return nil, err
	}
	a.q = q
	return a, nil
}

// Key returns the key the Adapter limits.
func (a *Adapter) Key() string { return a.key }

// Idle reports true: the key's state is in Redis, which expires it, and
// the Adapter keeps none in the process, so a ratekit.Keyed of Adapters
// may drop any of them at any time without changing a decision. (A
// FailFallback Adapter's fallback limiter loses its state with it.)
func (a *Adapter) Idle(time.Time) bool { return true }

// Take is Limiter.Take for the Adapter's key, or, if Redis does not answer
// within the Timeout, the FailurePolicy's decision.
func (a *Adapter) Take(now time.Time, n int) ratekit.Decision {
	return a.decide("t", now, n)
}

// Peek is Limiter.Peek for the Adapter's key, or the FailurePolicy's
// decision (FailFallback: the fallback's Peek).
func (a *Adapter) Peek(now time.Time, n int) ratekit.Decision {
	return a.decide("p", now, n)
}

// Refund is Limiter.Refund for the Adapter's key (RefundAt with
// CallerTime). If Redis does not answer, the error goes to OnError and,
// with FailFallback, the units go back to the fallback: the Take may have
// been its, and a refund never mints capacity there either.
func (a *Adapter) Refund(at time.Time, n int) {
	if _, err := a.call("r", n, at); err != nil {
		a.report(err)
		if a.cfg.OnFailure == FailFallback {
			a.cfg.Fallback.Refund(at, n)
		}
	}
}

// ErrCoolingDown is what an Adapter with a Cooldown reports to OnError for
// the calls it decides by policy without trying Redis, after a failure.
var ErrCoolingDown = errors.New("redisstore: Redis failed recently; deciding by policy during the cooldown")

// call runs op on the Adapter's key at now if CallerTime, else at the
// server's time (see guard), through the Local if there is one.
func (a *Adapter) call(op string, n int, now time.Time) (ratekit.Decision, error) {
	w := when{}
	if a.cfg.CallerTime {
		w = whenAt(now)
	}
	return a.guard(func(ctx context.Context) (ratekit.Decision, error) {
		switch {
		case a.q == nil:
			return a.l.one(ctx, op, a.key, n, w.now)
		case op == "t":
			return a.q.take(ctx, a.key, n, w)
		case op == "p":
			return a.q.peek(ctx, a.key, n, w)
		}
		return ratekit.Decision{}, a.q.refund(ctx, a.key, n, w)
	})
}

// guard runs f within the Timeout, honouring and setting the Store's
// cooldown.
func (a *Adapter) guard(f func(ctx context.Context) (ratekit.Decision, error)) (ratekit.Decision, error) {
	s := a.l.store
	if a.cfg.Cooldown > 0 && sinceStart() < s.downUntil.Load() {
		return ratekit.Decision{}, ErrCoolingDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeout)
	defer cancel()
	d, err := f(ctx)
	if err != nil && a.cfg.Cooldown > 0 {
		s.downUntil.Store(sinceStart() + int64(a.cfg.Cooldown))
	}
	return d, err
}

// processStart anchors sinceStart, a monotonic clock for cooldowns.
var processStart = time.Now()

func sinceStart() int64 { return int64(time.Since(processStart)) }

func (a *Adapter) decide(op string, now time.Time, n int) ratekit.Decision {
	d, err := a.call(op, n, now)
	if err == nil {
		return d
	}
	return a.failed(err, op, now, n)
}

// failed reports err and returns the policy's decision on op ("t" or "p").
func (a *Adapter) failed(err error, op string, now time.Time, n int) ratekit.Decision {
	a.report(err)
	if a.cfg.OnFailure == FailFallback {
		if op == "t" {
			return a.cfg.Fallback.Take(now, n)
		}
		return a.cfg.Fallback.Peek(now, n)
	}
	d := ratekit.Decision{Limit: a.l.capacity, Window: a.l.dwindow, Policy: a.l.cfg.Name}
	switch {
	case n < 0 || n > a.l.capacity:
		d.RetryAfter = ratekit.Never
	case a.cfg.OnFailure == FailOpen || n == 0:
		d.Allowed = true
		d.Remaining = a.l.capacity - n
	default: // FailClosed
		d.RetryAfter = a.cfg.RetryAfter
		d.ResetAfter = a.cfg.RetryAfter
	}
	return d
}

func (a *Adapter) report(err error) {
	if a.cfg.OnError != nil {
		a.cfg.OnError(a.key, err)
	}
}
