package grpclimit_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	"github.com/ratekit/ratekit/slidingwindow"
)

// apiKeys are the mail API's keys and the org each belongs to: the org's
// 600 calls per sliding minute are shared by all its keys, test keys at
// 10% (60).
var apiKeys = map[string]struct {
	org  string
	test bool
}{
	"sk_live_1": {org: "acme"}, "sk_live_2": {org: "acme"},
	"sk_test_1": {org: "acme", test: true},
}

func newMailAPI(tb testing.TB, cfg grpclimit.Config) *grpclimit.Interceptor {
	tb.Helper()
	live := slidingwindow.Config{Limit: 600, Window: time.Minute, Name: "org"}
	test := slidingwindow.Config{Limit: 60, Window: time.Minute, Name: "org"}
	orgs := ratekit.NewKeyed(func(org string) *slidingwindow.Log {
		if strings.HasSuffix(org, "/test") {
			return must(slidingwindow.NewLog(test))
		}
		return must(slidingwindow.NewLog(live))
	}, ratekit.KeyedConfig{MaxKeys: 1000})
	orgOf := func(ctx context.Context, method string) (string, bool) {
		tok, _ := grpclimit.Bearer(ctx, method)
		k, found := apiKeys[tok]
		if k.test {
			return k.org + "/test", found
		}
		return k.org, found
	}
	cfg.Tiers = append([]grpclimit.Tier{{Name: "org", Key: orgOf, Missing: httplimit.MissingReject,
		Limiter: httplimit.Per(orgs.Get), Detail: "Too many requests for this organization."}}, cfg.Tiers...)
	return must(grpclimit.New(cfg))
}

// TestMailAPI: 60 calls a minute with a test key, 600 with live keys (the
// org's budget shared by both live keys); the 61st test call is refused
// with ResourceExhausted, a RetryInfo of when the first call leaves the
// sliding minute, a QuotaFailure naming the org tier, and the fields in
// trailers; admitted calls carry them in headers.
func TestMailAPI(t *testing.T) {
	clk := mockAt(t0)
	ic := newMailAPI(t, grpclimit.Config{Clock: clk})
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainUnaryInterceptor(ic.Unary()), grpc.ChainStreamInterceptor(ic.Stream())})
	ctx := context.Background()

	test := withToken(ctx, "sk_test_1")
	for i := range 60 {
		hdr, _, err := unary(test, c, nil)
		if err != nil {
			t.Fatalf("test call %d: %v", i+1, err)
		}
		wantMD(t, "header", hdr, map[string]string{
			"x-ratelimit-limit": "60", "x-ratelimit-remaining": strconv.Itoa(59 - i),
			"ratelimit-policy": `"org";q=60;w=60`, "retry-after": "",
		})
		clk.Add(100 * time.Millisecond)
	}
	// 6 s after the first call: it leaves the window 54 s from now.
	hdr, trl, err := unary(test, c, nil)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("61st test call: %v, want ResourceExhausted", err)
	}
	ri, qf := details(err)
	if got := ri.GetRetryDelay().AsDuration(); got != 54*time.Second {
		t.Errorf("RetryInfo delay = %v, want 54s", got)
	}
	if got := violated(qf); len(got) != 1 || got[0] != "org" {
		t.Errorf("QuotaFailure violations = %v, want [org]", got)
	}
	if s := status.Convert(err).Message(); !strings.HasPrefix(s, "Too many requests for this organization. Retry in 54 seconds") {
		t.Errorf("message %q", s)
	}
	if len(hdr["x-ratelimit-limit"]) != 0 {
		t.Errorf("refusal headers %v, want the fields in trailers only", hdr)
	}
	wantMD(t, "trailer", trl, map[string]string{
		"retry-after": "54", "x-ratelimit-limit": "60", "x-ratelimit-remaining": "0",
		"x-ratelimit-reset": "54", "ratelimit": `"org";r=0;t=54`,
	})
	if n := svc.calls.Load(); n != 60 {
		t.Errorf("handler ran %d times, want 60", n)
	}

	// Live keys share the org's 600, apart from the test keys' 60.
	for i := range 600 {
		tok := "sk_live_1"
		if i%2 == 1 {
			tok = "sk_live_2"
		}
		if _, _, err := unary(withToken(ctx, tok), c, nil); err != nil {
			t.Fatalf("live call %d: %v", i+1, err)
		}
	}
	if _, _, err := unary(withToken(ctx, "sk_live_2"), c, nil); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("601st live call: %v, want ResourceExhausted", err)
	}

	// The test key's window slides: 54 s on, one call leaves it.
	clk.Add(54 * time.Second)
	if _, _, err := unary(test, c, nil); err != nil {
		t.Errorf("test call after the first left the window: %v", err)
	}
	if _, _, err := unary(test, c, nil); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("second test call after one left: %v, want ResourceExhausted", err)
	}

	// No key at all: Unauthenticated, before any tier is charged.
	if _, _, err := unary(ctx, c, nil); status.Code(err) != codes.Unauthenticated {
		t.Errorf("call without a token: %v, want Unauthenticated", err)
	}
}

// TestSanity: Sanity's 25 mutations per second per IP and 100 concurrent
// per dataset, over streams held open on a real server: the 26th stream in
// a second is refused by the ip tier, the 101st concurrent by the dataset
// tier (its units held while the streams are open), and one ending frees a
// unit, all or none: a refusal by one tier charges the other nothing.
func TestSanity(t *testing.T) {
	clk := mockAt(t0)
	perIP := slidingwindow.Config{Limit: 25, Window: time.Second, Name: "ip"}
	ips := ratekit.NewKeyed(func(string) *slidingwindow.Log { return must(slidingwindow.NewLog(perIP)) }, ratekit.KeyedConfig{MaxKeys: 1000})
	datasets := ratekit.NewKeyed(func(string) *concurrency.Limiter {
		return must(concurrency.New(concurrency.Config{Limit: 100, Name: "dataset"}))
	}, ratekit.KeyedConfig{MaxKeys: 1000})
	ipOf := must(grpclimit.PeerIP(httplimit.IPConfig{}))
	ic := must(grpclimit.New(grpclimit.Config{
		Tiers: []grpclimit.Tier{
			{Name: "dataset", Key: grpclimit.Metadata("x-dataset"), Limiter: httplimit.Per(datasets.Get)},
			{Name: "ip", Key: ipOf, Limiter: httplimit.Per(ips.Get)},
		},
		Headers: httplimit.IETF,
		Clock:   clk,
	}))
	svc := &testService{}
	c := serveTCP(t, svc, []grpc.ServerOption{grpc.ChainStreamInterceptor(ic.Stream())})
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "x-dataset", "production"))
	defer cancel()

	// open opens a stream and reports its first echo, or the refusal.
	open := func() (testpb.TestService_FullDuplexCallClient, error) {
		s, err := c.FullDuplexCall(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.Send(&testpb.StreamingOutputCallRequest{}); err != nil {
			_, err = s.Recv()
			return nil, err
		}
		if _, err := s.Recv(); err != nil {
			return nil, err
		}
		return s, nil
	}
	var streams []testpb.TestService_FullDuplexCallClient
	for sec := range 4 {
		for i := range 25 {
			s, err := open()
			if err != nil {
				t.Fatalf("second %d, stream %d: %v", sec, i+1, err)
			}
			streams = append(streams, s)
		}
		_, err := open()
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("second %d, 26th stream: %v, want ResourceExhausted", sec, err)
		}
		want := "[ip]"
		if sec == 3 { // and the 101st concurrent
			want = "[dataset ip]"
		}
		if _, qf := details(err); fmt.Sprint(violated(qf)) != want {
			t.Errorf("second %d, 26th stream violated %v, want %s", sec, violated(qf), want)
		}
		clk.Add(time.Second)
	}
	sem := datasets.Get("production")
	if got := sem.Peek(clk.Now(), 0).Remaining; got != 0 {
		t.Fatalf("dataset units left with 100 streams open = %d, want 0", got)
	}
	_, err := open()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("101st concurrent stream: %v, want ResourceExhausted", err)
	}
	ri, qf := details(err)
	if got := violated(qf); len(got) != 1 || got[0] != "dataset" {
		t.Errorf("101st stream violated %v, want [dataset]", got)
	}
	if ri.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("101st stream RetryInfo %v, want a positive delay", ri)
	}
	// All or none: the ip tier was not charged for the refused stream.
	if got := ips.Get("127.0.0.1").Peek(clk.Now(), 0).Remaining; got != 25 {
		t.Errorf("ip units left after a dataset refusal = %d, want 25", got)
	}

	// A stream that ends gives its unit back.
	s := streams[0]
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err == nil {
		t.Fatal("Recv after CloseSend: a message, want EOF")
	}
	if got := sem.Peek(clk.Now(), 0).Remaining; got != 1 {
		t.Errorf("dataset units left after one stream ended = %d, want 1", got)
	}
	if _, err := open(); err != nil {
		t.Errorf("stream after one ended: %v", err)
	}
	for _, s := range streams[1:] {
		_ = s.CloseSend()
		_, _ = s.Recv()
	}
	if got := sem.Peek(clk.Now(), 0).Remaining; got != 99 {
		t.Errorf("dataset units left with one stream open = %d, want 99", got)
	}
}
