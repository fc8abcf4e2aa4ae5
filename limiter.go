package ratekit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Decision is a limiter's answer to a request for n units at an instant.
//
// On a single limiter it describes that limiter. On a composite (AllOf,
// TakeAll) it describes the binding member: when allowed, the member with the
// least Remaining (ties: the longest ResetAfter); when denied, the member with
// the longest RetryAfter, so that a client which waits that long is not
// refused again by another member for the same reason.
//
// A Decision is a plain value: a denial is a Decision with Allowed false,
// never an error. The zero Decision is a denial with no policy attached.
type Decision struct {
	// Allowed reports whether the units were (or, from Peek, would be) admitted.
	Allowed bool
	// Limit is the binding policy's quota per Window: the burst of a token
	// bucket, the capacity of a concurrency limit.
	Limit int
	// Remaining is how many units the binding policy would still admit at the
	// same instant, after this decision. It is never negative.
	Remaining int
	// Window is the binding policy's window: the length of a fixed or rolling
	// window, the time a token bucket takes to refill Limit from empty, and 0
	// for a concurrency limit.
	Window time.Duration
	// ResetAfter is how long until the binding policy is back at full capacity
	// if nothing more is taken. 0 means it is at full capacity now.
	ResetAfter time.Duration
	// RetryAfter is, on a denial, how long to wait before the same request can
	// be admitted (Never if it can never be); it is 0 on an allowed decision.
	// For a concurrency limit it is an estimate, since units come back when
	// holders release them, not with time.
	RetryAfter time.Duration
	// Policy is the binding policy's configured Name ("" if unnamed).
	Policy string
}

// String formats d for logs, e.g.
// "allowed policy=api limit=60 remaining=59 window=1m0s reset=1s retry=0s".
func (d Decision) String() string {
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	retry := d.RetryAfter.String()
	if d.RetryAfter == Never {
		retry = "never"
	}
	return fmt.Sprintf("%s policy=%q limit=%d remaining=%d window=%s reset=%s retry=%s",
		verdict, d.Policy, d.Limit, d.Remaining, d.Window, d.ResetAfter, retry)
}

// Never is the RetryAfter of a request that can never be admitted: n is
// negative or larger than the limit's capacity. Waiting does not help; Wait
// returns ErrExceedsLimit for such a request at once.
const Never time.Duration = math.MaxInt64

// Errors returned by ratekit and its sub-packages. Match them with errors.Is:
// the errors returned usually wrap them with detail.
var (
	// ErrExceedsLimit is returned by Wait (and the Wait and Acquire methods of
	// the algorithm packages) for a request of more units than the limiter can
	// ever admit at once, or of a negative number of units.
	ErrExceedsLimit = errors.New("ratekit: request exceeds the limit and can never be admitted")

	// ErrInvalidConfig is wrapped by every constructor and Reconfigure method
	// that rejects a configuration: zero or negative limits and windows, and
	// values whose arithmetic would overflow.
	ErrInvalidConfig = errors.New("ratekit: invalid config")

	// ErrInvalidState is wrapped by UnmarshalBinary when the bytes are
	// truncated, corrupt, of another algorithm or of an unknown format version.
	// The limiter is left unchanged when it is returned.
	ErrInvalidState = errors.New("ratekit: invalid limiter state")

	// ErrWaitExceedsDeadline is returned by Wait when the time it would have
	// to wait outlasts the context's deadline. errors.Is reports true for it
	// and context.DeadlineExceeded alike, so callers that handle deadlines
	// need no special case; nothing has been taken when it is returned.
	ErrWaitExceedsDeadline = fmt.Errorf("ratekit: wait would outlast the context deadline: %w", context.DeadlineExceeded)
)

// Limiter is the question every ratekit algorithm answers: may n units pass
// at this instant?
//
// Every method takes the time explicitly, as golang.org/x/time/rate's AllowN
// does, so a limiter is deterministic under test and never reads a clock on
// the hot path. Times may be stale or go backwards: a limiter never admits
// more because of it. Implementations are safe for concurrent use.
//
// A limiter must not be copied after first use, as a sync.Mutex must not
// (New returns a pointer: share that; go vet's copylocks check reports a
// copy). A struct copy shares its original's state or parts of it: a
// composite given both (TakeAll, PeekAll, TakeEach, AllOf) decides them as
// one member listed twice, but anything else is undefined: the copy and
// the original may part and admit twice, or wait for ever for a state the
// other replaced.
//
// n == 0 is always allowed and takes nothing. n < 0, and n larger than the
// limiter can ever admit at once, are denied with RetryAfter Never.
//
// # The zero value
//
// The zero value of every algorithm's limiter (tokenbucket.Limiter,
// fixedwindow.Limiter, rolling.Limiter, slidingwindow.Log and Counter,
// concurrency.Limiter) is usable and never panics: it is a limiter of Limit
// 0, with the zero Config (Config returns it; Allow, AllowN and Wait read
// the real clock). So it admits only n == 0 (Remaining 0) and denies every
// other n with RetryAfter Never, and Wait returns ErrExceedsLimit for n > 0
// at once; Refund does nothing and Idle is true; MarshalBinary encodes a
// fresh state. Reconfigure gives it a configuration, and from then on it is
// the limiter New would have made of it, safely under concurrent use.
// UnmarshalBinary, which keeps the limiter's configuration, has none to
// restore a state into and returns an error wrapping ErrInvalidState
// (concurrency's state, a hold-time estimate, needs none, and is restored).
// The zero value is for a limiter embedded in a struct and configured
// later; New is the way to make one.
type Limiter interface {
	// Take admits n units at now and takes them, or takes nothing and
	// denies. A denial changes no state.
	Take(now time.Time, n int) Decision
	// Refund gives back n units that an allowed Take at `at` took, for work
	// that did not happen. Refunding never raises capacity above what the
	// limiter would have had if the Take had not happened; units taken in a
	// window that has since closed are not given back to the new one, nor
	// are units taken before an UnmarshalBinary given back to the state it
	// restored (each algorithm says how it tells them apart; it may give
	// back less, never more).
	Refund(at time.Time, n int)
	// Peek reports exactly what Take(now, n) would decide, Remaining
	// included, and takes nothing.
	Peek(now time.Time, n int) Decision
}

// Holder is a Limiter whose units stay taken until released rather than
// coming back with time: a concurrency limit. Refund on a Holder is the
// same as Release.
type Holder interface {
	Limiter
	// Release gives back n units taken by an allowed Take.
	Release(n int)
}
