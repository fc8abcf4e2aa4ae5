package httpclient

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors returned by Transport.RoundTrip, usually inside a *RetryError or
// *WaitError (and, through http.Client, inside a *url.Error). Match them with
// errors.Is.
var (
	// ErrBodyNotReplayable is the cause of a RetryError when a response
	// calls for a retry but the request's body cannot be sent again: it has
	// a Body and no GetBody. http.NewRequest sets GetBody for bodies from a
	// bytes.Buffer, bytes.Reader or strings.Reader; set it yourself for
	// other bodies that can be replayed.
	ErrBodyNotReplayable = errors.New("httpclient: request body cannot be replayed for a retry (no GetBody)")

	// ErrWaitTooLong is the cause of a RetryError or WaitError when the
	// server asked for a wait longer than Config.MaxWait: a Retry-After, or
	// a quota that only resets later. Rather than sleep that long, or retry
	// sooner than the server asked, the transport gives up at once; the
	// error says how long the server asked for.
	ErrWaitTooLong = errors.New("httpclient: the server asked for a wait longer than MaxWait")

	// ErrRetriesExhausted is the cause of a RetryError when every one of
	// Config.MaxAttempts attempts was answered with a retryable status.
	ErrRetriesExhausted = errors.New("httpclient: attempts exhausted")
)

// RetryError is the error RoundTrip returns when it gives up on a request
// that the server rate-limited (429, or 503 with Retry-After): the attempts
// ran out, the server asked for a wait longer than MaxWait or past the
// context's deadline, the context ended while waiting, or the body could not
// be replayed. It carries the last response's details. The last response's
// body has been read (its first MaxErrorBody bytes are in Body) and closed,
// so that no connection leaks: the caller gets no *http.Response to close.
//
// Err is the cause; Unwrap returns it, so errors.Is(err, ErrRetriesExhausted),
// errors.Is(err, context.DeadlineExceeded) (through
// ratekit.ErrWaitExceedsDeadline) and the like work on the returned error.
type RetryError struct {
	// Method and URL identify the request.
	Method, URL string
	// StatusCode and Status are the last response's (429, "429 Too Many
	// Requests").
	StatusCode int
	Status     string
	// Header is the last response's header, with its rate-limit fields.
	Header http.Header
	// Body holds up to MaxErrorBody bytes of the last response's body, such
	// as a problem+json document.
	Body []byte
	// RetryAfter is the last response's Retry-After delay, 0 if it had none.
	RetryAfter time.Duration
	// Attempts is how many times the request was sent.
	Attempts int
	// Err is why the transport stopped; never nil.
	Err error
}

// MaxErrorBody is how much of the last response's body a RetryError keeps.
const MaxErrorBody = 4 << 10

func (e *RetryError) Error() string {
	s := fmt.Sprintf("httpclient: %s %s: %s after %d attempt", e.Method, e.URL, e.Status, e.Attempts)
	if e.Attempts != 1 {
		s += "s"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (Retry-After %s)", e.RetryAfter)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RetryError) Unwrap() error { return e.Err }

// WaitError is the error RoundTrip returns when a request cannot be sent
// because of what earlier responses from the same host said, before it was
// sent at all: the host asked every client to hold off (Retry-After) or its
// quota is used up until a reset, and that wait is longer than MaxWait or
// outlasts the context's deadline, or the context ended while waiting.
type WaitError struct {
	// Host is the key the pacing state is kept under (the request's host).
	Host string
	// Reason is why the request had to wait.
	Reason Reason
	// Wait is how long it would have had to wait, from when it was asked.
	Wait time.Duration
	// Err is the cause: ErrWaitTooLong, ratekit.ErrWaitExceedsDeadline, or
	// the context's error.
	Err error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("httpclient: %s: %s wait of %s: %v", e.Host, e.Reason, e.Wait, e.Err)
}

// Unwrap returns the cause.
func (e *WaitError) Unwrap() error { return e.Err }

// Reason says why the transport waits before sending a request; the
// OnWait hook and WaitError report it. The zero Reason is none of them.
type Reason uint8

const (
	// ReasonRetryAfter: the response to this request was a 429 (or 503)
	// with Retry-After; the transport waits at least that long, plus
	// jittered backoff, before retrying it.
	ReasonRetryAfter Reason = iota + 1
	// ReasonBackoff: the response was a 429 without Retry-After; the
	// transport waits an exponential backoff with jitter.
	ReasonBackoff
	// ReasonHoldOff: another response from the same host carried a
	// Retry-After that has not passed yet; every request to the host holds
	// off until it has.
	ReasonHoldOff
	// ReasonExhausted: the host's binding policy has nothing remaining
	// until its reset. If a response to another request is on its way, the
	// wait ends when it arrives, if that is sooner, and the request asks
	// again: the response may say the quota is back.
	ReasonExhausted
	// ReasonPacing: little remains of the host's quota, so requests are
	// spread evenly over the time until its reset.
	ReasonPacing
	// ReasonInFlight: the quota the transport assumes after a reset is
	// taken by requests still in flight; the wait lasts until one of them
	// is answered and says how much is left (its duration is reported as
	// 0, unknown).
	ReasonInFlight
)

func (r Reason) String() string {
	switch r {
	case ReasonRetryAfter:
		return "retry-after"
	case ReasonBackoff:
		return "backoff"
	case ReasonHoldOff:
		return "hold-off"
	case ReasonExhausted:
		return "quota-exhausted"
	case ReasonPacing:
		return "pacing"
	case ReasonInFlight:
		return "in-flight"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}
