package grpclimit_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// benchTiers are the cases: no interceptor (the peer every other case is
// compared with), and the interceptor with 1 and 3 tiers.
var benchTiers = []struct {
	name  string
	tiers int
}{{"none", 0}, {"1tier", 1}, {"3tiers", 3}}

// benchInterceptor returns an Interceptor over n tiers (1 to 3) that admit
// every call, each looking its key up in a ratekit.Keyed as a service
// would, with the default metadata (X-RateLimit and IETF).
func benchInterceptor(tb testing.TB, n int) *grpclimit.Interceptor {
	tb.Helper()
	keyed := func(name string) func(string) ratekit.Limiter {
		k := ratekit.NewKeyed(func(string) ratekit.Limiter {
			return must(tokenbucket.New(tokenbucket.Config{Limit: 1 << 30, Window: time.Second, Burst: 1 << 30, Name: name}))
		}, ratekit.KeyedConfig{})
		return k.Get
	}
	tiers := []grpclimit.Tier{
		{Name: "token", Key: grpclimit.Bearer, Limiter: keyed("token")},
		{Name: "org", Key: grpclimit.Metadata("x-org"), Limiter: keyed("org")},
		{Name: "user", Key: grpclimit.Metadata("x-user"), Limiter: keyed("user")},
	}[:n]
	ic, err := grpclimit.New(grpclimit.Config{Tiers: tiers})
	if err != nil {
		tb.Fatal(err)
	}
	return ic
}

// fieldsOnly stands in for the interceptor's metadata alone: it sends
// the five fields an admitted call of one tier gets by default, with the
// same keys, values of the same lengths, and a Remaining that changes
// call by call as a limiter's does (so that HPACK cannot index those
// fields), and does nothing else.
func fieldsOnly(n *atomic.Int64) metadata.MD {
	rem := strconv.FormatInt(1<<30-1-n.Add(1)%(1<<20), 10)
	return metadata.Pairs(
		"x-ratelimit-limit", "1073741824", "x-ratelimit-remaining", rem, "x-ratelimit-reset", "1",
		"ratelimit-policy", `"token";q=1073741824;w=1`, "ratelimit", `"token";r=`+rem+`;t=1`)
}

// benchClient serves the test service over bufconn, with the interceptor
// of n tiers (none for 0, fieldsOnly for -1), and returns its client.
func benchClient(tb testing.TB, n int) testpb.TestServiceClient {
	tb.Helper()
	var opts []grpc.ServerOption
	if n < 0 {
		var calls atomic.Int64
		opts = append(opts,
			grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				_ = grpc.SetHeader(ctx, fieldsOnly(&calls))
				return h(ctx, req)
			}),
			grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				_ = ss.SetHeader(fieldsOnly(&calls))
				return h(srv, ss)
			}))
	}
	if n > 0 {
		ic := benchInterceptor(tb, n)
		opts = append(opts, grpc.ChainUnaryInterceptor(ic.Unary()), grpc.ChainStreamInterceptor(ic.Stream()))
	}
	return serveBuf(tb, &testService{}, opts)
}

// benchCtx carries the keys of every tier.
func benchCtx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Bearer sk_live_1", "x-org", "acme", "x-user", "u_42")
}

var benchStreamReq = &testpb.StreamingOutputCallRequest{ResponseParameters: make([]*testpb.ResponseParameters, 1)}

// benchCall makes one call of kind: a unary call, or a server-streaming
// call of one response read to its end.
func benchCall(tb testing.TB, ctx context.Context, c testpb.TestServiceClient, kind string) {
	if kind == "unary" {
		if _, err := c.EmptyCall(ctx, &testpb.Empty{}); err != nil {
			tb.Fatal(err)
		}
		return
	}
	s, err := c.StreamingOutputCall(ctx, benchStreamReq)
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := s.Recv(); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkServer measures an admitted call end to end over bufconn, client
// and server in this process, without the interceptor and with it: allocs/op
// and cpu-ns/op (the process's CPU time, which a shared machine blurs less
// than ns/op) include grpc-go's own on both sides, so compare a case with
// none. BenchmarkServerOverhead compares them paired.
func BenchmarkServer(b *testing.B) {
	for _, kind := range []string{"unary", "stream"} {
		for _, tc := range benchTiers {
			b.Run(kind+"/"+tc.name, func(b *testing.B) {
				c, ctx := benchClient(b, tc.tiers), benchCtx()
				benchCall(b, ctx, c, kind) // the connection is up
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					benchCall(b, ctx, c, kind)
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// BenchmarkServerOverhead measures the interceptor's cost per call as a
// paired comparison: two servers over bufconn in this process, one without
// the interceptor and one with it, serve blocks of calls in turn
// (alternating which goes first); each block is timed in wall time and in
// the process's CPU time. It reports the medians per call of each server
// (none-ns/op, with-ns/op, and cpu- of each) and the median of the blocks'
// differences (overhead-ns/op, overhead-cpu-ns/op). Its ns/op column is
// the harness's (both servers): ignore it. The fields case compares a
// server that sends the default metadata of one tier (fieldsOnly) and does
// nothing else: the part of the overhead that is grpc-go's, for sending
// and reading those fields.
func BenchmarkServerOverhead(b *testing.B) {
	const block = 32
	for _, kind := range []string{"unary", "stream"} {
		for _, tc := range append(benchTiers[1:], benchTiers[0]) {
			if tc.tiers == 0 {
				tc.name, tc.tiers = "fields", -1
			}
			b.Run(kind+"/"+tc.name, func(b *testing.B) {
				none, with, ctx := benchClient(b, 0), benchClient(b, tc.tiers), benchCtx()
				benchCall(b, ctx, none, kind)
				benchCall(b, ctx, with, kind)
				run := func(c testpb.TestServiceClient) (wall, cpu float64) {
					start, cpu0 := time.Now(), cpuTime()
					for range block {
						benchCall(b, ctx, c, kind)
					}
					return float64(time.Since(start)) / block, float64(cpuTime()-cpu0) / block
				}
				var nw, ww, nc, wc, dw, dc []float64
				b.ResetTimer()
				for k := 0; k < max(1, b.N/block); k++ {
					var a, o, ac, oc float64
					if k%2 == 0 {
						a, ac = run(none)
						o, oc = run(with)
					} else {
						o, oc = run(with)
						a, ac = run(none)
					}
					nw, ww, nc, wc = append(nw, a), append(ww, o), append(nc, ac), append(wc, oc)
					dw, dc = append(dw, o-a), append(dc, oc-ac)
				}
				b.ReportMetric(median(nw), "none-ns/op")
				b.ReportMetric(median(ww), "with-ns/op")
				b.ReportMetric(median(dw), "overhead-ns/op")
				if cpuTime() > 0 {
					b.ReportMetric(median(nc), "none-cpu-ns/op")
					b.ReportMetric(median(wc), "with-cpu-ns/op")
					b.ReportMetric(median(dc), "overhead-cpu-ns/op")
				}
			})
		}
	}
}

// transportStream stands in for grpc-go's server transport stream, so that
// BenchmarkInterceptor calls the interceptors directly: SetHeader and
// SetTrailer keep nothing.
type transportStream struct{ method string }

func (s *transportStream) Method() string               { return s.method }
func (s *transportStream) SetHeader(metadata.MD) error  { return nil }
func (s *transportStream) SendHeader(metadata.MD) error { return nil }
func (s *transportStream) SetTrailer(metadata.MD) error { return nil }

// serverStream is a grpc.ServerStream whose metadata calls keep nothing;
// the benchmark's handler calls nothing else.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context     { return s.ctx }
func (s *serverStream) SetHeader(metadata.MD) error  { return nil }
func (s *serverStream) SendHeader(metadata.MD) error { return nil }
func (s *serverStream) SetTrailer(metadata.MD)       {}

// BenchmarkInterceptor measures the interceptors alone, called directly
// with no transport: what an admitted call costs them (keys, the take, the
// rate-limit metadata, the settling), without grpc-go's cost around them.
func BenchmarkInterceptor(b *testing.B) {
	md := metadata.Pairs("authorization", "Bearer sk_live_1", "x-org", "acme", "x-user", "u_42")
	for _, tc := range benchTiers[1:] {
		ic := benchInterceptor(b, tc.tiers)
		b.Run("unary/"+tc.name, func(b *testing.B) {
			const method = "/grpc.testing.TestService/EmptyCall"
			ctx := grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(context.Background(), md), &transportStream{method})
			unary, info := ic.Unary(), &grpc.UnaryServerInfo{FullMethod: method}
			handler := func(context.Context, any) (any, error) { return nil, nil }
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if _, err := unary(ctx, nil, info, handler); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
		b.Run("stream/"+tc.name, func(b *testing.B) {
			ss := &serverStream{ctx: metadata.NewIncomingContext(context.Background(), md)}
			stream, info := ic.Stream(), &grpc.StreamServerInfo{FullMethod: "/grpc.testing.TestService/StreamingOutputCall", IsServerStream: true}
			handler := func(any, grpc.ServerStream) error { return nil }
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if err := stream(nil, ss, info, handler); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the process's CPU time per operation since start, in
// all threads (GC and grpc-go's goroutines included), as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 && b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
