package grpclimit_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/benbjohnson/clock"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// Example limits each API token to 2 calls a minute on grpc-go's test
// service, served in memory (bufconn), and shows what a client sees: the
// rate-limit fields in the headers of an admitted call, and a refusal's
// status, RetryInfo, QuotaFailure and trailers. A mock clock fixes the
// output.
func Example() {
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 3, 18, 13, 1, 23, 0, time.UTC))
	perToken := tokenbucket.Config{Limit: 2, Window: time.Minute, Burst: 2}
	tokens := ratekit.NewKeyed(func(string) *tokenbucket.Limiter {
		l, _ := tokenbucket.New(perToken) // a valid constant: New cannot fail
		return l
	}, ratekit.KeyedConfig{MaxKeys: 100_000})
	ic, err := grpclimit.New(grpclimit.Config{
		Tiers: []grpclimit.Tier{{Name: "token", Key: grpclimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Clock: clk,
	})
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(ic.Unary()), grpc.ChainStreamInterceptor(ic.Stream()))
	testpb.RegisterTestServiceServer(srv, &testService{})
	lis := bufconn.Listen(1 << 20)
	go srv.Serve(lis)
	defer srv.Stop()
	cc, _ := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	defer cc.Close()
	client := testpb.NewTestServiceClient(cc)

	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer sk_live_1")
	for range 3 {
		var hdr, trl metadata.MD
		_, err := client.EmptyCall(ctx, &testpb.Empty{}, grpc.Header(&hdr), grpc.Trailer(&trl))
		if err == nil {
			fmt.Println("OK", hdr["x-ratelimit-remaining"], hdr["ratelimit"])
			continue
		}
		st := status.Convert(err)
		fmt.Println(st.Code(), st.Message())
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.RetryInfo:
				fmt.Println("  retry in", d.GetRetryDelay().AsDuration())
			case *errdetails.QuotaFailure:
				fmt.Println("  violated", d.GetViolations()[0].GetSubject())
			}
		}
		fmt.Println("  trailers", trl["retry-after"], trl["ratelimit"])
	}
	// Output:
	// OK [1] ["token";r=1;t=30]
	// OK [0] ["token";r=0;t=60]
	// ResourceExhausted Too many requests for policy "token". Retry in 30 seconds.
	//   retry in 30s
	//   violated policy:token
	//   trailers [30] ["token";r=0;t=30]
}
