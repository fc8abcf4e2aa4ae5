package httpclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Config configures a Transport. The zero Config is valid: every field has
// a default, listed with it.
type Config struct {
	// Base sends the requests; nil is http.DefaultTransport.
	Base http.RoundTripper

	// Clock is read for every wait and every response's arrival, and its
	// timers do the waiting; nil is the real clock. A clock.Mock, or the
	// real clock inside a testing/synctest bubble, makes tests never sleep.
	Clock clock.Clock

	// Rand is the source of backoff jitter; nil is math/rand/v2's global
	// source. A seeded source (rand.NewPCG) makes waits deterministic. The
	// Transport serialises its calls, so it need not be safe for concurrent
	// use.
	Rand rand.Source

	// MaxAttempts is how many times a request is sent at most, the first
	// time included; 0 is 5. 1 disables retries (pacing still applies).
	MaxAttempts int

	// BaseDelay is the backoff before the first retry; each further retry
	// doubles it, up to MaxWait. 0 is 1 second.
	BaseDelay time.Duration

	// MaxWait caps every single wait the transport makes; 0 is 60 seconds.
	// When the server asks for longer (a Retry-After, or a quota that resets
	// later), the transport gives up at once with ErrWaitTooLong rather than
	// sleep that long or retry sooner than asked. At most 10 years.
	MaxWait time.Duration

	// RetryNonIdempotent allows retrying POST, PATCH and other methods that
	// are not idempotent. Without it they are retried only when the request
	// has an Idempotency-Key (or X-Idempotency-Key) header; otherwise a 429
	// is returned as is. GET, HEAD, OPTIONS, TRACE, PUT and DELETE are
	// always retried.
	RetryNonIdempotent bool

	// PaceBelow is the share of the limit, in percent (0 to 100), at or
	// below which the remaining quota is spread evenly over the time to its
	// reset, instead of sent as fast as callers ask; 0 is 20. A negative
	// value never spreads: requests still stop when nothing remains, and
	// wait for the reset. When the server gives no limit, the remaining
	// quota is always spread.
	PaceBelow int

	// MaxHosts bounds the number of hosts whose pacing state is kept; 0 is
	// 1024. Beyond it, idle states (nothing in flight, no wait ahead) are
	// dropped first, then arbitrary ones, which only loses pacing history.
	MaxHosts int

	// Key returns the key under which a request's pacing state is shared;
	// nil is the request's URL.Host, lower-cased. Return, say, an API
	// token's name when the quota is per token rather than per host. It
	// must be safe for concurrent use.
	Key func(req *http.Request) string

	// OnWait, if set, is called when a request is about to wait: why, and
	// for how long at most (0 for ReasonInFlight, whose length is unknown;
	// a ReasonExhausted wait may end sooner, see Reason). It is
	// called on the request's goroutine, after the wait's timer has been
	// armed on Clock, except for ReasonPacing: the pacer (a token bucket)
	// arms its own timer, so the hook is called just before, with the wait
	// the pacer then foresaw. It must be safe for concurrent use.
	OnWait func(req *http.Request, reason Reason, d time.Duration)

	// OnResponse, if set, is called with every response the base transport
	// returns, retried ones included, before the transport reads or closes
	// its body: for metrics and logs. attempt counts from 1. It must not
	// read or close the body, and must be safe for concurrent use.
	OnResponse func(req *http.Request, resp *http.Response, attempt int)
}

// Config defaults.
const (
	DefaultMaxAttempts = 5
	DefaultBaseDelay   = time.Second
	DefaultMaxWait     = 60 * time.Second
	DefaultPaceBelow   = 20
	DefaultMaxHosts    = 1024

	maxMaxWait = 10 * 365 * 24 * time.Hour
)

// Validate reports whether c is usable: no negative counts or durations,
// MaxWait at most 10 years, PaceBelow at most 100. The error wraps
// ratekit.ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.MaxAttempts < 0:
		return core.Invalid("httpclient", "MaxAttempts %d is negative", c.MaxAttempts)
	case c.BaseDelay < 0:
		return core.Invalid("httpclient", "BaseDelay %s is negative", c.BaseDelay)
	case c.MaxWait < 0 || c.MaxWait > maxMaxWait:
		return core.Invalid("httpclient", "MaxWait %s is outside [0, %s]", c.MaxWait, maxMaxWait)
	case c.PaceBelow > 100:
		return core.Invalid("httpclient", "PaceBelow %d is over 100 percent", c.PaceBelow)
	case c.MaxHosts < 0:
		return core.Invalid("httpclient", "MaxHosts %d is negative", c.MaxHosts)
	}
	return nil
}

// Transport is an http.RoundTripper that lives within other services' rate
// limits. It reads their rate-limit headers in every common dialect (see
// ParseQuotas), paces requests to each host before the quota runs out,
// holds every request to a host off while the host has said to wait, and
// retries 429s (and 503s with Retry-After) no sooner than the server asked.
//
// # Retries
//
// A response is retried if it is a 429, or a 503 with Retry-After, and the
// method may be retried (see Config.RetryNonIdempotent). 401, 403 and every
// other status are returned as they are: a client that retries 401s gets its
// IP blocked. Network errors are returned as they are, too: retrying them is
// a different policy, for a transport under this one.
//
// The wait before retry k (k = 1, 2, ...) uses "equal jitter": with
// e = min(MaxWait, BaseDelay·2^(k-1)), the backoff is e/2 plus a uniform
// random duration in [0, e/2], so waits still grow with k while clients
// spread out. If the response had a Retry-After, that is a floor and the
// backoff is added on top: wait = min(Retry-After + backoff, MaxWait), never
// less than Retry-After, so clients told the same Retry-After do not all
// return at the same instant, and repeated refusals wait longer. A
// Retry-After longer than MaxWait ends the request at once with a
// *RetryError wrapping ErrWaitTooLong.
//
// The request's body is replayed with GetBody. A request whose body cannot
// be replayed (Body set, GetBody nil) that gets a retryable response ends
// with a *RetryError wrapping ErrBodyNotReplayable: the transport cannot
// honour the retry policy for it, and says so rather than hand back a 429
// the caller may not expect to handle.
//
// When the transport gives up, it returns a *RetryError carrying the last
// response's status, header, Retry-After, the first MaxErrorBody bytes of
// its body, and the number of attempts. Every response it does not return,
// retried or given up on, is drained (up to 64 KiB, so the connection can
// be reused) and closed.
//
// # Pacing
//
// State is shared per host (Config.Key) by every goroutine using the
// Transport. A 429 or 503 with Retry-After makes every request to that host
// hold off until the Retry-After has passed, including requests that were
// not refused and requests already waiting for a pacing slot.
//
// The binding policy of each response (ParseQuota: least Remaining) gives a
// bound: at most Remaining more requests until its Reset, less the requests
// still in flight that the server may not have counted yet. Responses can
// overtake each other: a response replaces only the bounds recorded before
// its request was sent, which the server had answered first; all other
// bounds still running apply too, and each request counts against all of
// them. When a budget is at or below PaceBelow percent of its limit,
// requests are spread evenly over the time to its reset, and one more goes
// at that reset to learn what came back; when a budget is empty, requests
// wait for its reset. Once every reset has passed, the transport assumes
// the last limit, less what is in flight, until a response says more. The
// transport thus never sends more than the server said it would accept,
// whatever the server's algorithm (fixed, rolling or sliding windows, token
// buckets), at the price of sending somewhat less than it could against one
// that refills before it is back at full capacity.
//
// # Waiting and contexts
//
// Every wait is on Config.Clock and ends early when the request's context
// does. A wait that would outlast the context's deadline is not begun: the
// request fails at once with an error for which
// errors.Is(err, context.DeadlineExceeded) holds (it wraps
// ratekit.ErrWaitExceedsDeadline). A wait longer than MaxWait fails at once
// with ErrWaitTooLong. Before the first attempt these errors come in a
// *WaitError, after it in a *RetryError.
//
// A Transport is safe for concurrent use. Build it with New; the zero
// Transport works too, with the zero Config's defaults. It must not be
// copied after first use.
type Transport struct {
	once sync.Once // runs configure: in New, or at first use of a zero Transport

	base        http.RoundTripper
	clk         clock.Clock
	maxAttempts int
	backoff     core.Backoff // BaseDelay and MaxWait, with Rand's jitter
	retryAll    bool
	paceBelow   int
	maxHosts    int
	key         func(*http.Request) string
	onWait      func(*http.Request, Reason, time.Duration)
	onResponse  func(*http.Request, *http.Response, int)

	// hosts maps a key to its *host. Lookups, one per request, are
	// lock-free (sync.Map suits keys written once and read many times);
	// mu serialises insertions and evictions, and nhosts counts the keys.
	hosts  sync.Map
	mu     sync.Mutex
	nhosts int
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport configured by cfg, or an error wrapping
// ratekit.ErrInvalidConfig if cfg.Validate fails.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := new(Transport)
	t.once.Do(func() { t.configure(cfg) })
	return t, nil
}

// configure sets t up from a valid cfg.
func (t *Transport) configure(cfg Config) {
	t.base = cfg.Base
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	t.clk = core.Clock(cfg.Clock)
	t.maxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	t.backoff.Init(cmp.Or(cfg.BaseDelay, DefaultBaseDelay), cmp.Or(cfg.MaxWait, DefaultMaxWait), cfg.Rand)
	t.retryAll = cfg.RetryNonIdempotent
	t.paceBelow = cmp.Or(cfg.PaceBelow, DefaultPaceBelow)
	t.maxHosts = cmp.Or(cfg.MaxHosts, DefaultMaxHosts)
	t.key = cfg.Key
	t.onWait = cfg.OnWait
	t.onResponse = cfg.OnResponse
}

// Client returns an http.Client that sends through t.
func (t *Transport) Client() *http.Client { return &http.Client{Transport: t} }

// hostFor returns the pacing state for req, creating it if needed.
func (t *Transport) hostFor(req *http.Request) (string, *host) {
	var key string
	switch {
	case t.key != nil:
		key = t.key(req)
	case req.URL != nil:
		key = strings.ToLower(req.URL.Host)
	}
	if h, ok := t.hosts.Load(key); ok {
		return key, h.(*host)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.hosts.Load(key); ok {
		return key, h.(*host)
	}
	if t.nhosts >= t.maxHosts {
		t.evict()
	}
	h := &host{pace: max(t.paceBelow, 0), clk: t.clk}
	t.hosts.Store(key, h)
	t.nhosts++
	return key, h
}

// evict makes room for one more host: it drops every idle state, and if
// none was idle, arbitrary states (requests holding one finish on it
// unharmed; only its history is lost). t.mu is held.
func (t *Transport) evict() {
	now := t.clk.Now()
	t.hosts.Range(func(k, h any) bool {
		if h.(*host).idle(now) {
			t.hosts.Delete(k)
			t.nhosts--
		}
		return true
	})
	t.hosts.Range(func(k, _ any) bool {
		if t.nhosts < t.maxHosts {
			return false
		}
		t.hosts.Delete(k)
		t.nhosts--
		return true
	})
}

// mayRetry reports whether the method policy allows retrying req.
func (t *Transport) mayRetry(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	if t.retryAll {
		return true
	}
	// As net/http.Transport does: the header's presence marks the request
	// as idempotent, whatever its value.
	_, ok := req.Header["Idempotency-Key"]
	_, xok := req.Header["X-Idempotency-Key"]
	return ok || xok
}

// RoundTrip sends req, pacing and retrying it as the Transport's doc says.
// It returns either a response (any status the transport does not retry, or
// a retryable one it may not retry) or an error; never both.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.once.Do(func() { t.configure(Config{}) }) // a zero Transport: the defaults
	ctx := req.Context()
	key, h := t.hostFor(req)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var last *RetryError // the last retryable response, once there is one
	for attempt := 1; ; attempt++ {
		sent, err := t.admit(ctx, req, key, h)
		if err != nil {
			if attempt == 1 {
				if req.Body != nil {
					req.Body.Close() // RoundTrip must close it, even on error
				}
				return nil, err
			}
			last.Err = err
			return nil, last
		}
		send := req
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				h.record(sent, t.clk.Now(), -1, Quota{}, false)
				last.Err = fmt.Errorf("httpclient: GetBody: %w", err)
				return nil, last
			}
			send = new(http.Request)
			*send = *req
			send.Body = body
		}
		resp, err := t.base.RoundTrip(send)
		now := t.clk.Now()
		if err != nil {
			h.record(sent, now, -1, Quota{}, false)
			return nil, err
		}
		q, hasQuota := ParseQuota(resp.Header, now)
		retryAfter, hasRA := ParseRetryAfter(resp.Header, now)
		retryable := resp.StatusCode == http.StatusTooManyRequests ||
			(resp.StatusCode == http.StatusServiceUnavailable && hasRA)
		holdOff := time.Duration(-1)
		if retryable && hasRA {
			holdOff = retryAfter
		}
		h.record(sent, now, holdOff, q, hasQuota)
		if t.onResponse != nil {
			t.onResponse(req, resp, attempt)
		}
		if !retryable || !t.mayRetry(req) {
			return resp, nil
		}

		last = &RetryError{
			Method: req.Method, StatusCode: resp.StatusCode, Status: resp.Status,
			Header: resp.Header, RetryAfter: retryAfter, Attempts: attempt,
		}
		if req.URL != nil {
			last.URL = req.URL.Redacted()
		}
		wait, reason := t.backoff.Wait(attempt, retryAfter, hasRA), ReasonBackoff
		if hasRA {
			reason = ReasonRetryAfter
		}
		switch {
		case attempt >= t.maxAttempts:
			last.Err = ErrRetriesExhausted
		case !replayable:
			last.Err = ErrBodyNotReplayable
		case hasRA && retryAfter > t.backoff.Max:
			last.Err = ErrWaitTooLong
		case core.ExceedsDeadline(ctx, now, wait):
			last.Err = ratekit.ErrWaitExceedsDeadline
		}
		last.Body = drain(resp.Body, last.Err != nil)
		if last.Err != nil {
			return nil, last
		}
		if err := t.sleep(ctx, req, reason, wait, nil); err != nil {
			last.Err = err
			return nil, last
		}
	}
}

// drainLimit bounds how much of a retried response's body is read so its
// connection can be reused; a longer body is closed unread.
const drainLimit = 64 << 10

// drain reads and closes a response body that will not be returned. If keep
// is set it returns the first MaxErrorBody bytes, for a RetryError.
func drain(body io.ReadCloser, keep bool) []byte {
	if body == nil {
		return nil
	}
	defer body.Close()
	var kept []byte
	if keep {
		kept, _ = io.ReadAll(io.LimitReader(body, MaxErrorBody))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	return kept
}

// admit waits until h lets req go, counts it as sent and returns the epoch
// it was sent at. Every wait it makes is one the server asked for: a
// hold-off, a reset, a pacing slot, or a response to a request in flight.
func (t *Transport) admit(ctx context.Context, req *http.Request, key string, h *host) (uint64, error) {
	pending := false // took a pacing slot; the request must send or cancel
	for {
		if err := ctx.Err(); err != nil {
			if pending {
				h.cancel()
			}
			return 0, err
		}
		now := t.clk.Now()
		// The longest wait this request may make: MaxWait, or less if the
		// context's deadline comes first.
		limit := t.backoff.Max
		deadline, hasDeadline := ctx.Deadline()
		if hasDeadline {
			limit = max(min(limit, deadline.Sub(now)), 0)
		}
		var v verdict
		if pending {
			// The slot has come; a Retry-After may have arrived meanwhile.
			wait, epoch := h.send(now)
			if wait == 0 {
				return epoch, nil
			}
			v = verdict{wait: wait, reason: ReasonHoldOff}
		} else {
			v = h.admit(now)
		}
		switch {
		case v.paced:
			pending = true
			if err := t.pace(ctx, req, now, limit, v.pacer); err != nil {
				h.cancel()
				return 0, &WaitError{Host: key, Reason: ReasonPacing, Wait: err.wait, Err: err.err}
			}
			continue
		case v.admitted:
			return v.epoch, nil
		case v.reason == ReasonInFlight:
			if t.onWait != nil {
				t.onWait(req, ReasonInFlight, 0)
			}
			select {
			case <-ctx.Done():
				return 0, &WaitError{Host: key, Reason: ReasonInFlight, Err: ctx.Err()}
			case <-v.changed:
			}
			continue
		case v.wait > limit:
			if pending {
				h.cancel()
			}
			err := ErrWaitTooLong
			if v.wait <= t.backoff.Max {
				err = ratekit.ErrWaitExceedsDeadline
			}
			return 0, &WaitError{Host: key, Reason: v.reason, Wait: v.wait, Err: err}
		}
		if err := t.sleep(ctx, req, v.reason, v.wait, v.changed); err != nil {
			if pending {
				h.cancel()
			}
			return 0, &WaitError{Host: key, Reason: v.reason, Wait: v.wait, Err: err}
		}
	}
}

// paceError is why pace failed, and the wait it would have made.
type paceError struct {
	wait time.Duration
	err  error
}

// pace takes a slot from the host's pacer, sleeping until it comes, for at
// most limit (MaxWait, or less if ctx's deadline is sooner). The pacer's
// Wait reserves slots in the order requests ask and refuses at once, taking
// nothing, a slot past its context's deadline; the deadline it is given is
// the sooner of ctx's and now+MaxWait, and a refusal is reported as
// ErrWaitTooLong if MaxWait was the sooner.
func (t *Transport) pace(ctx context.Context, req *http.Request, now time.Time, limit time.Duration, pacer *tokenbucket.Limiter) *paceError {
	d := pacer.Peek(now, 1).RetryAfter // what the wait will be, unless others reserve first
	if d > limit {
		return &paceError{d, t.tooLong(ctx, now)}
	}
	if d > 0 && t.onWait != nil {
		t.onWait(req, ReasonPacing, d)
	}
	wctx := ctx
	if deadline, ok := ctx.Deadline(); !ok || deadline.Sub(now) > t.backoff.Max {
		var cancel context.CancelFunc
		wctx, cancel = t.clk.WithDeadline(ctx, now.Add(t.backoff.Max))
		defer cancel()
	}
	if _, err := pacer.Wait(wctx, 1); err != nil {
		if errors.Is(err, ratekit.ErrWaitExceedsDeadline) {
			return &paceError{d, t.tooLong(ctx, now)}
		}
		if ctx.Err() == nil && wctx.Err() != nil {
			err = ErrWaitTooLong // only the MaxWait deadline ended the wait
		}
		return &paceError{d, err}
	}
	return nil
}

// tooLong returns the error for a wait that outlasts the limit at now:
// ErrWaitExceedsDeadline if ctx's deadline is what it outlasts, else
// ErrWaitTooLong.
func (t *Transport) tooLong(ctx context.Context, now time.Time) error {
	if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) <= t.backoff.Max {
		return ratekit.ErrWaitExceedsDeadline
	}
	return ErrWaitTooLong
}

// sleep waits d on the transport's clock, or until ctx ends, or until
// changed (if not nil) is closed.
func (t *Transport) sleep(ctx context.Context, req *http.Request, reason Reason, d time.Duration, changed <-chan struct{}) error {
	timer := t.clk.Timer(d)
	defer timer.Stop()
	if t.onWait != nil {
		t.onWait(req, reason, d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	case <-changed:
		return nil
	}
}
