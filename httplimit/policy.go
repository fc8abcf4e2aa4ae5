package httplimit

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Policy is the transport-neutral core of a Middleware: named tiers of
// limits, each request charged to every tier that applies or to none, the
// FailureTier, and the report of what they decided (per-tier decisions, the
// binding one, the refusal's Problem). A Middleware is the HTTP transport
// around a Policy; another transport (a gRPC interceptor) builds its own
// with NewPolicy, finds a request's keys and costs in its own way, and
// calls Decide, then Settle and Fail when the work is done:
//
//	rep := pol.NewReport() // or one from a sync.Pool, after pol.Reset(rep)
//	for i := range tiers {
//		rep.Tiers[i].Key, rep.Tiers[i].Missing = keyFromMetadata(md, i)
//		rep.Tiers[i].Cost = 1
//	}
//	pol.Decide(now, rep, false) // true: every tier's state, for per-tier reports
//	if rep.Outcome != httplimit.Admitted {
//		return nil, toStatus(pol.Problem(rep)) // e.g. ResourceExhausted
//	}
//	resp, err := handler(ctx, req)
//	pol.Settle(rep, false)
//
// A Policy is safe for concurrent use; a Report is used by one request at
// a time.
type Policy struct {
	tiers       []Tier
	failure     *FailureTier
	failCounts  func(int) bool
	problemType string
	notifier    *notifier
}

// Outcome is what a Policy decided about a request.
type Outcome int

const (
	// Admitted: every tier that applied admitted the request and its units
	// are taken.
	Admitted Outcome = iota
	// RefusedRate: a tier refused (HTTP 429); nothing was taken.
	RefusedRate
	// RefusedFailure: the FailureTier refused (HTTP 429) before any tier
	// was charged.
	RefusedFailure
	// RefusedNever: the request costs more than a tier can ever admit at
	// once, or a negative amount (HTTP 413); nothing was taken.
	RefusedNever
	// RefusedMissingKey: a MissingReject tier found no key (HTTP 401);
	// nothing was taken.
	RefusedMissingKey
)

// Report is one request's passage through a Policy: the transport fills
// each tier's Key, Missing, Fallback and Cost in Tiers, Decide fills the
// rest. Get one from Policy.NewReport; Reset it to reuse it.
type Report struct {
	// Outcome is the decision.
	Outcome Outcome
	// Decision is the binding decision, in the binding tier's own unit: on
	// an admission the tier that admits the fewest more requests of this
	// one's costs (Remaining divided by the tier's Cost, rounded down; ties:
	// the longest ResetAfter; a tier this request cost nothing binds only
	// when every tier did), on a refusal the refusing tier with the longest
	// RetryAfter (the FailureTier's when it refused, or on a 401 when it
	// applies). Zero when no limit applied.
	Decision ratekit.Decision
	// Tiers has an entry per Tier in order, then one for the FailureTier
	// if configured.
	Tiers []TierDecision
	// Now is the instant the request was judged at.
	Now time.Time

	bind    int // index in Tiers of the binding entry, -1 if none
	asks    []ratekit.Ask
	askTier []int // the tier of each ask
	fail    ratekit.Limiter
	taken   bool // asks hold units to release (or refund)
	missing int  // first MissingReject tier without a key, -1 if none
}

// NewPolicy returns the Policy of cfg: its Tiers, Failure, ProblemType and
// OnLimitReached (the other fields are the HTTP transport's). It checks cfg
// as New does.
func NewPolicy(cfg Config) (*Policy, error) {
	if len(cfg.Tiers) == 0 && cfg.Failure == nil {
		return nil, core.Invalid("httplimit", "no tiers")
	}
	p := &Policy{failure: cfg.Failure, problemType: cfg.ProblemType}
	seen := make(map[string]bool)
	checkName := func(name string) error {
		if err := validName(name); err != nil {
			return err
		}
		if seen[name] {
			return core.Invalid("httplimit", "duplicate tier name %q", name)
		}
		seen[name] = true
		return nil
	}
	for i, t := range cfg.Tiers {
		if err := checkName(t.Name); err != nil {
			return nil, err
		}
		if t.Limiter == nil {
			return nil, core.Invalid("httplimit", "tier %q has no Limiter", t.Name)
		}
		if t.Missing != MissingSkip && t.Missing != MissingReject {
			return nil, core.Invalid("httplimit", "tier %q: unknown Missing value %d", t.Name, t.Missing)
		}
		if err := validUnit(t.Unit); err != nil {
			return nil, core.Invalid("httplimit", "tier %q: %v", t.Name, err)
		}
		p.tiers = append(p.tiers, cfg.Tiers[i])
	}
	if f := cfg.Failure; f != nil {
		if err := checkName(f.Name); err != nil {
			return nil, fmt.Errorf("%w (failure tier)", err)
		}
		if f.Key == nil || f.Limiter == nil {
			return nil, core.Invalid("httplimit", "failure tier %q needs Key and Limiter", f.Name)
		}
		p.failCounts = f.Counts
		if p.failCounts == nil {
			p.failCounts = func(status int) bool { return status == http.StatusUnauthorized }
		}
	}
	if cfg.OnLimitReached != nil {
		p.notifier = newNotifier(cfg.OnLimitReached, core.Clock(cfg.Clock).Now())
	}
	return p, nil
}

// NewReport returns an empty Report sized for p.
func (p *Policy) NewReport() *Report {
	n := len(p.tiers)
	if p.failure != nil {
		n++
	}
	rep := &Report{
		Tiers:   make([]TierDecision, n),
		asks:    make([]ratekit.Ask, 0, len(p.tiers)),
		askTier: make([]int, 0, len(p.tiers)),
	}
	p.reset(rep)
	return rep
}

// Reset readies rep, made by p.NewReport, for another request.
func (p *Policy) Reset(rep *Report) { p.reset(rep) }

func (p *Policy) reset(rep *Report) {
	clear(rep.Tiers)
	for i := range p.tiers {
		rep.Tiers[i].Tier, rep.Tiers[i].index, rep.Tiers[i].Cost = p.tiers[i].Name, i, 1
	}
	if p.failure != nil {
		f := &rep.Tiers[len(p.tiers)]
		f.Tier, f.Failure, f.index, f.Cost = p.failure.Name, true, len(p.tiers), 1
	}
	rep.Now = time.Time{}
	rep.begin()
}

// begin resets what Decide reads of rep besides the tiers' keys and costs.
func (rep *Report) begin() {
	rep.Outcome, rep.Decision, rep.bind = Admitted, ratekit.Decision{}, -1
	rep.asks, rep.askTier, rep.fail, rep.taken, rep.missing = rep.asks[:0], rep.askTier[:0], nil, false, -1
}

// Decide judges the request rep describes at now: it looks up each tier's
// limiter (by StoreKey of its Key; a nil or typed nil exempts the key),
// checks the FailureTier, and charges every tier that applies with its
// Cost, all or none
// (ratekit.TakeEach). It fills rep's Outcome, Decision and each tier's
// Applied and Decision. perTier asks for every tier's own state where it
// is not known without asking again (tiers rolled back by a refusal, tiers
// not charged because of a 401 or the FailureTier): a Peek of 0 each.
func (p *Policy) Decide(now time.Time, rep *Report, perTier bool) {
	p.decide(now, rep, perTier, true)
}

// decide is Decide; with tiers false it may leave the Decision of a tier
// that admitted the request as it was (the middleware's own Reports, when
// nothing reads them: no OnDecision, no per-policy dialect). A refusal
// fills them as Decide does, and a tier not asked gets a zero Decision.
func (p *Policy) decide(now time.Time, rep *Report, perTier, tiers bool) {
	for i := range p.tiers {
		td := &rep.Tiers[i]
		td.Key = StoreKey(td.Key)
		rep.lookup(&p.tiers[i], td, i)
	}
	p.judge(now, rep, perTier, tiers)
}

// judge is decide once every tier is looked up (the middleware looks each
// up as it finds its key, in one pass over the tiers).
func (p *Policy) judge(now time.Time, rep *Report, perTier, tiers bool) {
	rep.Now = now
	tds := rep.Tiers
	var fd ratekit.Decision
	failed := false
	if p.failure != nil {
		fd, failed = p.checkFailure(now, rep)
	}
	switch {
	case failed:
		rep.Outcome, rep.Decision, rep.bind = RefusedFailure, fd, len(p.tiers)
	case rep.missing >= 0:
		rep.Outcome = RefusedMissingKey
		if rep.fail != nil {
			rep.Decision, rep.bind = fd, len(p.tiers)
			tds[len(p.tiers)].report = true
		}
	default:
		p.take(rep, tiers)
	}
	if perTier {
		p.peekUnknown(now, rep)
	}
	if p.notifier != nil {
		p.notify(now, rep)
	}
}

// checkFailure peeks the FailureTier, which p has, for one more failure.
func (p *Policy) checkFailure(now time.Time, rep *Report) (ratekit.Decision, bool) {
	td := &rep.Tiers[len(p.tiers)]
	if td.Missing {
		return ratekit.Decision{}, false
	}
	td.Key = StoreKey(td.Key)
	if rep.fail = p.failure.Limiter(td.Key); rep.fail == nil {
		return ratekit.Decision{}, false
	}
	fd := rep.fail.Peek(now, 1)
	td.Applied, td.Decision = true, fd
	if !fd.Allowed {
		td.report, td.refused = true, true
		return fd, true
	}
	return fd, false
}

// lookup finds the limiter of tier i (t), whose entry td has its key (in
// its stored form) and cost, and asks it for the cost if it applies; a
// MissingReject tier without a key is noted if it is the first.
func (rep *Report) lookup(t *Tier, td *TierDecision, i int) {
	if td.Missing {
		td.Decision = ratekit.Decision{}
		if t.Missing == MissingReject && rep.missing < 0 {
			rep.missing = i
		}
		return
	}
	lkey := td.Key
	if td.Fallback {
		lkey = "\x00" + lkey
	}
	l := t.Limiter(lkey)
	if l == nil || typedNil(l) { // a typed nil exempts the key too, as Per's nil does
		td.Decision = ratekit.Decision{}
		return
	}
	td.Applied, td.report = true, true
	// In place: TakeEach sets the Verdict, so it is not cleared first.
	k := len(rep.asks)
	rep.asks = rep.asks[:k+1]
	rep.asks[k].Limiter, rep.asks[k].N = l, td.Cost
	rep.askTier = append(rep.askTier, i)
}

// take charges the tiers that apply, all or none, and records each tier's
// verdict (on an admission only with tiers).
func (p *Policy) take(rep *Report, tiers bool) {
	if len(rep.asks) == 0 {
		for i := range p.tiers {
			if td := &rep.Tiers[i]; !td.Missing && td.Cost < 0 {
				rep.Outcome, rep.bind = RefusedNever, i
				rep.Decision = ratekit.Decision{RetryAfter: ratekit.Never}
				td.refused = true
				return
			}
		}
		return
	}
	var d ratekit.Decision
	if a := &rep.asks[0]; len(rep.asks) == 1 {
		// TakeEach of one member, written out: its Take is the answer.
		rep.Decision = a.Limiter.Take(rep.Now, a.N)
		rep.bind, d = rep.askTier[0], rep.Decision
		if d.Allowed {
			rep.taken = true
			if tiers {
				rep.Tiers[rep.bind].Decision = d
			}
			return
		}
		a.Verdict = d
	} else {
		var bi int
		d, bi = ratekit.TakeEach(rep.Now, rep.asks)
		rep.Decision = d
		if bi >= 0 { // else no member binds (lookup asks no nil, typed or not, so never)
			rep.bind = rep.askTier[bi]
		}
	}
	if d.Allowed {
		rep.taken = true
		if k := bindInRequests(rep.asks); k >= 0 && rep.askTier[k] != rep.bind {
			rep.Decision, rep.bind = rep.asks[k].Verdict, rep.askTier[k]
		}
		if tiers {
			for k := range rep.asks {
				rep.Tiers[rep.askTier[k]].Decision = rep.asks[k].Verdict
			}
		}
		return
	}
	for k := range rep.asks {
		td := &rep.Tiers[rep.askTier[k]]
		td.Decision = rep.asks[k].Verdict
		td.refused = !td.Decision.Allowed
	}
	switch {
	case d.RetryAfter == ratekit.Never:
		rep.Outcome = RefusedNever
	default:
		rep.Outcome = RefusedRate
	}
}

// bindInRequests returns the index of the ask that binds an admission in
// requests: the one that admits the fewest more requests of this one's
// costs (perRequest of its Remaining), ties to the longest ResetAfter, then
// the first. TakeEach's binding member has the least Remaining, which
// compares numbers across units (30 events left at 10 a request against 43
// requests); with every cost 1 the two agree. An ask of 0 units admits any
// number of such requests, so it binds only when every ask is of 0 units,
// by least Remaining. Every ask admitted: each Verdict is its Take. It
// returns -1 when every ask is of 1 unit: TakeEach's choice is this one.
func bindInRequests(asks []ratekit.Ask) int {
	ones := true
	for k := range asks {
		if asks[k].N != 1 {
			ones = false
			break
		}
	}
	if ones {
		return -1
	}
	bi := 0
	for k := 1; k < len(asks); k++ {
		a, b := &asks[k], &asks[bi]
		if (a.N > 0) != (b.N > 0) {
			if a.N > 0 {
				bi = k
			}
			continue
		}
		ra, rb := perRequest(a.Verdict.Remaining, a.N), perRequest(b.Verdict.Remaining, b.N)
		if ra < rb || ra == rb && a.Verdict.ResetAfter > b.Verdict.ResetAfter {
			bi = k
		}
	}
	return bi
}

// perRequest converts v units of a tier into requests that cost it cost
// units each, rounded down: how many such requests v admits. A cost of 0
// or 1 (or a negative one, which is never admitted) leaves v as it is.
func perRequest(v, cost int) int {
	if cost > 1 {
		return v / cost
	}
	return v
}

// cost returns the cost by which the dialects without a unit field divide
// the units of tier entry i (-1: none) to count requests (perRequest): its
// Cost, or 1 for none. A request that can never be admitted keeps its
// tiers' units, as its problem detail does (no count of such requests
// means anything): 1 then too. A cost of 0 means the tier bounds no count
// of such requests (see bindInRequests).
func (rep *Report) cost(i int) int {
	if i < 0 || rep.Outcome == RefusedNever {
		return 1
	}
	return rep.Tiers[i].Cost
}

// peekUnknown fills in the state of the tiers whose verdict does not say
// what remains: those rolled back or asked with a cost by a refusal, and
// those never asked because the request was refused before the take.
func (p *Policy) peekUnknown(now time.Time, rep *Report) {
	if rep.Outcome == Admitted {
		return // every verdict is the tier's Take: what remains after it
	}
	charged := rep.Outcome == RefusedRate || rep.Outcome == RefusedNever
	for k, a := range rep.asks {
		td := &rep.Tiers[rep.askTier[k]]
		if !charged || !td.refused {
			td.Decision = a.Limiter.Peek(now, 0)
		}
	}
}

func (p *Policy) notify(now time.Time, rep *Report) {
	switch rep.Outcome {
	case RefusedRate:
		for i := range p.tiers {
			if td := &rep.Tiers[i]; td.refused {
				p.notifier.limitReached(now, i, td.Tier, td.Key, td.Decision)
			}
		}
	case RefusedFailure:
		td := &rep.Tiers[len(p.tiers)]
		p.notifier.limitReached(now, len(p.tiers), td.Tier, td.Key, td.Decision)
	}
}

// Settle ends an admitted request: it gives the units of every tier back
// when refund is true (Refund at the instant they were taken; Holders are
// released), and otherwise releases the Holders' units and leaves the
// rate limits charged. It does nothing for a refused request, or a second
// time.
func (p *Policy) Settle(rep *Report, refund bool) {
	if !rep.taken {
		return
	}
	rep.taken = false
	for i := range rep.asks {
		a := &rep.asks[i] // an Ask is 10 words: not copied
		if h, ok := a.Limiter.(ratekit.Holder); ok {
			h.Release(a.N)
		} else if refund {
			a.Limiter.Refund(rep.Now, a.N)
		}
	}
}

// Fail charges the FailureTier one failure for rep's request, if it
// applies and status counts as a failure. Call it once the response status
// is known; the middleware does not call it for a handler that panicked.
func (p *Policy) Fail(rep *Report, status int) {
	if rep.fail == nil || !p.failCounts(status) {
		return
	}
	// The limiter found on arrival may since have been dropped from a keyed
	// store (Keyed's advice is to look a key up again rather than keep its
	// limiter), and a failure charged to it would be lost: look it up again.
	fl := rep.fail
	if l := p.failure.Limiter(rep.Tiers[len(p.tiers)].Key); l != nil {
		fl = l
	}
	fl.Take(rep.Now, 1)
}

// Problem returns the problem detail of rep's refusal, or nil if rep's
// request was admitted.
func (p *Policy) Problem(rep *Report) *Problem {
	if rep.Outcome == Admitted {
		return nil
	}
	pr := &Problem{}
	var detail []byte
	p.problem(rep, pr, &detail)
	pr.Detail = string(detail)
	return pr
}

// problem fills pr for rep's refusal, except Detail, which it appends to
// *detail; pr.ViolatedPolicies is appended to.
func (p *Policy) problem(rep *Report, pr *Problem, detail *[]byte) {
	b := (*detail)[:0]
	d := rep.Decision
	switch rep.Outcome {
	case RefusedMissingKey:
		*pr = Problem{Type: ProblemMissingKey, Title: "Unauthorized", Status: http.StatusUnauthorized, ViolatedPolicies: pr.ViolatedPolicies[:0]}
		b = append(b, "The request carries no key for policy "...)
		b = appendQuoted(b, p.tiers[rep.missing].Name)
		b = append(b, '.')
	case RefusedNever:
		*pr = Problem{Type: ProblemExceedsLimit, Title: "Request exceeds the rate limit", Status: http.StatusRequestEntityTooLarge, ViolatedPolicies: pr.ViolatedPolicies[:0]}
		for i := range p.tiers {
			if td := &rep.Tiers[i]; td.refused && td.Decision.RetryAfter == ratekit.Never {
				pr.ViolatedPolicies = append(pr.ViolatedPolicies, td.Tier)
			}
		}
		td := &rep.Tiers[rep.bind]
		if td.Cost < 0 {
			b = append(b, "The request has a negative cost ("...)
			b = strconv.AppendInt(b, int64(td.Cost), 10)
			b = append(b, ")."...)
		} else {
			b = append(b, "The request costs "...)
			b = strconv.AppendInt(b, int64(td.Cost), 10)
			b = append(b, " units; policy "...)
			b = appendQuoted(b, td.Tier)
			b = append(b, " admits at most "...)
			b = strconv.AppendInt(b, int64(td.Decision.Limit), 10)
			b = append(b, " at once."...)
		}
	default:
		retry := retrySeconds(d.RetryAfter)
		*pr = Problem{Type: p.problemType, Title: "Rate limit exceeded", Status: http.StatusTooManyRequests, RetryAfter: retry, ViolatedPolicies: pr.ViolatedPolicies[:0]}
		if rep.Outcome == RefusedFailure {
			if pr.Type == "" {
				pr.Type = ProblemAbnormalUsage
			}
			pr.ViolatedPolicies = append(pr.ViolatedPolicies, p.failure.Name)
			b = p.appendRateDetail(b, rep.bind)
		} else {
			if pr.Type == "" {
				pr.Type = ProblemQuotaExceeded
			}
			for i := range p.tiers {
				if rep.Tiers[i].refused {
					pr.ViolatedPolicies = append(pr.ViolatedPolicies, rep.Tiers[i].Tier)
				}
			}
			b = p.appendRateDetail(b, rep.bind)
		}
		b = append(b, " Retry in "...)
		b = strconv.AppendInt(b, retry, 10)
		if retry == 1 {
			b = append(b, " second."...)
		} else {
			b = append(b, " seconds."...)
		}
	}
	*detail = b
}

// appendRateDetail appends the first sentence of the detail of a 429
// bound by tier i (len(p.tiers): the FailureTier).
func (p *Policy) appendRateDetail(b []byte, i int) []byte {
	switch {
	case i == len(p.tiers) && p.failure.Detail != "":
		return append(b, p.failure.Detail...)
	case i == len(p.tiers):
		return append(b, "Too many failed requests from this client."...)
	case p.tiers[i].Detail != "":
		return append(b, p.tiers[i].Detail...)
	}
	b = append(b, "Too many requests for policy "...)
	b = appendQuoted(b, p.tiers[i].Name)
	return append(b, '.')
}

// rateProblemPrefixes returns the rateProblemPrefix of a 429 bound by
// each tier, then by the FailureTier.
func (p *Policy) rateProblemPrefixes() [][]byte {
	n := len(p.tiers)
	if p.failure != nil {
		n++
	}
	out := make([][]byte, n)
	for i := range out {
		typ := p.problemType
		switch {
		case typ != "":
		case i == len(p.tiers):
			typ = ProblemAbnormalUsage
		default:
			typ = ProblemQuotaExceeded
		}
		out[i] = rateProblemPrefix(typ, string(p.appendRateDetail(nil, i)))
	}
	return out
}

// appendQuoted appends s in double quotes, as %q would for a tier name
// (letters, digits, '-', '_', '.': nothing to escape).
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
