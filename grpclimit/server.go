package grpclimit

import (
	"context"
	"net/http"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// call is one call's working memory, pooled.
type call struct {
	rep *httplimit.Report
	hdr http.Header // the rate-limit fields, as httplimit writes them
}

// Unary returns the unary server interceptor. Install it with
// grpc.ChainUnaryInterceptor (or grpc.UnaryInterceptor).
func (ic *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if ic.skip != nil && ic.skip(info.FullMethod) {
			return handler(ctx, req)
		}
		c, md, refusal := ic.begin(ctx, info.FullMethod, req)
		if refusal != nil {
			_ = grpc.SetTrailer(ctx, md) // fails only outside a gRPC server
			ic.pool.Put(c)
			return nil, refusal
		}
		_ = grpc.SetHeader(ctx, md)
		done := false
		defer func() { ic.end(c, done, err) }()
		resp, err = handler(ctx, req)
		done = true
		return resp, err
	}
}

// Stream returns the stream server interceptor. A stream is charged once,
// when it opens (Cost gets a nil req); the units of concurrency tiers are
// held until the handler returns, which is when the stream ends.
func (ic *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		if ic.skip != nil && ic.skip(info.FullMethod) {
			return handler(srv, ss)
		}
		c, md, refusal := ic.begin(ss.Context(), info.FullMethod, nil)
		if refusal != nil {
			ss.SetTrailer(md)
			ic.pool.Put(c)
			return refusal
		}
		_ = ss.SetHeader(md) // fails only once headers are sent: not yet
		done := false
		defer func() { ic.end(c, done, err) }()
		err = handler(srv, ss)
		done = true
		return err
	}
}

// begin judges a call: it finds its keys and costs, decides, reports
// (metadata, OnDecision), and returns the call's state, the metadata to
// send and, if the call is refused, the error to return.
func (ic *Interceptor) begin(ctx context.Context, method string, req any) (*call, metadata.MD, error) {
	c := ic.pool.Get().(*call)
	ic.pol.Reset(c.rep)
	ic.findKeys(ctx, method, req, c.rep)
	ic.pol.Decide(ic.clock.Now(), c.rep, ic.perTier) // the one reading of the clock
	md := ic.metadata(c)
	if ic.onDecision != nil {
		ic.onDecision(ctx, method, c.rep.Decision, c.rep.Tiers)
	}
	if c.rep.Outcome == httplimit.Admitted || ic.shadow {
		return c, md, nil
	}
	err := ic.refusal(c.rep)
	if c.rep.Outcome == httplimit.RefusedMissingKey && ic.failCounts != nil && ic.failCounts(codes.Unauthenticated) {
		ic.pol.Fail(c.rep, 0)
	}
	return c, md, err
}

// end settles an admitted call: concurrency units go back, Refund's codes
// are refunded, and a failure is charged to the FailureTier. It runs on a
// panic too (done false), which is neither refunded nor counted.
func (ic *Interceptor) end(c *call, done bool, err error) {
	code := status.Code(err)
	ic.pol.Settle(c.rep, done && ic.refund != nil && ic.refund(code))
	if done && ic.failCounts != nil && ic.failCounts(code) {
		ic.pol.Fail(c.rep, 0)
	}
	ic.pool.Put(c)
}

// findKeys fills each tier's key and cost, and the FailureTier's key.
func (ic *Interceptor) findKeys(ctx context.Context, method string, req any, rep *httplimit.Report) {
	shared, haveShared := 1, false
	for i := range ic.tiers {
		t, td := &ic.tiers[i], &rep.Tiers[i]
		key, ok := "", true
		if t.Key != nil {
			key, ok = t.Key(ctx, method)
		}
		if !ok && t.Fallback != nil {
			key, ok = t.Fallback(ctx, method)
			td.Fallback = ok
		}
		td.Key, td.Missing = key, !ok
		switch {
		case t.Cost != nil:
			td.Cost = t.Cost(ctx, method, req)
		case ic.cost != nil:
			if !haveShared {
				shared, haveShared = ic.cost(ctx, method, req), true
			}
			td.Cost = shared
		}
	}
	if f := ic.failure; f != nil {
		td := &rep.Tiers[len(ic.tiers)]
		key, ok := f.Key(ctx, method)
		td.Key, td.Missing = key, !ok
	}
}

// metadata returns the rate-limit fields of c's decision as metadata with
// lower-case keys, or nil when no limit applied.
func (ic *Interceptor) metadata(c *call) metadata.MD {
	clear(c.hdr)
	ic.hdr.WriteHeaders(c.hdr, c.rep)
	if len(c.hdr) == 0 {
		return nil
	}
	md := make(metadata.MD, len(c.hdr))
	for k, v := range c.hdr {
		lk, ok := ic.lower[k]
		if !ok {
			lk = strings.ToLower(k)
		}
		md[lk] = v
	}
	return md
}

// refusal returns the status error of a refused call (see the package
// doc's table).
func (ic *Interceptor) refusal(rep *httplimit.Report) error {
	p := ic.pol.Problem(rep)
	var code codes.Code
	switch rep.Outcome {
	case httplimit.RefusedMissingKey:
		return status.Error(codes.Unauthenticated, p.Detail)
	case httplimit.RefusedNever:
		code = codes.InvalidArgument
	default:
		code = codes.ResourceExhausted
	}
	st := status.New(code, p.Detail)
	qf := &errdetails.QuotaFailure{}
	for _, name := range p.ViolatedPolicies {
		qf.Violations = append(qf.Violations, ic.violation(rep, name))
	}
	var details []protoadapt.MessageV1
	if code == codes.ResourceExhausted {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay(rep.Decision.RetryAfter))})
	}
	details = append(details, qf)
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st.Err()
}

// violation describes the refusal of the tier named name. The key (a
// token, an address) is never disclosed: the subject is the tier.
func (ic *Interceptor) violation(rep *httplimit.Report, name string) *errdetails.QuotaFailure_Violation {
	v := &errdetails.QuotaFailure_Violation{Subject: "policy:" + name, QuotaId: name}
	for i := range rep.Tiers {
		td := &rep.Tiers[i]
		if td.Tier != name {
			continue
		}
		d := td.Decision
		v.QuotaValue = int64(d.Limit)
		switch {
		case td.Failure:
			v.Description = "too many failed calls"
		case d.RetryAfter == ratekit.Never:
			v.Description = "call costs more than the policy admits at once"
		default:
			v.Description = "rate limit exceeded"
		}
	}
	return v
}

// retryDelay is the RetryInfo delay of a refusal: its RetryAfter to the
// nanosecond (the retry-after field rounds it up to whole seconds), and at
// least a millisecond, so that a client never retries at once.
func retryDelay(d time.Duration) time.Duration { return max(d, time.Millisecond) }
