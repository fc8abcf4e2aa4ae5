package httplimit_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// call is what a gRPC interceptor knows of a call: its metadata, and the
// size of its message, the cost of a bytes tier.
type call struct {
	md    map[string]string
	bytes int
}

// grpcLike drives a Policy as a transport other than HTTP does: it fills
// each tier's Key and Cost from the call, decides, and, if admitted, runs
// the call and settles. It reuses rep, and returns the Problem of a
// refusal (nil if admitted).
func grpcLike(pol *httplimit.Policy, rep *httplimit.Report, now time.Time, c call, handler func() (refund bool)) *httplimit.Problem {
	pol.Reset(rep)
	for i := range rep.Tiers {
		td := &rep.Tiers[i]
		switch td.Tier {
		case "bytes":
			td.Key, td.Missing, td.Cost = c.md["org"], c.md["org"] == "", c.bytes
		case "org":
			td.Key, td.Missing = c.md["org"], c.md["org"] == ""
		case "conc":
			td.Key = "" // one limit shared by all calls
		case "auth":
			td.Key, td.Missing = c.md["peer"], c.md["peer"] == ""
		}
	}
	pol.Decide(now, rep, true)
	if rep.Outcome != httplimit.Admitted {
		return pol.Problem(rep)
	}
	pol.Settle(rep, handler())
	return nil
}

// TestPolicyWithoutHTTP drives the transport-neutral core as #17's gRPC
// interceptor will: no http.Request anywhere. It checks per-tier cost,
// all or none across tiers, the binding decision and per-tier verdicts,
// Settle (release and refund), the refusal's Problem, a missing key, a
// cost that can never fit, and the FailureTier charged with Fail.
func TestPolicyWithoutHTTP(t *testing.T) {
	bytesL := newWindow("bytes", 1000, time.Minute)
	orgL := newWindow("org", 5, time.Minute)
	conc := newConc(t, 2)
	auth := newKeyed(func(string) *window { return newWindow("auth", 2, time.Minute) })
	pol, err := httplimit.NewPolicy(httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "bytes", Limiter: httplimit.Shared(bytesL), Unit: "content-bytes", Detail: "Too many bytes for this organization."},
			{Name: "org", Limiter: httplimit.Shared(orgL), Missing: httplimit.MissingReject},
			{Name: "conc", Limiter: httplimit.Shared(conc)},
		},
		Failure: &httplimit.FailureTier{Name: "auth", Key: httplimit.Header("unused"), Limiter: httplimit.Per(auth.Get)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := pol.NewReport()
	if got := len(rep.Tiers); got != 4 {
		t.Fatalf("%d tier entries, want 3 tiers and the FailureTier", got)
	}
	acme := map[string]string{"org": "acme", "peer": "10.0.0.1"}

	// Admitted: each tier charged its own cost; conc is held during the
	// call and released by Settle; the binding tier is the one that admits
	// the fewest more calls of these costs: bytes (600 left, 1 call of 400)
	// and conc (1) tie, and bytes resets later (org admits 4).
	var during int
	if p := grpcLike(pol, rep, t0, call{acme, 400}, func() bool {
		during = conc.Peek(t0, 0).Remaining
		return false
	}); p != nil {
		t.Fatalf("refused: %+v", p)
	}
	if rep.Outcome != httplimit.Admitted || pol.Problem(rep) != nil {
		t.Fatalf("outcome %v, problem %+v", rep.Outcome, pol.Problem(rep))
	}
	if got := [4]int{used(bytesL, t0), used(orgL, t0), during, conc.Peek(t0, 0).Remaining}; got != [4]int{400, 1, 1, 2} {
		t.Fatalf("bytes used, org used, conc left during and after the call = %v, want [400 1 1 2]", got)
	}
	if rep.Decision.Policy != "bytes" || rep.Decision.Remaining != 600 {
		t.Errorf("binding decision %+v, want bytes' with 600 remaining", rep.Decision)
	}
	if d := rep.Tiers[0].Decision; !rep.Tiers[0].Applied || d.Remaining != 600 || rep.Tiers[0].Cost != 400 {
		t.Errorf("bytes tier %+v, want applied, cost 400, 600 remaining", rep.Tiers[0])
	}
	pol.Settle(rep, true) // a second Settle does nothing
	if used(bytesL, t0) != 400 {
		t.Errorf("a second Settle refunded")
	}

	// Settle with refund gives every tier its own cost back.
	grpcLike(pol, rep, t0, call{acme, 250}, func() bool { return true })
	if got := [2]int{used(bytesL, t0), used(orgL, t0)}; got != [2]int{400, 1} {
		t.Errorf("after a refunded call: bytes, org used = %v, want [400 1]", got)
	}

	// All or none across tiers with different costs: 700 bytes do not fit
	// (600 left); org's unit, asked before nothing, is not taken either,
	// and conc is not held.
	p := grpcLike(pol, rep, t0, call{acme, 700}, nil)
	if rep.Outcome != httplimit.RefusedRate || p == nil {
		t.Fatalf("outcome %v, problem %+v; want RefusedRate", rep.Outcome, p)
	}
	if got := [3]int{used(bytesL, t0), used(orgL, t0), conc.Peek(t0, 0).Remaining}; got != [3]int{400, 1, 2} {
		t.Errorf("after a refusal: bytes used, org used, conc left = %v, want [400 1 2]", got)
	}
	if !rep.Tiers[0].Refused() || rep.Tiers[1].Refused() || rep.Tiers[2].Refused() {
		t.Errorf("refused flags %v %v %v, want only bytes", rep.Tiers[0].Refused(), rep.Tiers[1].Refused(), rep.Tiers[2].Refused())
	}
	// Per-tier state after a refusal is each tier's own, not what its
	// rolled-back Take said.
	if d := rep.Tiers[1].Decision; d.Remaining != 4 || !d.Allowed {
		t.Errorf("org's state after the refusal %+v, want 4 remaining", d)
	}
	want := httplimit.Problem{
		Type: httplimit.ProblemQuotaExceeded, Title: "Rate limit exceeded", Status: http.StatusTooManyRequests,
		Detail:     "Too many bytes for this organization. Retry in 12 seconds.",
		RetryAfter: 12, ViolatedPolicies: []string{"bytes"},
	}
	if !problemEqual(*p, want) {
		t.Errorf("problem %+v, want %+v", *p, want)
	}
	q := pol.Problem(rep)
	if q == p || &q.ViolatedPolicies[0] == &p.ViolatedPolicies[0] {
		t.Error("Problem returned the same Problem twice: a caller could not keep it")
	}

	// Two tiers refuse: both are named; the binding one has the longest
	// RetryAfter.
	fill := orgL.Peek(t0, 0).Remaining
	orgL.Take(t0, fill)
	// org refuses after bytes took 100: bytes gets its own 100 back.
	p = grpcLike(pol, rep, t0, call{acme, 100}, nil)
	if rep.Outcome != httplimit.RefusedRate || !slices.Equal(p.ViolatedPolicies, []string{"org"}) || used(bytesL, t0) != 400 {
		t.Errorf("outcome %v, violated %q, bytes used %d; want RefusedRate by org, bytes rolled back to 400", rep.Outcome, p.ViolatedPolicies, used(bytesL, t0))
	}
	p = grpcLike(pol, rep, t0, call{acme, 700}, nil)
	if !slices.Equal(p.ViolatedPolicies, []string{"bytes", "org"}) {
		t.Errorf("violated %q, want [bytes org]", p.ViolatedPolicies)
	}
	orgL.Refund(t0, fill)

	// A missing key of a MissingReject tier: 401, nothing charged.
	p = grpcLike(pol, rep, t0, call{map[string]string{"peer": "10.0.0.1"}, 1}, nil)
	if rep.Outcome != httplimit.RefusedMissingKey || p.Status != http.StatusUnauthorized || p.Type != httplimit.ProblemMissingKey {
		t.Errorf("outcome %v, problem %+v; want RefusedMissingKey, 401", rep.Outcome, p)
	}
	if used(bytesL, t0) != 400 || used(orgL, t0) != 1 {
		t.Error("a 401 charged a tier")
	}

	// A cost no tier can ever admit: 413, nothing charged.
	p = grpcLike(pol, rep, t0, call{acme, 5000}, nil)
	if rep.Outcome != httplimit.RefusedNever || p.Status != http.StatusRequestEntityTooLarge || p.RetryAfter != 0 {
		t.Errorf("outcome %v, problem %+v; want RefusedNever, 413", rep.Outcome, p)
	}

	// The FailureTier: the transport charges failures with Fail (an
	// Unauthenticated status, mapped to 401); once full, calls are refused
	// before any tier is charged.
	for range 2 {
		grpcLike(pol, rep, t0, call{acme, 1}, func() bool { return false })
		pol.Fail(rep, http.StatusUnauthorized)
	}
	bytesBefore := used(bytesL, t0)
	p = grpcLike(pol, rep, t0, call{acme, 1}, nil)
	if rep.Outcome != httplimit.RefusedFailure || p.Type != httplimit.ProblemAbnormalUsage || !slices.Equal(p.ViolatedPolicies, []string{"auth"}) {
		t.Errorf("outcome %v, problem %+v; want RefusedFailure by auth", rep.Outcome, p)
	}
	if used(bytesL, t0) != bytesBefore {
		t.Error("a call the FailureTier refused was charged")
	}
	// Another peer is not blocked.
	other := map[string]string{"org": "acme", "peer": "10.0.0.2"}
	if p := grpcLike(pol, rep, t0, call{other, 1}, func() bool { return false }); p != nil {
		t.Errorf("another peer refused: %+v", p)
	}
}

// problemEqual compares two Problems field by field.
func problemEqual(a, b httplimit.Problem) bool {
	return a.Type == b.Type && a.Title == b.Title && a.Status == b.Status && a.Detail == b.Detail &&
		a.RetryAfter == b.RetryAfter && slices.Equal(a.ViolatedPolicies, b.ViolatedPolicies)
}
