package grpclimit_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestPanicReleases: a handler that panics (recovered by an interceptor
// outside the limiter) gives its concurrency units back, unary and stream.
func TestPanicReleases(t *testing.T) {
	sem := must(concurrency.New(concurrency.Config{Limit: 2}))
	ic := must(grpclimit.New(grpclimit.Config{Tiers: []grpclimit.Tier{{Name: "conc", Limiter: httplimit.Shared(sem)}}}))
	c := serveBuf(t, &testService{}, []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(recoverUnary, ic.Unary()),
		grpc.ChainStreamInterceptor(recoverStream, ic.Stream()),
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "panic", "1")
	for i := range 5 { // more panics than units: each must be released
		if _, _, err := unary(ctx, c, nil); status.Code(err) != codes.Internal {
			t.Fatalf("unary call %d: %v, want Internal from the recovered panic", i, err)
		}
		s, err := c.FullDuplexCall(ctx)
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.Internal {
			t.Fatalf("stream %d: %v, want Internal from the recovered panic", i, err)
		}
	}
	if got := sem.Peek(time.Now(), 0).Remaining; got != 2 {
		t.Errorf("units left after panics = %d, want 2", got)
	}
}

// TestNeverFits: a call that costs more than a tier admits at once is
// InvalidArgument with a QuotaFailure and no RetryInfo or retry-after, and
// charges nothing; a negative cost likewise.
func TestNeverFits(t *testing.T) {
	clk := mockAt(t0)
	tb := must(tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}))
	ic := must(grpclimit.New(grpclimit.Config{
		Tiers: []grpclimit.Tier{{Name: "events", Limiter: httplimit.Shared(tb)}},
		Cost: grpclimit.MethodCost(map[string]int{
			testpb.TestService_UnaryCall_FullMethodName: 11,
			testpb.TestService_EmptyCall_FullMethodName: -1,
		}, 1),
		Clock: clk,
	}))
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())})
	_, trl, err := unary(context.Background(), c, nil)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("call costing 11 of 10: %v, want InvalidArgument", err)
	}
	ri, qf := details(err)
	if ri != nil {
		t.Errorf("RetryInfo %v on a call that can never fit", ri)
	}
	if got := violated(qf); len(got) != 1 || got[0] != "events" {
		t.Errorf("violations %v, want [events]", got)
	}
	wantMD(t, "trailer", trl, map[string]string{"retry-after": "", "x-ratelimit-limit": "10", "x-ratelimit-remaining": "10"})
	var trl2 metadata.MD
	if _, err := c.EmptyCall(context.Background(), &testpb.Empty{}, grpc.Trailer(&trl2)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("call costing -1: %v, want InvalidArgument", err)
	}
	if svc.calls.Load() != 0 || tb.Peek(clk.Now(), 0).Remaining != 10 {
		t.Errorf("handler ran %d times, %d units left; want 0 and 10", svc.calls.Load(), tb.Peek(clk.Now(), 0).Remaining)
	}
}

// TestShadow: refusals are computed and reported but the calls are served.
func TestShadow(t *testing.T) {
	clk := mockAt(t0)
	tb := must(tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1}))
	var refused int
	ic := must(grpclimit.New(grpclimit.Config{
		Tiers:  []grpclimit.Tier{{Name: "t", Limiter: httplimit.Shared(tb)}},
		Shadow: true, Clock: clk,
		OnDecision: func(_ context.Context, _ string, d ratekit.Decision, _ []httplimit.TierDecision) {
			if !d.Allowed {
				refused++
			}
		},
	}))
	svc := &testService{}
	c := serveBuf(t, svc, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())})
	for i := range 3 {
		hdr, _, err := unary(context.Background(), c, nil)
		if err != nil {
			t.Fatalf("shadow call %d: %v", i, err)
		}
		wantMD(t, "header", hdr, map[string]string{"retry-after": "", "x-ratelimit-remaining": "0"})
	}
	if refused != 2 || svc.calls.Load() != 3 {
		t.Errorf("%d would-be refusals, %d served; want 2 and 3", refused, svc.calls.Load())
	}
}

// TestRefund: an admitted call that ends with a code Refund accepts gets
// its units back; another code keeps them charged.
func TestRefund(t *testing.T) {
	clk := mockAt(t0)
	tb := must(tokenbucket.New(tokenbucket.Config{Limit: 5, Window: time.Minute, Burst: 5}))
	ic := must(grpclimit.New(grpclimit.Config{
		Tiers:  []grpclimit.Tier{{Name: "t", Limiter: httplimit.Shared(tb)}},
		Refund: func(c codes.Code) bool { return c == codes.Unavailable },
		Clock:  clk,
	}))
	c := serveBuf(t, &testService{}, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())})
	fail := func(code codes.Code) *testpb.SimpleRequest {
		return &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(code)}}
	}
	_, _, _ = unary(context.Background(), c, fail(codes.Unavailable))
	if got := tb.Peek(clk.Now(), 0).Remaining; got != 5 {
		t.Errorf("after an Unavailable call: %d left, want 5 (refunded)", got)
	}
	_, _, _ = unary(context.Background(), c, fail(codes.Internal))
	if got := tb.Peek(clk.Now(), 0).Remaining; got != 4 {
		t.Errorf("after an Internal call: %d left, want 4", got)
	}
}

// TestFailureTier: Unauthenticated answers from the handler are charged to
// the peer's failure limit; once it is spent, every call from the peer is
// refused with ResourceExhausted before the handler, naming the tier.
func TestFailureTier(t *testing.T) {
	clk := mockAt(t0)
	auth := rolling.Config{Limit: 3, Window: time.Minute}
	fails := ratekit.NewKeyed(func(string) *rolling.Limiter { return must(rolling.New(auth)) }, ratekit.KeyedConfig{})
	ipOf := must(grpclimit.PeerIP(httplimit.IPConfig{}))
	ic := must(grpclimit.New(grpclimit.Config{
		Failure: &grpclimit.FailureTier{Name: "auth", Key: ipOf, Limiter: httplimit.Per(fails.Get)},
		Clock:   clk,
	}))
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())})
	bad := &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Unauthenticated)}}
	for i := range 3 {
		if _, _, err := unary(context.Background(), c, bad); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("bad call %d: %v", i, err)
		}
	}
	_, _, err := unary(context.Background(), c, nil)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("call after 3 failures: %v, want ResourceExhausted", err)
	}
	ri, qf := details(err)
	if got := violated(qf); len(got) != 1 || got[0] != "auth" || ri.GetRetryDelay().AsDuration() != time.Minute {
		t.Errorf("violations %v, RetryInfo %v; want [auth], 1m", got, ri)
	}
	if svc.calls.Load() != 3 {
		t.Errorf("handler ran %d times, want 3", svc.calls.Load())
	}
}

// TestSkipAndHook: Skip exempts a method from every limit; OnDecision sees
// each judged call's method and tiers.
func TestSkipAndHook(t *testing.T) {
	tb := must(tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1}))
	var methods []string
	ic := must(grpclimit.New(grpclimit.Config{
		Tiers: []grpclimit.Tier{{Name: "t", Limiter: httplimit.Shared(tb)}},
		Skip:  func(m string) bool { return m == testpb.TestService_EmptyCall_FullMethodName },
		OnDecision: func(_ context.Context, m string, _ ratekit.Decision, tiers []httplimit.TierDecision) {
			if len(tiers) != 1 || tiers[0].Tier != "t" || !tiers[0].Applied {
				t.Errorf("OnDecision tiers %+v", tiers)
			}
			methods = append(methods, m)
		},
		Clock: mockAt(t0),
	}))
	c := serveBuf(t, &testService{}, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary())})
	for range 3 {
		if _, err := c.EmptyCall(context.Background(), &testpb.Empty{}); err != nil {
			t.Fatalf("skipped method: %v", err)
		}
	}
	_, _, _ = unary(context.Background(), c, nil)
	_, _, _ = unary(context.Background(), c, nil)
	if len(methods) != 2 || methods[0] != testpb.TestService_UnaryCall_FullMethodName {
		t.Errorf("OnDecision saw %v, want UnaryCall twice", methods)
	}
}

// TestNewErrors: bad configurations are errors wrapping ErrInvalidConfig.
func TestNewErrors(t *testing.T) {
	l := httplimit.Shared(must(tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1})))
	for name, cfg := range map[string]grpclimit.Config{
		"no tiers":           {},
		"no limiter":         {Tiers: []grpclimit.Tier{{Name: "a"}}},
		"bad name":           {Tiers: []grpclimit.Tier{{Name: "a b", Limiter: l}}},
		"duplicate":          {Tiers: []grpclimit.Tier{{Name: "a", Limiter: l}, {Name: "a", Limiter: l}}},
		"failure no key":     {Failure: &grpclimit.FailureTier{Name: "f", Limiter: l}},
		"failure no limiter": {Failure: &grpclimit.FailureTier{Name: "f", Key: grpclimit.Bearer}},
		"dialect":            {Tiers: []grpclimit.Tier{{Name: "a", Limiter: l}}, Headers: 1 << 12},
	} {
		if _, err := grpclimit.New(cfg); !errorsIs(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}
