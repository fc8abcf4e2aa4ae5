package otelratekit_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/otelratekit"
)

// grpcServer judges calls as grpclimit's Interceptor does (its begin and
// end): over httplimit's Policy, with per-tier state on refusals unless
// the hooks' TierDecisionsOnRefusal is wired in (grpclimit's perTier, with
// Headers that need none), then OnDecision with the call's context and
// method. It stands in for the interceptor, which this module cannot
// import without depending on grpc-go.
type grpcServer struct {
	pol     *httplimit.Policy
	h       otelratekit.GRPCHooks
	now     time.Time
	perTier bool
}

// newGRPCServer builds the Policy grpclimit.New would for tiers (Key is
// not used: calls give their keys), failure and the hooks' OnLimitReached.
func newGRPCServer(tb testing.TB, h otelratekit.GRPCHooks, tiers []httplimit.Tier, failure *httplimit.FailureTier) *grpcServer {
	tb.Helper()
	if failure != nil {
		failure.Key = func(*http.Request) (string, bool) { return "", false }
		failure.Counts = func(int) bool { return true }
	}
	pol, err := httplimit.NewPolicy(httplimit.Config{
		Tiers: tiers, Failure: failure, Clock: mockAt(t0), OnLimitReached: h.OnLimitReached,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &grpcServer{pol: pol, h: h, now: t0, perTier: !h.TierDecisionsOnRefusal}
}

// call judges one call to method with the given keys by tier name (a tier
// without one has no key) and cost, and returns its outcome.
func (g *grpcServer) call(method string, keys map[string]string, cost int) httplimit.Outcome {
	rep := g.pol.NewReport()
	g.pol.Reset(rep)
	for i := range rep.Tiers {
		td := &rep.Tiers[i]
		key, ok := keys[td.Tier]
		td.Key, td.Missing = key, !ok
		if !td.Failure {
			td.Cost = cost
		}
	}
	g.pol.Decide(g.now, rep, g.perTier)
	g.h.OnDecision(context.Background(), method, rep.Decision, rep.Tiers)
	g.pol.Settle(rep, false)
	return rep.Outcome
}

const grpc = "rpc.system=grpc" // the attribute on every series of GRPCHooks

// Two tiers, an org limit of 2 a minute and a roomy per-IP one: counted
// as TestHTTPDecisions counts the same requests over HTTP, with the
// rpc.system attribute; the same whether the refusals carry every tier's
// state (the default IETF metadata needs it) or only what the take knew
// (the hooks' TierDecisionsOnRefusal), and in the second case the ip tier,
// which refused nothing, is never peeked: admitted or refused, a call
// costs the hooks no Peek.
func TestGRPCDecisions(t *testing.T) {
	for _, perTier := range []bool{true, false} {
		t.Run(map[bool]string{true: "per-tier", false: "lazy"}[perTier], func(t *testing.T) {
			testGRPCDecisions(t, perTier)
		})
	}
}

func testGRPCDecisions(t *testing.T, perTier bool) {
	m, r := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{})
	if !h.TierDecisionsOnRefusal {
		t.Fatal("GRPCHooks().TierDecisionsOnRefusal is false: the metrics would cost a Peek per tier and refusal")
	}
	ip := &peekCounter{Limiter: window("ip", 100)}
	// ip before org, so that the take asks ip first and a refusal by org
	// rolls ip's Take back: what ip carries then needs no Peek.
	srv := newGRPCServer(t, h, []httplimit.Tier{
		{Name: "ip", Limiter: httplimit.Shared(ip)},
		{Name: "org", Limiter: httplimit.Shared(window("org", 2))},
	}, nil)
	srv.perTier = perTier
	keys := map[string]string{"org": "acme", "ip": "192.0.2.1"}
	for i, want := range []httplimit.Outcome{httplimit.Admitted, httplimit.Admitted, httplimit.RefusedRate, httplimit.RefusedRate} {
		if got := srv.call("/svc.Msgs/Send", keys, 1); got != want {
			t.Fatalf("call %d: outcome %d, want %d", i, got, want)
		}
	}
	if got := srv.call("/svc.Msgs/Send", map[string]string{"ip": "192.0.2.1"}, 1); got != httplimit.Admitted {
		t.Fatalf("call without org: outcome %d", got)
	}

	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed," + grpc: 3,
		"ratekit.outcome=refused," + grpc: 2,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=allowed,ratekit.policy=org," + grpc: 2,
		"ratekit.outcome=refused,ratekit.policy=org," + grpc: 2,
		"ratekit.outcome=allowed,ratekit.policy=ip," + grpc:  3,
	})
	s.want(t, "ratekit.limit_reached", map[string]int64{"ratekit.policy=org," + grpc: 1})
	if got := s.hists["ratekit.retry_after"]; len(got) != 1 || got["ratekit.policy=org,"+grpc] != (hist{2, 24}) {
		t.Errorf("ratekit.retry_after = %+v, want org: 2 refusals of 12s", got)
	}
	if want := map[bool]int{true: 2, false: 0}[perTier]; ip.peeks != want {
		t.Errorf("ip peeked %d times by 2 refusals, want %d", ip.peeks, want)
	}
}

// peekCounter counts the Peeks its limiter receives.
type peekCounter struct {
	ratekit.Limiter
	peeks int
}

func (p *peekCounter) Peek(now time.Time, n int) ratekit.Decision {
	p.peeks++
	return p.Limiter.Peek(now, n)
}

// A call that can never fit (InvalidArgument), a call no tier applies to,
// and the FailureTier's refusal (ResourceExhausted).
func TestGRPCNeverUnlimitedFailure(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{})
	exempt := func(key string) ratekit.Limiter {
		if key == "internal" {
			return nil
		}
		return window("org", 3)
	}
	fails := window("fails", 1)
	fails.Take(t0, 1) // the peer already failed once: its next call is refused
	srv := newGRPCServer(t, h, []httplimit.Tier{{Name: "org", Limiter: exempt}},
		&httplimit.FailureTier{Name: "fails", Limiter: func(key string) ratekit.Limiter {
			if key == "bad-peer" {
				return fails
			}
			return nil
		}})
	outcomes := []httplimit.Outcome{
		srv.call("/m", map[string]string{"org": "acme"}, 5),                       // never
		srv.call("/m", map[string]string{"org": "acme"}, -1),                      // never
		srv.call("/m", map[string]string{"org": "internal"}, 1),                   // unlimited
		srv.call("/m", nil, 1),                                                    // unlimited
		srv.call("/m", map[string]string{"org": "acme", "fails": "bad-peer"}, 1),  // refused by fails
		srv.call("/m", map[string]string{"org": "acme", "fails": "good-peer"}, 1), // allowed
	}
	want := []httplimit.Outcome{httplimit.RefusedNever, httplimit.RefusedNever, httplimit.Admitted, httplimit.Admitted,
		httplimit.RefusedFailure, httplimit.Admitted}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Fatalf("call %d: outcome %d, want %d", i, outcomes[i], want[i])
		}
	}
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=never," + grpc:     2,
		"ratekit.outcome=unlimited," + grpc: 2,
		"ratekit.outcome=refused," + grpc:   1,
		"ratekit.outcome=allowed," + grpc:   1,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=never,ratekit.policy=org," + grpc:     2,
		"ratekit.outcome=refused,ratekit.policy=fails," + grpc: 1,
		"ratekit.outcome=allowed,ratekit.policy=org," + grpc:   1,
	})
	s.want(t, "ratekit.limit_reached", map[string]int64{"ratekit.policy=fails," + grpc: 1})
	if got := s.hists["ratekit.retry_after"]; len(got) != 1 || got["ratekit.policy=fails,"+grpc].count != 1 {
		t.Errorf("ratekit.retry_after = %+v, want the FailureTier's one refusal", got)
	}
}

// Shadow mode: every would-be refusal, of any kind, counts as shadow.
func TestGRPCShadow(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{Shadow: true, RejectMissing: []string{"token"}})
	srv := newGRPCServer(t, h, []httplimit.Tier{
		{Name: "token", Missing: httplimit.MissingReject, Limiter: httplimit.Shared(window("token", 1))},
	}, nil)
	tok := map[string]string{"token": "sk_1"}
	srv.call("/m", tok, 1) // allowed
	srv.call("/m", tok, 1) // would be refused, 12s
	srv.call("/m", tok, 5) // could never fit
	srv.call("/m", nil, 1) // no token
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed," + grpc: 1,
		"ratekit.outcome=shadow," + grpc:  3,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=allowed,ratekit.policy=token," + grpc: 1,
		"ratekit.outcome=shadow,ratekit.policy=token," + grpc:  2,
	})
	if got := s.hists["ratekit.retry_after"]["ratekit.policy=token,"+grpc]; got != (hist{1, 12}) {
		t.Errorf("retry_after{token} = %+v, want the one curable would-be refusal, 12s", got)
	}
}

// A call without the key of a MissingReject tier is refused with
// Unauthenticated and counted as unauthorized, whatever the other tiers
// and the FailureTier (whose allowed Peek is then the binding Decision)
// say; without RejectMissing it would pass for unlimited.
func TestGRPCUnauthenticated(t *testing.T) {
	for _, withFailure := range []bool{false, true} {
		m, r := newMetrics(t, otelratekit.Config{})
		h := m.GRPCHooks(otelratekit.GRPCConfig{RejectMissing: []string{"token", "no-such-tier"}})
		var failure *httplimit.FailureTier
		if withFailure {
			failure = &httplimit.FailureTier{Name: "fails", Limiter: httplimit.Shared(window("fails", 5))}
		}
		srv := newGRPCServer(t, h, []httplimit.Tier{
			{Name: "ip", Limiter: httplimit.Shared(window("ip", 100))},
			{Name: "token", Missing: httplimit.MissingReject, Limiter: httplimit.Shared(window("token", 100))},
		}, failure)
		for range 2 {
			if got := srv.call("/m", map[string]string{"ip": "192.0.2.1", "fails": "192.0.2.1"}, 1); got != httplimit.RefusedMissingKey {
				t.Fatalf("failure tier %v: outcome %d, want RefusedMissingKey", withFailure, got)
			}
		}
		if got := srv.call("/m", nil, 1); got != httplimit.RefusedMissingKey {
			t.Fatalf("failure tier %v, no keys at all: outcome %d", withFailure, got)
		}
		srv.call("/m", map[string]string{"ip": "192.0.2.1", "token": "sk_1", "fails": "192.0.2.1"}, 1)
		s := collect(t, r)
		s.want(t, "ratekit.requests", map[string]int64{
			"ratekit.outcome=unauthorized," + grpc: 3,
			"ratekit.outcome=allowed," + grpc:      1,
		})
		want := map[string]int64{
			"ratekit.outcome=allowed,ratekit.policy=ip," + grpc:    1,
			"ratekit.outcome=allowed,ratekit.policy=token," + grpc: 1,
		}
		if withFailure {
			want["ratekit.outcome=allowed,ratekit.policy=fails,"+grpc] = 1
		}
		s.want(t, "ratekit.decisions", want)
		if got := s.hists["ratekit.retry_after"]; len(got) != 0 {
			t.Errorf("failure tier %v: ratekit.retry_after = %+v, want none", withFailure, got)
		}
	}
}

// HTTP and gRPC tiers of the same Name are counted apart, and
// KeyAttribute reaches gRPC's limit_reached as HTTP's.
func TestGRPCBesideHTTP(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{KeyAttribute: true})
	cfg := httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "org", Key: httplimit.Header("X-Org"), Limiter: httplimit.Shared(window("org", 1))}},
		Clock: mockAt(t0),
	}
	m.InstrumentHTTP(&cfg)
	hh := mustWrap(t, cfg)
	get(hh, "X-Org", "acme")
	get(hh, "X-Org", "acme")
	srv := newGRPCServer(t, m.GRPCHooks(otelratekit.GRPCConfig{}),
		[]httplimit.Tier{{Name: "org", Limiter: httplimit.Shared(window("org", 2))}}, nil)
	for range 3 {
		srv.call("/m", map[string]string{"org": "acme"}, 1)
	}
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed":         1,
		"ratekit.outcome=refused":         1,
		"ratekit.outcome=allowed," + grpc: 2,
		"ratekit.outcome=refused," + grpc: 1,
	})
	s.want(t, "ratekit.limit_reached", map[string]int64{
		"ratekit.key=acme,ratekit.policy=org":         1,
		"ratekit.key=acme,ratekit.policy=org," + grpc: 1,
	})
}

// Bad input: no tiers, or calls whose tiers differ in number from the
// first call's (hooks shared by two interceptors), are not counted, and
// nothing panics.
func TestGRPCMismatch(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{})
	h.OnDecision(context.Background(), "/m", ratekit.Decision{}, nil)
	one := newGRPCServer(t, h, []httplimit.Tier{{Name: "a", Limiter: httplimit.Shared(window("a", 9))}}, nil)
	two := newGRPCServer(t, h, []httplimit.Tier{
		{Name: "a", Limiter: httplimit.Shared(window("a", 9))},
		{Name: "b", Limiter: httplimit.Shared(window("b", 9))},
	}, nil)
	one.call("/m", map[string]string{"a": "k"}, 1)
	two.call("/m", map[string]string{"a": "k", "b": "k"}, 1)
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{"ratekit.outcome=allowed," + grpc: 1})
}

// OnRetryWait records each wait by method and code.
func TestGRPCRetryWait(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{})
	const resourceExhausted, unavailable = 8, 14 // codes.Code values
	h.OnRetryWait("/svc.Msgs/Send", 1, 12*time.Second, resourceExhausted)
	h.OnRetryWait("/svc.Msgs/Send", 2, 3*time.Second, resourceExhausted)
	h.OnRetryWait("/svc.Msgs/List", 1, 500*time.Millisecond, unavailable)
	h.OnRetryWait("/svc.Msgs/List", 2, -time.Second, unavailable) // recorded as 0
	got := collect(t, r).hists["ratekit.rpc.client.retry_wait"]
	want := map[string]hist{
		"rpc.grpc.status_code=8,rpc.method=/svc.Msgs/Send," + grpc:  {2, 15},
		"rpc.grpc.status_code=14,rpc.method=/svc.Msgs/List," + grpc: {2, 0.5},
	}
	if len(got) != len(want) {
		t.Errorf("ratekit.rpc.client.retry_wait = %+v, want %+v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("retry_wait{%s} = %+v, want %+v", k, got[k], v)
		}
	}
}

// Concurrent calls, each with its own Report as grpclimit's pool gives
// them, add up exactly (run with -race).
func TestGRPCConcurrent(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{})
	srv := newGRPCServer(t, h, []httplimit.Tier{
		{Name: "org", Limiter: httplimit.Shared(window("org", 1000))},
		{Name: "ip", Limiter: httplimit.Shared(window("ip", 1<<20))},
	}, nil)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				srv.call("/m", map[string]string{"org": "acme", "ip": "192.0.2.1"}, 1)
			}
		})
	}
	wg.Wait()
	s := collect(t, r)
	s.want(t, "ratekit.requests", map[string]int64{
		"ratekit.outcome=allowed," + grpc: 1000,
		"ratekit.outcome=refused," + grpc: workers*each - 1000,
	})
	s.want(t, "ratekit.decisions", map[string]int64{
		"ratekit.outcome=allowed,ratekit.policy=org," + grpc: 1000,
		"ratekit.outcome=refused,ratekit.policy=org," + grpc: workers*each - 1000,
		"ratekit.outcome=allowed,ratekit.policy=ip," + grpc:  1000,
	})
}

// An admitted call costs the metrics no allocation.
func TestGRPCAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	m, _ := newMetrics(t, otelratekit.Config{})
	h := m.GRPCHooks(otelratekit.GRPCConfig{})
	srv := newGRPCServer(t, h, []httplimit.Tier{{Name: "org", Limiter: httplimit.Shared(window("org", 1<<30))}}, nil)
	rep := srv.pol.NewReport()
	rep.Tiers[0].Key = "acme"
	srv.pol.Decide(t0, rep, true)
	ctx := context.Background()
	if a := testing.AllocsPerRun(200, func() { h.OnDecision(ctx, "/m", rep.Decision, rep.Tiers) }); a != 0 {
		t.Errorf("%v allocations per admitted call", a)
	}
}
