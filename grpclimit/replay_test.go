package grpclimit_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// replayServer is a server whose streams are limited to one a minute, and
// a client whose Retrier, with cfg, retries both streaming methods that
// send more than one message; both on one mock clock, that w advances.
func replayServer(t *testing.T, cfg grpclimit.RetryConfig) (testpb.TestServiceClient, *testService, *waits) {
	t.Helper()
	clk := mockAt(time.Now())
	tb := must(tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Minute, Burst: 1}))
	ic := must(grpclimit.New(grpclimit.Config{Tiers: []grpclimit.Tier{{Name: "t", Limiter: httplimit.Shared(tb)}}, Clock: clk}))
	w := &waits{clk: clk}
	cfg.Idempotent = []string{testpb.TestService_StreamingInputCall_FullMethodName, testpb.TestService_FullDuplexCall_FullMethodName}
	cfg.Clock, cfg.Rand, cfg.OnWait = clk, rand.NewPCG(1, 1), w.onWait
	rt := must(grpclimit.NewRetrier(cfg))
	svc := &testService{}
	c := serveBuf(t, svc, []grpc.ServerOption{grpc.ChainStreamInterceptor(ic.Stream())}, grpc.WithChainStreamInterceptor(rt.Stream()))
	return c, svc, w
}

func payload(n int) *testpb.Payload { return &testpb.Payload{Body: make([]byte, n)} }

// sendInput sends payloads of the given sizes on a client stream and
// returns the total the server received (its answer).
func sendInput(c testpb.TestServiceClient, sizes ...int) (int, error) {
	s, err := c.StreamingInputCall(context.Background())
	if err != nil {
		return 0, err
	}
	for _, n := range sizes {
		if err := s.Send(&testpb.StreamingInputCallRequest{Payload: payload(n)}); errors.Is(err, io.EOF) {
			break // the stream ended: CloseAndRecv has its status
		} else if err != nil {
			return 0, err
		}
	}
	resp, err := s.CloseAndRecv()
	return int(resp.GetAggregatedPayloadSize()), err
}

// TestRetrierClientStream: a client-streaming call refused when it opens
// is opened again after the RetryInfo delay and every message the caller
// sent is sent again, in order: the server receives all of them once.
func TestRetrierClientStream(t *testing.T) {
	c, svc, w := replayServer(t, grpclimit.RetryConfig{})
	for i := range 2 {
		if got, err := sendInput(c, 1, 20, 300); got != 321 || err != nil {
			t.Fatalf("stream %d: server received %d bytes, %v; want 321, nil", i+1, got, err)
		}
	}
	if len(w.got) != 1 || w.got[0] < time.Minute || svc.calls.Load() != 2 {
		t.Errorf("waits %v, %d streams served; want one wait of at least 1m, 2", w.got, svc.calls.Load())
	}
}

// TestRetrierBidiStream: a bidirectional stream refused when it opens is
// retried with its messages replayed, while the caller sends from one
// goroutine and receives from another (as bidi callers do): every
// message is echoed once, in order.
func TestRetrierBidiStream(t *testing.T) {
	c, svc, w := replayServer(t, grpclimit.RetryConfig{})
	for i := range 2 {
		s, err := c.FullDuplexCall(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() {
			for n := 1; n <= 5; n++ {
				if err := s.Send(&testpb.StreamingOutputCallRequest{Payload: payload(n)}); err != nil {
					sent <- err
					return
				}
			}
			sent <- s.CloseSend()
		}()
		var got []int
		for {
			resp, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("stream %d: Recv after %v: %v", i+1, got, err)
			}
			got = append(got, len(resp.GetPayload().GetBody()))
		}
		if err := <-sent; err != nil {
			t.Errorf("stream %d: Send: %v", i+1, err)
		}
		if len(got) != 5 || got[0] != 1 || got[4] != 5 {
			t.Errorf("stream %d: echoes %v, want [1 2 3 4 5]", i+1, got)
		}
	}
	if len(w.got) != 1 || w.got[0] < time.Minute || svc.calls.Load() != 2 {
		t.Errorf("waits %v, %d streams served; want one wait of at least 1m, 2", w.got, svc.calls.Load())
	}
}

// TestRetrierReplayTooLarge: a refused stream whose messages outgrew
// MaxReplayBytes before the refusal was seen cannot be sent again whole:
// the Retrier does not retry it, and says why (ErrReplayTooLarge, the
// refusal's status kept). A stream within the bound is still retried.
func TestRetrierReplayTooLarge(t *testing.T) {
	c, svc, w := replayServer(t, grpclimit.RetryConfig{MaxReplayBytes: 80})
	if _, err := sendInput(c, 1); err != nil {
		t.Fatal(err)
	}
	_, err := sendInput(c, 30, 30, 30)
	if !errors.Is(err, grpclimit.ErrReplayTooLarge) || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("refused stream of 90 bytes with MaxReplayBytes 80 (each message encodes to 34): %v, want ErrReplayTooLarge and ResourceExhausted", err)
	}
	if len(w.got) != 0 || svc.calls.Load() != 1 {
		t.Errorf("waits %v, %d streams served; want no wait, 1", w.got, svc.calls.Load())
	}
	if got, err := sendInput(c, 30, 30); got != 60 || err != nil {
		t.Errorf("refused stream of 60 bytes: %d, %v; want 60 after a retry", got, err)
	}
	if _, err := grpclimit.NewRetrier(grpclimit.RetryConfig{MaxReplayBytes: -1}); err == nil {
		t.Error("NewRetrier accepted MaxReplayBytes -1")
	}
}

// fakeStream is a grpc.ClientStream with a script: each RecvMsg returns
// the next of recvs (nil: a response), then io.EOF; SendMsg records.
type fakeStream struct {
	grpc.ClientStream
	recvs  []error
	sent   []any
	closed bool
}

func (f *fakeStream) Context() context.Context { return context.Background() }
func (f *fakeStream) SendMsg(m any) error      { f.sent = append(f.sent, m); return nil }
func (f *fakeStream) CloseSend() error         { f.closed = true; return nil }
func (f *fakeStream) RecvMsg(any) error {
	if len(f.recvs) == 0 {
		return io.EOF
	}
	err := f.recvs[0]
	f.recvs = f.recvs[1:]
	return err
}

// fakeStreamer opens the given streams in turn and counts the opens.
type fakeStreamer struct {
	streams []*fakeStream
	opened  int
}

func (f *fakeStreamer) open(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	s := f.streams[f.opened]
	f.opened++
	return s, nil
}

// TestRetrierStreamScripts: the Retrier's stream rules on scripted
// streams. A refusal after a response is returned as it is (the server
// acted on what it read); a message whose size is unknown (not protobuf)
// is not kept, so its stream's refusal ends the call with
// ErrReplayTooLarge and no wait; a refused stream is opened again with
// the messages sent, in order, and closed as the caller closed it.
func TestRetrierStreamScripts(t *testing.T) {
	refusal := exhausted(time.Second, codes.ResourceExhausted)
	desc := &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
	newRetrier := func() (*grpclimit.Retrier, *waits) {
		clk := mockAt(t0)
		w := &waits{clk: clk}
		return must(grpclimit.NewRetrier(grpclimit.RetryConfig{Idempotent: []string{method}, Clock: clk, OnWait: w.onWait})), w
	}
	ctx := context.Background()

	rt, w := newRetrier()
	f := &fakeStreamer{streams: []*fakeStream{{recvs: []error{nil, refusal}}}}
	cs := must(rt.Stream()(ctx, desc, nil, method, f.open))
	_ = cs.SendMsg(&testpb.Empty{})
	if err := cs.RecvMsg(nil); err != nil {
		t.Fatal(err)
	}
	if err := cs.RecvMsg(nil); err != refusal || f.opened != 1 || len(w.got) != 0 {
		t.Errorf("refusal after a response: %v after %d opens and waits %v; want it as is, 1, none", err, f.opened, w.got)
	}

	rt, w = newRetrier()
	f = &fakeStreamer{streams: []*fakeStream{{recvs: []error{refusal}}}}
	cs = must(rt.Stream()(ctx, desc, nil, method, f.open))
	_ = cs.SendMsg("not a protobuf message")
	if err := cs.RecvMsg(nil); !errors.Is(err, grpclimit.ErrReplayTooLarge) || f.opened != 1 || len(w.got) != 0 {
		t.Errorf("refused stream that sent a message of unknown size: %v after %d opens and waits %v; want ErrReplayTooLarge, 1, none", err, f.opened, w.got)
	}

	rt, w = newRetrier()
	f = &fakeStreamer{streams: []*fakeStream{{recvs: []error{refusal}}, {recvs: []error{nil}}}}
	cs = must(rt.Stream()(ctx, desc, nil, method, f.open))
	m1, m2 := &testpb.Empty{}, &testpb.SimpleRequest{}
	_ = cs.SendMsg(m1)
	_ = cs.SendMsg(m2)
	_ = cs.CloseSend()
	if err := cs.RecvMsg(nil); err != nil || f.opened != 2 || len(w.got) != 1 {
		t.Fatalf("refused stream: %v after %d opens and waits %v; want a response after 2 opens and one wait", err, f.opened, w.got)
	}
	if again := f.streams[1]; len(again.sent) != 2 || again.sent[0] != m1 || again.sent[1] != m2 || !again.closed {
		t.Errorf("the stream opened again got %v, closed %v; want both messages in order, closed", again.sent, again.closed)
	}
	if err := cs.RecvMsg(nil); err != io.EOF {
		t.Errorf("after the response: %v, want io.EOF", err)
	}
}
