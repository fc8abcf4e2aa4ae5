package grpclimit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// t0 is the instant most tests start at.
var t0 = time.Date(2026, 3, 18, 13, 1, 48, 0, time.UTC)

func mockAt(t time.Time) *clock.Mock {
	c := clock.NewMock()
	c.Set(t)
	return c
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// testService is grpc-go's interop TestService: UnaryCall answers with the
// request's ResponseStatus (OK if none); FullDuplexCall echoes every
// message until the client closes its side; EmptyCall answers at once.
// Both panic when the call's metadata has "panic". calls counts the calls
// that reached a handler.
type testService struct {
	testpb.UnimplementedTestServiceServer
	calls atomic.Int64
}

func panics(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md["panic"]) > 0
}

func (s *testService) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	s.calls.Add(1)
	return &testpb.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.calls.Add(1)
	if panics(ctx) {
		panic("handler panic")
	}
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{}, nil
}

func (s *testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	s.calls.Add(1)
	if panics(stream.Context()) {
		panic("stream handler panic")
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// recoverUnary and recoverStream turn a handler's panic into
// codes.Internal, as a recovery interceptor (go-grpc-middleware's) does;
// they sit outside the limiter, so the limiter sees the panic go by.
func recoverUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Errorf(codes.Internal, "panic: %v", p)
		}
	}()
	return h(ctx, req)
}

func recoverStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Errorf(codes.Internal, "panic: %v", p)
		}
	}()
	return h(srv, ss)
}

// serveTCP starts a grpc-go server with opts on a loopback TCP listener
// and returns a client of it, dialled with dopts. Both stop at cleanup.
func serveTCP(tb testing.TB, svc testpb.TestServiceServer, opts []grpc.ServerOption, dopts ...grpc.DialOption) testpb.TestServiceClient {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return serveOn(tb, lis, "passthrough:///"+lis.Addr().String(), svc, opts, dopts...)
}

// serveBuf is serveTCP over an in-memory bufconn listener.
func serveBuf(tb testing.TB, svc testpb.TestServiceServer, opts []grpc.ServerOption, dopts ...grpc.DialOption) testpb.TestServiceClient {
	tb.Helper()
	lis := bufconn.Listen(1 << 20)
	dopts = append(dopts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return lis.DialContext(ctx)
	}))
	return serveOn(tb, lis, "passthrough:///bufnet", svc, opts, dopts...)
}

func serveOn(tb testing.TB, lis net.Listener, target string, svc testpb.TestServiceServer, opts []grpc.ServerOption, dopts ...grpc.DialOption) testpb.TestServiceClient {
	srv := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	dopts = append(dopts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient(target, dopts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// withToken returns ctx carrying "authorization: Bearer tok".
func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// unary makes a UnaryCall and returns its error, header and trailer.
func unary(ctx context.Context, c testpb.TestServiceClient, req *testpb.SimpleRequest, opts ...grpc.CallOption) (hdr, trl metadata.MD, err error) {
	if req == nil {
		req = &testpb.SimpleRequest{}
	}
	_, err = c.UnaryCall(ctx, req, append(opts, grpc.Header(&hdr), grpc.Trailer(&trl))...)
	return hdr, trl, err
}

// details returns the RetryInfo and QuotaFailure details of err's status.
func details(err error) (*errdetails.RetryInfo, *errdetails.QuotaFailure) {
	var ri *errdetails.RetryInfo
	var qf *errdetails.QuotaFailure
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			ri = d
		case *errdetails.QuotaFailure:
			qf = d
		}
	}
	return ri, qf
}

// violated lists the QuotaIds of qf's violations.
func violated(qf *errdetails.QuotaFailure) []string {
	var ids []string
	for _, v := range qf.GetViolations() {
		ids = append(ids, v.GetQuotaId())
	}
	return ids
}

// wantMD fails unless md has exactly these values ("" meaning absent).
func wantMD(tb testing.TB, what string, md metadata.MD, want map[string]string) {
	tb.Helper()
	for k, v := range want {
		got := md[k]
		switch {
		case v == "" && len(got) > 0:
			tb.Errorf("%s %s = %q, want absent", what, k, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			tb.Errorf("%s %s = %q, want %q", what, k, got, v)
		}
	}
}

var _ = fmt.Sprint

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// StreamingOutputCall sends one response per ResponseParameters.
func (s *testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	s.calls.Add(1)
	for range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{}); err != nil {
			return err
		}
	}
	return nil
}

// StreamingInputCall answers with the total size of the payloads it
// received, once the client closes its side.
func (s *testService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	s.calls.Add(1)
	total := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}
