package grpclimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/httplimit"
)

// peekCounter counts the Peeks its limiter receives.
type peekCounter struct {
	ratekit.Limiter
	peeks atomic.Int64
}

func (p *peekCounter) Peek(now time.Time, n int) ratekit.Decision {
	p.peeks.Add(1)
	return p.Limiter.Peek(now, n)
}

// TestTierDecisionsOnRefusal: as httplimit's test of the same name, over
// gRPC. An admitted call costs OnDecision no Peek in any mode (each tier's
// Decision is its Take); on a refused call OnDecision alone asks a Peek of
// 0 units of the tier that did not refuse, and the option spares it unless
// the metadata needs that tier's state (IETF, the default dialect). Either
// way the refusing tier reports its refusal, unary and stream alike.
func TestTierDecisionsOnRefusal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lazy      bool
		headers   httplimit.Dialect
		wantPeeks int64 // of the org tier, by the refusal
	}{
		{"eager", false, httplimit.XRateLimit, 1},
		{"lazy", true, httplimit.XRateLimit, 0},
		{"lazy/IETF", true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := mockAt(t0)
			window := func(name string, limit int) *peekCounter {
				return &peekCounter{Limiter: must(fixedwindow.New(fixedwindow.Config{Name: name, Limit: limit, Window: time.Minute}))}
			}
			org, ip := window("org", 100), window("ip", 2)
			var mu sync.Mutex
			var got []httplimit.TierDecision
			ic := must(grpclimit.New(grpclimit.Config{
				Tiers: []grpclimit.Tier{
					{Name: "org", Limiter: httplimit.Shared(org)},
					{Name: "ip", Limiter: httplimit.Shared(ip)},
				},
				Headers:                tc.headers,
				Clock:                  clk,
				TierDecisionsOnRefusal: tc.lazy,
				OnDecision: func(_ context.Context, _ string, _ ratekit.Decision, tiers []httplimit.TierDecision) {
					mu.Lock()
					got = append(got[:0], tiers...)
					mu.Unlock()
				},
			}))
			c := serveBuf(t, &testService{}, []grpc.ServerOption{
				grpc.ChainUnaryInterceptor(ic.Unary()),
				grpc.ChainStreamInterceptor(ic.Stream()),
			})
			last := func() []httplimit.TierDecision {
				mu.Lock()
				defer mu.Unlock()
				return append([]httplimit.TierDecision(nil), got...)
			}

			for i := range 2 {
				if _, _, err := unary(context.Background(), c, nil); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if td := last()[1]; !td.Applied || !td.Decision.Allowed || td.Decision.Remaining != 1-i {
					t.Errorf("admitted call %d: ip tier = %+v, want its Take (remaining %d)", i, td, 1-i)
				}
			}
			if org.peeks.Load() != 0 || ip.peeks.Load() != 0 {
				t.Errorf("admitted calls peeked org %d, ip %d times, want none", org.peeks.Load(), ip.peeks.Load())
			}

			_, trl, err := unary(context.Background(), c, nil)
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("third call: %v, want ResourceExhausted", err)
			}
			tds := last()
			if d := tds[1].Decision; d.Allowed || d.RetryAfter != 12*time.Second || d.Policy != "ip" || !tds[1].Refused() {
				t.Errorf("refusing tier = %+v, want ip's refusal for 12s", tds[1])
			}
			if tds[0].Refused() || !tds[0].Decision.Allowed {
				t.Errorf("tier that did not refuse = %+v", tds[0])
			}
			if n := org.peeks.Load(); n != tc.wantPeeks {
				t.Errorf("the refusal peeked org %d times, want %d", n, tc.wantPeeks)
			}
			wantMD(t, "trailer", trl, map[string]string{"x-ratelimit-remaining": "0", "retry-after": "12"})
			if tc.headers == 0 {
				// org's state after the rollback: 98 of 100 left.
				wantMD(t, "trailer", trl, map[string]string{"ratelimit": `"org";r=98;t=12, "ip";r=0;t=12`})
			}

			s, err := c.FullDuplexCall(context.Background())
			if err == nil {
				_, err = s.Recv()
			}
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("stream: %v, want ResourceExhausted", err)
			}
			if n := org.peeks.Load(); n != 2*tc.wantPeeks {
				t.Errorf("the refused stream took org's peeks to %d, want %d", n, 2*tc.wantPeeks)
			}
		})
	}
}
