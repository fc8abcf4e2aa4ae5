package core

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff is the retry schedule of httpclient's Transport and grpclimit's
// Retrier (their docs state it for users): before retry k, equal jitter
// over e = min(Max, Base·2^(k-1)), that is e/2 plus a uniform random
// duration in [0, e/2]; a server's delay is a floor with that on top,
// capped at Max. Base and Max are positive and Max is at most 10 years, so
// no sum overflows. Set it up with Init; it is safe for concurrent use and
// must not be copied after first use.
type Backoff struct {
	Base, Max time.Duration

	mu   sync.Mutex
	rand *rand.Rand // nil: math/rand/v2's global source
}

// Init sets the schedule, with src the source of jitter (nil: the global
// source, otherwise its calls are serialised).
func (b *Backoff) Init(base, max time.Duration, src rand.Source) {
	b.Base, b.Max = base, max
	if src != nil {
		b.rand = rand.New(src)
	}
}

// Wait returns the wait before retry number attempt (the attempt that just
// failed), given the server's delay if hasDelay. A delay over Max is
// returned as it is: the caller gives up.
func (b *Backoff) Wait(attempt int, delay time.Duration, hasDelay bool) time.Duration {
	e := b.Base
	for i := 1; i < attempt && e < b.Max; i++ {
		e *= 2 // e < Max <= 10 years before doubling: no overflow
	}
	e = min(e, b.Max)
	wait := e/2 + b.jitter(e/2)
	if !hasDelay {
		return wait
	}
	if delay > b.Max {
		return delay // the caller gives up
	}
	return max(min(delay+wait, b.Max), delay) // both at most 10 years: no overflow
}

// jitter returns a uniform random duration in [0, n].
func (b *Backoff) jitter(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if b.rand == nil {
		return time.Duration(rand.Int64N(int64(n) + 1))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Duration(b.rand.Int64N(int64(n) + 1))
}

// ExceedsDeadline reports whether a wait of d from now ends after ctx's
// deadline (now read on the caller's clock).
func ExceedsDeadline(ctx context.Context, now time.Time, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && deadline.Sub(now) < d
}
