package grpclimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// RetryConfig configures a Retrier. The zero RetryConfig is valid, and
// retries nothing: no method is idempotent until Idempotent or
// IsIdempotent says so.
type RetryConfig struct {
	// Idempotent lists the full method names ("/pkg.Service/Method") that
	// may be sent again: a retried call may have had effects the first
	// time only if the server refused it after acting, which a ratekit
	// server never does, but another server might.
	Idempotent []string
	// IsIdempotent, if set, reports whether a method may be retried, for
	// methods not in Idempotent.
	IsIdempotent func(fullMethod string) bool

	// MaxAttempts is how many times a call is made at most, the first
	// included; 0 is 5. 1 disables retries.
	MaxAttempts int
	// BaseDelay is the backoff before the first retry; each further retry
	// doubles it, up to MaxWait. 0 is 1 second.
	BaseDelay time.Duration
	// MaxWait caps every single wait; 0 is 60 seconds. A RetryInfo delay
	// longer than MaxWait ends the call at once with ErrWaitTooLong. At
	// most 10 years.
	MaxWait time.Duration

	// Clock is read for the deadline check and its timers do the waiting;
	// nil is the real clock. Tests pass a *clock.Mock.
	Clock clock.Clock
	// Rand is the source of backoff jitter; nil is math/rand/v2's global
	// source. The Retrier serialises its calls to it.
	Rand rand.Source
	// OnWait, if set, is called before each wait, after its timer is armed
	// on Clock: the method, the attempt that was refused (from 1), the wait
	// and the refusal's status. It is called from the calling goroutine,
	// concurrently for concurrent calls.
	OnWait func(fullMethod string, attempt int, wait time.Duration, st *status.Status)

	// MaxReplayBytes bounds the messages a stream keeps so that it can
	// send them again if it is refused (see Retrier.Stream), in bytes of
	// their protobuf encoding, per stream; 0 is DefaultMaxReplayBytes. A
	// stream that sends more before its first response is not retried.
	MaxReplayBytes int
}

// Defaults of RetryConfig.
const (
	DefaultMaxAttempts = 5
	DefaultBaseDelay   = time.Second
	DefaultMaxWait     = 60 * time.Second
	// DefaultMaxReplayBytes is the MaxReplayBytes of 0: 64 KiB.
	DefaultMaxReplayBytes = 64 << 10

	maxMaxWait = 10 * 365 * 24 * time.Hour
)

// Errors a Retrier gives up with, inside a *RetryError. Match them with
// errors.Is.
var (
	// ErrRetriesExhausted: every one of MaxAttempts attempts was refused.
	ErrRetriesExhausted = errors.New("grpclimit: attempts exhausted")
	// ErrWaitTooLong: the server's RetryInfo asked for a wait longer than
	// MaxWait; rather than wait that long or retry sooner, the Retrier
	// gives up at once.
	ErrWaitTooLong = errors.New("grpclimit: the server asked for a wait longer than MaxWait")
	// ErrReplayTooLarge: a refused stream had sent more than
	// MaxReplayBytes (or a message that is not a protobuf message) before
	// the refusal was seen, so its messages were not kept and it cannot be
	// sent again whole.
	ErrReplayTooLarge = errors.New("grpclimit: the refused stream sent more than the Retrier keeps to replay")
)

// RetryError is the error a Retrier returns when it gives up on a call it
// could have retried. GRPCStatus returns the last refusal's status, so
// status.Code(err) is still codes.ResourceExhausted (or Unavailable) and
// status.FromError(err) finds its details; Unwrap returns Err, the cause,
// so errors.Is(err, context.DeadlineExceeded) holds when the wait would
// have outlasted the call's deadline (Err wraps
// ratekit.ErrWaitExceedsDeadline).
type RetryError struct {
	// FullMethod names the call.
	FullMethod string
	// Attempts is how many times the call was made.
	Attempts int
	// RetryDelay is the last refusal's RetryInfo delay, 0 if it had none.
	RetryDelay time.Duration
	// Status is the last refusal's status.
	Status *status.Status
	// Err is why the Retrier stopped: ErrRetriesExhausted, ErrWaitTooLong,
	// ErrReplayTooLarge, ratekit.ErrWaitExceedsDeadline, or the context's
	// error.
	Err error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("grpclimit: %s: %s after %d attempt(s): %v", e.FullMethod, e.Status.Err(), e.Attempts, e.Err)
}

// Unwrap returns the cause.
func (e *RetryError) Unwrap() error { return e.Err }

// GRPCStatus returns the last refusal's status.
func (e *RetryError) GRPCStatus() *status.Status { return e.Status }

// Retrier is a gRPC client interceptor that retries calls a server
// refused for rate: build it with NewRetrier, install Unary with
// grpc.WithChainUnaryInterceptor and Stream with
// grpc.WithChainStreamInterceptor. It is safe for concurrent use.
//
// A call is retried when it ends with codes.ResourceExhausted, or with
// codes.Unavailable carrying a google.rpc.RetryInfo, and its method is
// idempotent (RetryConfig.Idempotent, IsIdempotent); every other outcome,
// and every refusal of a method not marked idempotent, is returned as it
// is. (gRPC also uses ResourceExhausted for a message over its size limit:
// such a call is retried to no avail until the attempts run out.)
//
// The wait before retry k (k = 1, 2, ...) is httpclient's: "equal
// jitter" with e = min(MaxWait, BaseDelay·2^(k-1)), a backoff of e/2 plus
// a uniform random duration in [0, e/2]. A RetryInfo delay is a floor
// with the backoff on top: wait = max(delay, min(delay+backoff, MaxWait)).
// A wait that would end after the call's deadline (read on Clock) is not
// begun: the call fails at once with a *RetryError whose Err wraps
// ratekit.ErrWaitExceedsDeadline. So does a delay over MaxWait
// (ErrWaitTooLong) and the last refused attempt (ErrRetriesExhausted).
type Retrier struct {
	idem        map[string]bool
	isIdem      func(string) bool
	maxAttempts int
	backoff     core.Backoff // BaseDelay and MaxWait, with Rand's jitter
	clk         clock.Clock
	onWait      func(string, int, time.Duration, *status.Status)
	maxReplay   int
}

// NewRetrier returns a Retrier for cfg, or an error wrapping
// ratekit.ErrInvalidConfig for a negative count or duration, or a MaxWait
// over 10 years.
func NewRetrier(cfg RetryConfig) (*Retrier, error) {
	switch {
	case cfg.MaxAttempts < 0:
		return nil, core.Invalid("grpclimit", "MaxAttempts %d is negative", cfg.MaxAttempts)
	case cfg.BaseDelay < 0:
		return nil, core.Invalid("grpclimit", "BaseDelay %s is negative", cfg.BaseDelay)
	case cfg.MaxWait < 0 || cfg.MaxWait > maxMaxWait:
		return nil, core.Invalid("grpclimit", "MaxWait %s is outside [0, %s]", cfg.MaxWait, maxMaxWait)
	case cfg.MaxReplayBytes < 0:
		return nil, core.Invalid("grpclimit", "MaxReplayBytes %d is negative", cfg.MaxReplayBytes)
	}
	r := &Retrier{
		idem: make(map[string]bool, len(cfg.Idempotent)), isIdem: cfg.IsIdempotent,
		maxAttempts: cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		clk:         core.Clock(cfg.Clock),
		onWait:      cfg.OnWait,
		maxReplay:   cmp.Or(cfg.MaxReplayBytes, DefaultMaxReplayBytes),
	}
	r.backoff.Init(cmp.Or(cfg.BaseDelay, DefaultBaseDelay), cmp.Or(cfg.MaxWait, DefaultMaxWait), cfg.Rand)
	for _, m := range cfg.Idempotent {
		r.idem[m] = true
	}
	return r, nil
}

// Unary returns the unary client interceptor.
func (r *Retrier) Unary() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for attempt := 1; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil {
				return nil
			}
			if stop := r.retry(ctx, method, attempt, err, true); stop != nil {
				return stop
			}
		}
	}
}

// retry decides what follows attempt's error err: it returns the error
// to end the call with, or waits and returns nil for another attempt.
// replayable false (a stream that no longer keeps its messages) ends a
// call that would be retried with ErrReplayTooLarge.
func (r *Retrier) retry(ctx context.Context, method string, attempt int, err error, replayable bool) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	delay, hasDelay := retryInfo(st)
	retryable := st.Code() == codes.ResourceExhausted || (st.Code() == codes.Unavailable && hasDelay)
	if !retryable || !r.idempotent(method) {
		return err
	}
	re := &RetryError{FullMethod: method, Attempts: attempt, RetryDelay: delay, Status: st}
	wait := r.backoff.Wait(attempt, delay, hasDelay)
	switch {
	case !replayable:
		re.Err = ErrReplayTooLarge
	case attempt >= r.maxAttempts:
		re.Err = ErrRetriesExhausted
	case hasDelay && delay > r.backoff.Max:
		re.Err = ErrWaitTooLong
	case core.ExceedsDeadline(ctx, r.clk.Now(), wait):
		re.Err = ratekit.ErrWaitExceedsDeadline
	}
	if re.Err != nil {
		return re
	}
	if err := r.sleep(ctx, method, attempt, wait, st); err != nil {
		re.Err = err
		return re
	}
	return nil
}

func (r *Retrier) idempotent(method string) bool {
	return r.idem[method] || (r.isIdem != nil && r.isIdem(method))
}

// retryInfo returns the delay of st's google.rpc.RetryInfo detail, if it
// has a valid, non-negative one.
func retryInfo(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			pd := ri.GetRetryDelay()
			if pd.CheckValid() != nil || pd.GetSeconds() < 0 || pd.GetNanos() < 0 {
				return 0, false
			}
			return pd.AsDuration(), true // saturates past ~292 years
		}
	}
	return 0, false
}

// sleep waits d on the Retrier's clock, or until ctx ends.
func (r *Retrier) sleep(ctx context.Context, method string, attempt int, d time.Duration, st *status.Status) error {
	timer := r.clk.Timer(d)
	defer timer.Stop()
	if r.onWait != nil {
		r.onWait(method, attempt, d, st)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Stream returns the stream client interceptor. It retries a stream of an
// idempotent method that is refused before its first response arrives,
// under the same rules as Unary, whatever its kind: server-streaming,
// client-streaming or bidirectional. To do so it keeps every message the
// caller sends until the first response arrives (the messages themselves:
// grpc-go's ClientStream.SendMsg forbids changing a message once sent),
// and when the refusal is seen it opens the stream again, sends them again
// in order, and closes the sending side if the caller had. A server
// that limits streams refuses them before its handler reads any message
// (grpclimit's interceptor does), so none of them was acted on, and the
// server sees one stream that received every message once. A server that
// refuses later, after its handler read some messages but before any
// response, sees those again: as for Unary, mark a method idempotent only
// if that is harmless.
//
// That is safe only while the messages can all be sent again. A stream
// is no longer retried once a response has arrived (the server has acted
// on what it read), and one that sent more than MaxReplayBytes before
// its refusal was seen (or a message that is not a protobuf message,
// whose size is unknown) stops keeping its messages: if it is then
// refused, the call ends with a *RetryError whose Err is
// ErrReplayTooLarge, never with a retry that would drop messages.
//
// Once a stream that still keeps its messages has ended (refused,
// perhaps), SendMsg keeps the caller's further messages and returns nil,
// rather than io.EOF, so that a caller that stops sending at io.EOF does
// not cut a replayed stream short; they are sent if the stream opens
// again. RecvMsg reports how the stream ended, or retries it; if it does
// not retry, the messages kept are dropped with the stream, as grpc-go
// drops messages sent on a stream that has ended. As grpc-go allows, one
// goroutine may call SendMsg (and then CloseSend) while another calls
// RecvMsg; Header, Trailer and Context are the current attempt's.
func (r *Retrier) Stream() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || !r.idempotent(method) {
			return cs, err
		}
		return &replayStream{cs: cs, r: r, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, opts: opts}, nil
	}
}

// replayStream is a stream that may be opened again, its messages sent
// again, until its first response arrives.
type replayStream struct {
	r        *Retrier
	ctx      context.Context
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	method   string
	streamer grpc.Streamer
	opts     []grpc.CallOption

	mu       sync.Mutex
	cs       grpc.ClientStream // the current attempt's stream
	kept     []any             // the messages sent, while keeping
	size     int               // their encoded bytes
	overflow bool              // they outgrew MaxReplayBytes: none are kept
	closed   bool              // the caller closed the sending side
	received bool              // a response arrived: no more retries
	broken   bool              // the current stream ended: SendMsg only keeps
	attempt  int
}

// keeping reports whether s still keeps its messages to replay them.
func (s *replayStream) keeping() bool { return !s.received && !s.overflow }

// keep adds m to the messages kept, or stops keeping when m would take
// them over MaxReplayBytes. s.mu is held.
func (s *replayStream) keep(m any) {
	if !s.keeping() {
		return
	}
	pm, ok := m.(protoadapt.MessageV1)
	n := 0
	if ok {
		n = proto.Size(protoadapt.MessageV2Of(pm))
	}
	if !ok || n > s.r.maxReplay-s.size {
		s.overflow, s.kept, s.size = true, nil, 0
		return
	}
	s.kept, s.size = append(s.kept, m), s.size+n
}

func (s *replayStream) current() grpc.ClientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cs
}

func (s *replayStream) Header() (metadata.MD, error) { return s.current().Header() }
func (s *replayStream) Trailer() metadata.MD         { return s.current().Trailer() }
func (s *replayStream) Context() context.Context     { return s.current().Context() }

func (s *replayStream) SendMsg(m any) error {
	s.mu.Lock()
	s.keep(m)
	if s.broken && s.keeping() {
		s.mu.Unlock()
		return nil // sent when the stream opens again
	}
	cs := s.cs
	s.mu.Unlock()
	err := cs.SendMsg(m)
	if !errors.Is(err, io.EOF) {
		return err
	}
	// The stream ended (a refusal, perhaps): RecvMsg learns how. Hide the
	// end while m is kept, so that the caller goes on sending.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cs != cs || s.keeping() {
		s.broken = s.broken || s.cs == cs
		return nil
	}
	return err
}

func (s *replayStream) CloseSend() error {
	s.mu.Lock()
	s.closed = true
	cs, broken := s.cs, s.broken
	s.mu.Unlock()
	if broken {
		return nil // the stream is closed when it opens again
	}
	return cs.CloseSend()
}

func (s *replayStream) RecvMsg(m any) error {
	for {
		cs := s.current()
		err := cs.RecvMsg(m)
		s.mu.Lock()
		if err == nil || s.received {
			s.received, s.kept = true, nil
			s.mu.Unlock()
			return err
		}
		s.broken = true
		s.attempt++
		attempt, overflow := s.attempt, s.overflow
		s.mu.Unlock()
		if stop := s.r.retry(s.ctx, s.method, attempt, err, !overflow); stop != nil {
			s.giveUp()
			return stop
		}
		if err := s.reopen(attempt, err); err != nil {
			s.giveUp()
			return err
		}
	}
}

// giveUp ends the retries: the messages kept are dropped.
func (s *replayStream) giveUp() {
	s.mu.Lock()
	s.received, s.kept = true, nil
	s.mu.Unlock()
}

// tooLarge is the error of a stream refused after its messages outgrew
// what it keeps, which retry would otherwise have retried.
func (s *replayStream) tooLarge(attempt int, err error) error {
	st := status.Convert(err)
	delay, _ := retryInfo(st)
	return &RetryError{FullMethod: s.method, Attempts: attempt, RetryDelay: delay, Status: st, Err: ErrReplayTooLarge}
}

// reopen opens the stream again, after retry's wait, and sends the
// messages kept. A new stream that ends at once is left for RecvMsg to
// read its status.
func (s *replayStream) reopen(attempt int, refusal error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow { // the caller sent more during the wait
		return s.tooLarge(attempt, refusal)
	}
	cs, err := s.streamer(s.ctx, s.desc, s.cc, s.method, s.opts...)
	if err != nil {
		return err
	}
	s.cs, s.broken = cs, false
	for _, m := range s.kept {
		if err := cs.SendMsg(m); errors.Is(err, io.EOF) {
			return nil // ended again: RecvMsg reads why
		} else if err != nil {
			return err
		}
	}
	if s.closed {
		return cs.CloseSend()
	}
	return nil
}
