package grpclimit_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// waits records a Retrier's waits and passes each on the mock clock that
// both the client and the server read, so that nothing sleeps.
type waits struct {
	mu  sync.Mutex
	clk *clock.Mock
	got []time.Duration
}

func (w *waits) onWait(_ string, _ int, d time.Duration, _ *status.Status) {
	w.mu.Lock()
	w.got = append(w.got, d)
	w.mu.Unlock()
	w.clk.Add(d) // the timer is armed: this fires it
}

// TestBothInterceptors: the Retrier in front of a client, the mail API's
// interceptor on the server, one mock clock. The 61st call with a test key
// is refused with a RetryInfo of 54 s; the Retrier waits at least that
// (plus equal jitter) and the retry is admitted. A method not marked
// idempotent is refused once and returned as it is.
func TestBothInterceptors(t *testing.T) {
	clk := mockAt(time.Now()) // the call's deadline is real: keep the clocks close
	ic := newMailAPI(t, grpclimit.Config{Clock: clk})
	w := &waits{clk: clk}
	rt := must(grpclimit.NewRetrier(grpclimit.RetryConfig{
		Idempotent: []string{testpb.TestService_UnaryCall_FullMethodName},
		Clock:      clk, Rand: rand.NewPCG(1, 2), OnWait: w.onWait,
	}))
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())},
		grpc.WithChainUnaryInterceptor(rt.Unary()))
	ctx := withToken(context.Background(), "sk_test_1")
	for i := range 60 {
		if _, _, err := unary(ctx, c, nil); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		clk.Add(100 * time.Millisecond)
	}
	if _, _, err := unary(ctx, c, nil); err != nil {
		t.Fatalf("61st call through the Retrier: %v", err)
	}
	if len(w.got) != 1 || w.got[0] < 54*time.Second || w.got[0] > 54*time.Second+time.Second {
		t.Errorf("waits %v, want one in [54s, 55s] (RetryInfo plus jitter of a 1 s base)", w.got)
	}
	if n := svc.calls.Load(); n != 61 {
		t.Errorf("handler ran %d times, want 61", n)
	}

	// EmptyCall is not idempotent here: refused once, returned as is.
	for svc.calls.Load() < 120 {
		if _, err := c.EmptyCall(ctx, &testpb.Empty{}); err != nil {
			break
		}
	}
	before := len(w.got)
	_, err := c.EmptyCall(ctx, &testpb.Empty{})
	if status.Code(err) != codes.ResourceExhausted || len(w.got) != before {
		t.Errorf("non-idempotent refusal: %v after %d waits, want ResourceExhausted and no wait", err, len(w.got)-before)
	}
	var re *grpclimit.RetryError
	if errors.As(err, &re) {
		t.Errorf("non-idempotent refusal wrapped in %v, want the status as is", re)
	}
}

// TestDeadlineShorterThanRetryInfo: a refusal whose RetryInfo outlasts the
// call's deadline fails at once, without waiting or calling again, with an
// error that is both DeadlineExceeded (errors.Is) and the server's
// ResourceExhausted (status.Code) with its details.
func TestDeadlineShorterThanRetryInfo(t *testing.T) {
	clk := mockAt(time.Now())
	ic := newMailAPI(t, grpclimit.Config{Clock: clk})
	w := &waits{clk: clk}
	rt := must(grpclimit.NewRetrier(grpclimit.RetryConfig{
		Idempotent: []string{testpb.TestService_UnaryCall_FullMethodName},
		Clock:      clk, OnWait: w.onWait,
	}))
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())},
		grpc.WithChainUnaryInterceptor(rt.Unary()))
	ctx := withToken(context.Background(), "sk_test_1")
	for range 60 {
		if _, _, err := unary(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second) // RetryInfo will say 60 s
	defer cancel()
	_, _, err := unary(dctx, c, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ratekit.ErrWaitExceedsDeadline) {
		t.Errorf("error %v, want one wrapping ErrWaitExceedsDeadline", err)
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("status.Code = %v, want ResourceExhausted", status.Code(err))
	}
	if ri, _ := details(err); ri.GetRetryDelay().AsDuration() != time.Minute {
		t.Errorf("RetryInfo through the error: %v, want 1m", ri)
	}
	var re *grpclimit.RetryError
	if !errors.As(err, &re) || re.Attempts != 1 || re.RetryDelay != time.Minute {
		t.Errorf("RetryError %+v, want 1 attempt and a 1m delay", re)
	}
	if len(w.got) != 0 || svc.calls.Load() != 60 {
		t.Errorf("%d waits, %d handler calls; want 0 and 60", len(w.got), svc.calls.Load())
	}
}

// refusing is an invoker that answers each call with the next of errs
// (nil once they run out) and counts the calls.
type refusing struct {
	errs  []error
	calls int
}

func (r *refusing) invoke(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
	r.calls++
	if r.calls <= len(r.errs) {
		return r.errs[r.calls-1]
	}
	return nil
}

func exhausted(delay time.Duration, code codes.Code) error {
	st := status.New(code, "slow down")
	if delay >= 0 {
		st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	}
	return st.Err()
}

const method = "/svc/Get"

// TestRetrierBackoff: without RetryInfo the waits are equal jitter over a
// doubling base (e/2 + [0, e/2]); with it, the delay is a floor; attempts
// are capped, and MaxWait turns a longer RetryInfo into ErrWaitTooLong.
func TestRetrierBackoff(t *testing.T) {
	call := func(cfg grpclimit.RetryConfig, errs ...error) ([]time.Duration, int, error) {
		clk := mockAt(t0)
		w := &waits{clk: clk}
		cfg.Clock, cfg.OnWait, cfg.Idempotent = clk, w.onWait, []string{method}
		if cfg.Rand == nil {
			cfg.Rand = rand.NewPCG(7, 7)
		}
		r := &refusing{errs: errs}
		err := must(grpclimit.NewRetrier(cfg)).Unary()(context.Background(), method, nil, nil, nil, r.invoke)
		return w.got, r.calls, err
	}
	noRI := exhausted(-1, codes.ResourceExhausted)
	got, calls, err := call(grpclimit.RetryConfig{BaseDelay: time.Second}, noRI, noRI, noRI, noRI)
	if err != nil || calls != 5 || len(got) != 4 {
		t.Fatalf("4 refusals then success: err %v, %d calls, waits %v", err, calls, got)
	}
	for k, d := range got {
		e := time.Second << k
		if d < e/2 || d > e {
			t.Errorf("wait before retry %d = %v, want within [%v, %v]", k+1, d, e/2, e)
		}
	}

	got, calls, err = call(grpclimit.RetryConfig{MaxAttempts: 3}, noRI, noRI, noRI, noRI)
	var re *grpclimit.RetryError
	if !errors.Is(err, grpclimit.ErrRetriesExhausted) || calls != 3 || len(got) != 2 || !errors.As(err, &re) || re.Attempts != 3 {
		t.Errorf("MaxAttempts 3: err %v, %d calls, %d waits", err, calls, len(got))
	}

	got, _, err = call(grpclimit.RetryConfig{}, exhausted(10*time.Second, codes.ResourceExhausted))
	if err != nil || len(got) != 1 || got[0] < 10*time.Second+500*time.Millisecond || got[0] > 11*time.Second {
		t.Errorf("RetryInfo 10s: err %v, waits %v, want one in [10.5s, 11s]", err, got)
	}

	_, calls, err = call(grpclimit.RetryConfig{MaxWait: 5 * time.Second}, exhausted(10*time.Second, codes.ResourceExhausted))
	if !errors.Is(err, grpclimit.ErrWaitTooLong) || calls != 1 {
		t.Errorf("RetryInfo over MaxWait: err %v after %d calls, want ErrWaitTooLong after 1", err, calls)
	}

	// Unavailable is retried only with a RetryInfo; other codes never.
	_, calls, err = call(grpclimit.RetryConfig{}, exhausted(time.Second, codes.Unavailable))
	if err != nil || calls != 2 {
		t.Errorf("Unavailable with RetryInfo: err %v after %d calls, want success after 2", err, calls)
	}
	for _, e := range []error{exhausted(-1, codes.Unavailable), exhausted(time.Second, codes.InvalidArgument), errors.New("not a status")} {
		_, calls, err = call(grpclimit.RetryConfig{}, e)
		if err != e || calls != 1 {
			t.Errorf("%v: returned %v after %d calls, want it as is after 1", e, err, calls)
		}
	}
}

// TestRetrierContextEnds: a context cancelled during the wait ends it.
func TestRetrierContextEnds(t *testing.T) {
	clk := mockAt(t0)
	ctx, cancel := context.WithCancel(context.Background())
	r := must(grpclimit.NewRetrier(grpclimit.RetryConfig{
		Idempotent: []string{method}, Clock: clk,
		OnWait: func(string, int, time.Duration, *status.Status) { cancel() },
	}))
	inv := &refusing{errs: []error{exhausted(time.Second, codes.ResourceExhausted)}}
	err := r.Unary()(ctx, method, nil, nil, nil, inv.invoke)
	if !errors.Is(err, context.Canceled) || inv.calls != 1 {
		t.Errorf("cancelled wait: %v after %d calls", err, inv.calls)
	}
}

// TestNewRetrierErrors: bad values are ErrInvalidConfig.
func TestNewRetrierErrors(t *testing.T) {
	for _, cfg := range []grpclimit.RetryConfig{
		{MaxAttempts: -1}, {BaseDelay: -1}, {MaxWait: -1}, {MaxWait: 11 * 365 * 24 * time.Hour},
	} {
		if _, err := grpclimit.NewRetrier(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("NewRetrier(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// TestRetrierStream: a server-streaming call refused when it opens is
// opened again after the RetryInfo delay, its request replayed, and the
// caller reads every response; a stream of a method not marked idempotent
// is not retried.
func TestRetrierStream(t *testing.T) {
	clk := mockAt(time.Now())
	tb := must(tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Minute, Burst: 1}))
	ic := must(grpclimit.New(grpclimit.Config{Tiers: []grpclimit.Tier{{Name: "t", Limiter: httplimit.Shared(tb)}}, Clock: clk}))
	w := &waits{clk: clk}
	rt := must(grpclimit.NewRetrier(grpclimit.RetryConfig{
		Idempotent: []string{testpb.TestService_StreamingOutputCall_FullMethodName},
		Clock:      clk, Rand: rand.NewPCG(1, 1), OnWait: w.onWait,
	}))
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainStreamInterceptor(ic.Stream())}, grpc.WithChainStreamInterceptor(rt.Stream()))
	req := &testpb.StreamingOutputCallRequest{ResponseParameters: make([]*testpb.ResponseParameters, 3)}
	read := func() (int, error) {
		s, err := c.StreamingOutputCall(context.Background(), req)
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			if _, err := s.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				return n, err
			}
			n++
		}
	}
	for i := range 2 {
		if n, err := read(); n != 3 || err != nil {
			t.Fatalf("stream %d: %d responses, %v; want 3, nil", i+1, n, err)
		}
	}
	if len(w.got) != 1 || w.got[0] < time.Minute || svc.calls.Load() != 2 {
		t.Errorf("waits %v, %d streams served; want one wait of at least 1m, 2", w.got, svc.calls.Load())
	}

	s, err := c.FullDuplexCall(context.Background())
	if err == nil {
		_ = s.Send(&testpb.StreamingOutputCallRequest{})
		_, err = s.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted || len(w.got) != 1 {
		t.Errorf("refused stream of a method not idempotent: %v after %d waits, want ResourceExhausted and no retry", err, len(w.got)-1)
	}
}
