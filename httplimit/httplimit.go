package httplimit

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sync"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Missing says what a Tier does with a request in which neither its Key nor
// its Fallback finds a key.
type Missing int

const (
	// MissingSkip (the default) lets the request through this tier
	// unlimited; the other tiers still apply. Pair it with a per-IP tier so
	// that anonymous traffic is limited somewhere.
	MissingSkip Missing = iota
	// MissingReject refuses the request with 401 and a problem+json body
	// (ProblemMissingKey) before any tier is charged. The 401 counts as a
	// failure for the FailureTier, as a 401 from the handler would.
	MissingReject
)

// Tier is one layer of limits on a request: per org, per token, per IP, or
// one limit shared by all (a nil Key). Every request is charged to every
// tier that applies to it, all or none.
type Tier struct {
	// Name names the tier's policy in headers (Sanity, IETF), problem
	// details, hooks and errors. It is required, unique among the tiers,
	// and made of letters, digits, '-', '_' and '.' (at most 64).
	Name string

	// Key finds the request's key for this tier. nil: every request has the
	// key "", so the tier is one limit shared by all requests.
	Key KeyFunc

	// Fallback, if set, is asked when Key finds no key: a per-token tier
	// that falls back to the client IP for anonymous requests. A key it
	// finds is passed to Limiter prefixed with a NUL byte, which no header
	// value can contain, so a client cannot send a token that names the
	// fallback key of someone else (a token of "10.0.0.5" does not share the
	// limit of the address 10.0.0.5). TierDecision.Key holds it unprefixed.
	Fallback KeyFunc

	// Missing says what happens when neither Key nor Fallback finds a key.
	Missing Missing

	// Limiter returns the limiter of a key: usually a keyed store's Get
	// wrapped by Per, or one limiter for all keys wrapped by Shared. It is
	// required. It may return nil to exempt a key (an internal token): the
	// tier then does not apply to the request. It is called once per
	// request; it must be safe for concurrent use and should not allocate.
	Limiter func(key string) ratekit.Limiter

	// Detail is the first sentence of the problem detail of a 429 this tier
	// causes, e.g. "Too many requests for this organization." The
	// middleware appends " Retry in N seconds." Empty: a sentence naming the
	// tier.
	Detail string

	// Unit is the IETF quota unit of the tier's limits, sent as qu when not
	// empty: "content-bytes" for a tier whose Cost is the body size.
	// Empty: requests ("concurrent-requests" for a concurrency limit). It
	// must be a token of letters, digits and '-'.
	Unit string
}

// FailureTier is a limit charged by responses rather than requests: every
// response whose status Counts (by default each 401) takes one unit from
// the limiter of the request's key, usually the client IP. Once the key has
// no unit left, every request with that key is refused with 429 before it
// reaches the handler or any Tier is charged, valid credentials or not: a
// client that retries a bad API key, or a credential-stuffing scanner, is
// blocked per IP while valid keys elsewhere are not (the mail API's
// "repeated 401s will trip an IP block").
//
// The check up front is a Peek for one unit; the charge is a Take of one
// unit after the handler returns, at the instant the request arrived. A
// handler that panics is not charged. Two failures racing for the last unit
// may both be served: the limit bounds failures to within the number of
// concurrent requests of one key.
type FailureTier struct {
	// Name names the policy, as Tier.Name; it must differ from every Tier's.
	Name string
	// Key finds the key, usually a ClientIP func. Required. A request it
	// finds no key in is neither checked nor charged.
	Key KeyFunc
	// Limiter returns the limiter of a key, as Tier.Limiter. Required.
	Limiter func(key string) ratekit.Limiter
	// Counts reports whether a response status is a failure. nil: only 401
	// Unauthorized. The middleware's own 429 and 413 answers never count;
	// its 401 for a missing key (MissingReject) counts if Counts(401).
	Counts func(status int) bool
	// Detail is the first sentence of the problem detail of the 429 this
	// tier causes. Empty: "Too many failed requests from this client."
	Detail string
}

// Config configures a Middleware. Only Tiers (or Failure) is required.
type Config struct {
	// Tiers are the limits every request is charged to, all or none
	// (ratekit.TakeAll): a request that one tier refuses is charged to none.
	// Put the tier most likely to refuse first; it makes rollbacks rare.
	Tiers []Tier

	// Failure, if set, is a limit charged by failed responses (see
	// FailureTier).
	Failure *FailureTier

	// Cost returns how many units a request takes from every tier: the
	// number of events in a batch, the size of an upload. nil: 1. A cost of
	// 0 is admitted and takes nothing; a negative cost, like a cost larger
	// than a tier admits at once, can never be admitted and is answered 413.
	// Return 0 for requests that should not count, such as CORS preflights.
	Cost func(r *http.Request) int

	// Headers selects the rate-limit header dialects (see Dialect). The zero
	// value is XRateLimit.
	Headers Dialect

	// Shadow computes every decision, charges admitted requests, sets
	// headers and calls the hooks, but never refuses a request: the would-be
	// refusals are served. Use it to roll limits out and watch OnDecision
	// before enforcing them. Because shadow mode charges exactly what
	// enforcement would (admitted requests take their units, would-be
	// refusals take none), the would-be refusals it reports are the ones
	// enforcement would make, not an estimate. No Retry-After is sent.
	Shadow bool

	// Refund, if set, gives back the units of an admitted request whose
	// response status it accepts: e.g. 5xx, so that a client is not charged
	// for the server's failures. Units of concurrency tiers are released
	// either way when the handler returns.
	Refund func(status int) bool

	// Clock is read once per request for the instant every limit is judged
	// at. nil: the real clock. Tests pass a *clock.Mock.
	Clock clock.Clock

	// ProblemType is the problem "type" URI of a 429. Empty:
	// ProblemQuotaExceeded.
	ProblemType string

	// Problem writes a refusal (429, 413, or 401 for a missing key). The
	// rate-limit headers and Retry-After are already set. nil: WriteProblem.
	Problem func(w http.ResponseWriter, r *http.Request, p *Problem)

	// OnDecision, if set, is called once per request after the decision,
	// before the handler runs or the refusal is written, for logs and
	// metrics. d is the binding decision (zero when no tier applied, or on a
	// 401 for a missing key when there is no FailureTier); tiers has an entry
	// per Tier in order, then one for the FailureTier if configured. tiers
	// is reused: it is valid only during the call. It is called from the
	// request's goroutine, concurrently for concurrent requests.
	OnDecision func(r *http.Request, d ratekit.Decision, tiers []TierDecision)

	// TierDecisionsOnRefusal spares OnDecision the Peek per tier that fills
	// TierDecision.Decision when the tier did not refuse: with it set, only
	// the tiers that refused a request carry a Decision (their refusal), and
	// the others a zero one, unless a dialect needs them all (Sanity, IETF).
	// Set it when OnDecision only counts outcomes, as metrics do.
	TierDecisionsOnRefusal bool

	// OnLimitReached, if set, is called when a key of a tier is first
	// refused: once per tier and key per episode, an episode lasting until
	// the key's limit is expected back at full capacity. It is called from
	// the request's goroutine, synchronously (hand slow work off), and
	// concurrently for different keys. Requests
	// that can never be admitted (413) are not limits being reached and are
	// not reported. Deduplication uses a fixed table of 1024 slots, so
	// memory does not grow with keys; when more keys than that are refused
	// at once a notice may repeat, but none is lost. It is independent of
	// the OnLimitReached of the fixedwindow and rolling packages, which know
	// the window but not the key.
	OnLimitReached func(policy, key string, d ratekit.Decision)
}

// TierDecision is what one tier decided about a request, as passed to
// Config.OnDecision.
type TierDecision struct {
	// Tier is the tier's Name.
	Tier string
	// Key is the key found for the tier, "" if none.
	Key string
	// Fallback reports that Key came from the tier's Fallback.
	Fallback bool
	// Missing reports that no key was found (the tier's Missing applied).
	Missing bool
	// Applied reports that the tier had a key and a limiter: Decision is
	// meaningful.
	Applied bool
	// Failure marks the FailureTier's entry.
	Failure bool
	// Decision is the tier's state after the request: for an admitted
	// request, a Peek of 0 units after the take (what remains); for a
	// refused one, the tier's refusal if it refused (a Peek of the request's
	// cost), or a Peek of 0 units if it did not. For the FailureTier, its
	// Peek of one more failure. Peeks run after the all-or-none take, so
	// under concurrent requests they may reflect others' takes too.
	// Per-tier values are computed only when the Sanity or IETF dialect or
	// OnDecision needs them (see Config.TierDecisionsOnRefusal), and on every
	// refusal.
	Decision ratekit.Decision

	index  int  // into Middleware.tierHeaders
	report bool // listed in per-policy headers
}

// Middleware is net/http middleware that enforces the limits of its Config
// on every request and reports them in response headers. Build it with New
// and wrap handlers with Wrap. It is safe for concurrent use.
type Middleware struct {
	tiers       []Tier
	failure     *FailureTier
	failCounts  func(int) bool
	cost        func(*http.Request) int
	dialect     Dialect
	shadow      bool
	refund      func(int) bool
	clock       clock.Clock
	problemType string
	problem     func(http.ResponseWriter, *http.Request, *Problem)
	onDecision  func(*http.Request, ratekit.Decision, []TierDecision)
	notifier    *notifier
	tierHeaders []tierHeader // per tier, then the failure tier
	perTier     bool         // per-tier Decisions are needed on every request
	pool        sync.Pool    // *scratch
}

type tierHeader struct {
	limit, remaining string // Sanity header keys
	unit             string
}

// scratch is the per-request working memory, pooled so that a request
// allocates none of it.
type scratch struct {
	members []ratekit.Limiter
	tiers   []TierDecision
	hdr     headerBuf
}

// New returns a Middleware for cfg, or an error wrapping
// ratekit.ErrInvalidConfig that names the problem: no tiers, a tier without
// a Name or Limiter, a duplicate or malformed Name, a FailureTier without
// Key or Limiter, an unknown Missing value, or an unknown or contradictory
// Dialect.
func New(cfg Config) (*Middleware, error) {
	if len(cfg.Tiers) == 0 && cfg.Failure == nil {
		return nil, core.Invalid("httplimit", "no tiers")
	}
	m := &Middleware{
		failure:     cfg.Failure,
		cost:        cfg.Cost,
		dialect:     cfg.Headers,
		shadow:      cfg.Shadow,
		refund:      cfg.Refund,
		clock:       core.Clock(cfg.Clock),
		problemType: cfg.ProblemType,
		problem:     cfg.Problem,
		onDecision:  cfg.OnDecision,
	}
	if m.dialect == 0 {
		m.dialect = XRateLimit
	}
	if m.dialect&^(allDialects|NoHeaders) != 0 {
		return nil, core.Invalid("httplimit", "unknown header dialect bits %#x", uint16(m.dialect&^(allDialects|NoHeaders)))
	}
	if m.dialect&NoHeaders != 0 && m.dialect != NoHeaders {
		return nil, core.Invalid("httplimit", "NoHeaders combined with other dialects")
	}
	if x := m.dialect & xrlMask; x&(x-1) != 0 {
		return nil, core.Invalid("httplimit", "more than one of XRateLimit, XRateLimitUnix, XRateLimitRFC3339: they share header names")
	}
	if m.problemType == "" {
		m.problemType = ProblemQuotaExceeded
	}
	if m.problem == nil {
		m.problem = WriteProblem
	}
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
		m.tiers = append(m.tiers, cfg.Tiers[i])
		m.tierHeaders = append(m.tierHeaders, newTierHeader(t.Name, t.Unit))
	}
	if f := cfg.Failure; f != nil {
		if err := checkName(f.Name); err != nil {
			return nil, fmt.Errorf("%w (failure tier)", err)
		}
		if f.Key == nil || f.Limiter == nil {
			return nil, core.Invalid("httplimit", "failure tier %q needs Key and Limiter", f.Name)
		}
		m.failCounts = f.Counts
		if m.failCounts == nil {
			m.failCounts = func(status int) bool { return status == http.StatusUnauthorized }
		}
		m.tierHeaders = append(m.tierHeaders, newTierHeader(f.Name, ""))
	}
	if cfg.OnLimitReached != nil {
		m.notifier = newNotifier(cfg.OnLimitReached, m.clock.Now())
	}
	m.perTier = m.dialect&perPolicy != 0 || m.onDecision != nil && !cfg.TierDecisionsOnRefusal
	nt := len(m.tiers)
	m.pool.New = func() any {
		return &scratch{
			members: make([]ratekit.Limiter, 0, nt),
			tiers:   make([]TierDecision, len(m.tierHeaders)),
		}
	}
	return m, nil
}

func newTierHeader(name, unit string) tierHeader {
	return tierHeader{
		limit:     textproto.CanonicalMIMEHeaderKey("X-RateLimit-Limit-" + name),
		remaining: textproto.CanonicalMIMEHeaderKey("X-RateLimit-Remaining-" + name),
		unit:      unit,
	}
}

func validName(name string) error {
	if name == "" || len(name) > 64 {
		return core.Invalid("httplimit", "tier name %q must be 1 to 64 characters", name)
	}
	for _, c := range []byte(name) {
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return core.Invalid("httplimit", "tier name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	return nil
}

func validUnit(unit string) error {
	for _, c := range []byte(unit) {
		if !isAlnum(c) && c != '-' {
			return fmt.Errorf("quota unit %q: only letters, digits and '-' are allowed", unit)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Per adapts a function from key to a concrete limiter type, typically the
// Get method of a ratekit.Keyed store, to Tier.Limiter:
//
//	orgs := ratekit.NewKeyed(newOrgLimiter, ratekit.KeyedConfig{MaxKeys: 100_000})
//	tier := httplimit.Tier{Name: "org", Key: orgOf, Limiter: httplimit.Per(orgs.Get)}
//
// The middleware looks each key up once per request, as Keyed asks, and
// uses the limiter only while the request lasts (to release a concurrency
// tier's units, or refund). get must not return a nil pointer: wrapped in
// the interface it would not be nil, and calling it would panic. (Return a
// nil ratekit.Limiter from a func of your own to exempt a key.)
func Per[L ratekit.Limiter](get func(key string) L) func(key string) ratekit.Limiter {
	return func(key string) ratekit.Limiter { return get(key) }
}

// Shared returns a Tier.Limiter that gives every key the same limiter l: a
// system-wide ceiling.
func Shared(l ratekit.Limiter) func(key string) ratekit.Limiter {
	return func(string) ratekit.Limiter { return l }
}

// Wrap returns next wrapped in the middleware. m.Wrap is a
// func(http.Handler) http.Handler, as routers take.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return &handler{m: m, next: next}
}

type handler struct {
	m    *Middleware
	next http.Handler
}

// outcome is what the middleware does with a request.
type outcome int

const (
	serve       outcome = iota
	refuseRate          // 429: a tier refused
	refuseFail          // 429: the FailureTier refused
	refuseNever         // 413: a tier can never admit the request
	refuseKey           // 401: a MissingReject tier found no key
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := h.m
	now := m.clock.Now() // the one reading of the clock for this request
	n := 1
	if m.cost != nil {
		n = m.cost(r)
	}
	s := m.pool.Get().(*scratch)
	s.members = s.members[:0]
	tds := s.tiers
	clear(tds)

	// The FailureTier is checked first: a blocked client is refused before
	// its keys are even looked up.
	var fl ratekit.Limiter
	var fd ratekit.Decision
	out := serve
	if f := m.failure; f != nil {
		td := &tds[len(m.tiers)]
		td.Tier, td.Failure, td.index = f.Name, true, len(m.tiers)
		if key, ok := f.Key(r); ok {
			td.Key = key
			if fl = f.Limiter(key); fl != nil {
				fd = fl.Peek(now, 1)
				td.Applied, td.Decision = true, fd
				if !fd.Allowed {
					out, td.report = refuseFail, true
				}
			}
		} else {
			td.Missing = true
		}
	}

	// Find every tier's key and limiter.
	missing := -1
	for i := range m.tiers {
		t := &m.tiers[i]
		td := &tds[i]
		td.Tier, td.index = t.Name, i
		key, ok := "", true
		if t.Key != nil {
			key, ok = t.Key(r)
		}
		if !ok && t.Fallback != nil {
			if key, ok = t.Fallback(r); ok {
				td.Fallback = true
			}
		}
		if !ok {
			td.Missing = true
			if t.Missing == MissingReject && missing < 0 {
				missing = i
			}
			continue
		}
		td.Key = key
		lkey := key
		if td.Fallback {
			lkey = "\x00" + key
		}
		l := t.Limiter(lkey)
		if l == nil {
			continue
		}
		td.Applied, td.report = true, true
		s.members = append(s.members, l)
	}
	if out == serve && missing >= 0 {
		out = refuseKey
	}

	// Decide. Only a request that nothing refused so far is charged.
	var d ratekit.Decision
	taken := false
	switch out {
	case refuseFail:
		d = fd
	case refuseKey:
		if fl != nil {
			d = fd
			tds[len(m.tiers)].report = true
		}
	default:
		if len(s.members) > 0 {
			d = ratekit.TakeAll(now, n, s.members...)
			taken = d.Allowed
			if !d.Allowed {
				out = refuseRate
				if d.RetryAfter == ratekit.Never {
					out = refuseNever
				}
			}
		} else if n < 0 {
			out, d = refuseNever, ratekit.Decision{RetryAfter: ratekit.Never}
		}
	}

	// Per-tier decisions: for reporting when asked, and on a refusal to find
	// which tiers refused.
	bind := -1 // the refusing tier with the longest RetryAfter
	if m.perTier || out == refuseRate || out == refuseNever {
		k := 0
		for i := range m.tiers {
			td := &tds[i]
			if !td.Applied {
				continue
			}
			l := s.members[k]
			k++
			if out == refuseRate || out == refuseNever {
				if p := l.Peek(now, n); !p.Allowed {
					td.Decision = p
					if bind < 0 || p.RetryAfter > tds[bind].Decision.RetryAfter {
						bind = i
					}
					continue
				}
			}
			if m.perTier {
				td.Decision = l.Peek(now, 0)
			}
		}
	}

	if m.notifier != nil {
		switch out {
		case refuseRate:
			for i := range m.tiers {
				if td := &tds[i]; td.Applied && !td.Decision.Allowed && td.Decision.RetryAfter > 0 {
					m.notifier.limitReached(now, i, td.Tier, td.Key, td.Decision)
				}
			}
		case refuseFail:
			td := &tds[len(m.tiers)]
			m.notifier.limitReached(now, len(m.tiers), td.Tier, td.Key, td.Decision)
		}
	}

	// Headers describe the binding decision: the tiers' when they were
	// asked, the FailureTier's when it refused or when a 401 for a missing
	// key is all there is to say. A request that no limit applied to gets
	// none.
	refused := out != serve && !m.shadow
	hasPolicy := len(s.members) > 0 && out != refuseFail && out != refuseKey ||
		fl != nil && (out == refuseFail || out == refuseKey)
	if hasPolicy {
		s.hdr.reset()
		m.writeHeaders(&s.hdr, now, d, tds, refused && (out == refuseRate || out == refuseFail))
		s.hdr.flush(w.Header())
	}

	if m.onDecision != nil {
		m.onDecision(r, d, tds)
	}

	if refused {
		p := m.newProblem(out, n, d, tds, bind)
		m.problem(w, r, p)
		if out == refuseKey && fl != nil && m.failCounts(http.StatusUnauthorized) {
			m.chargeFailure(fl, now, tds[len(m.tiers)].Key)
		}
		m.pool.Put(s)
		return
	}

	// Serve. A recorder captures the status only when something needs it.
	var rec *recorder
	rw := w
	if fl != nil || m.refund != nil && taken {
		rec = &recorder{ResponseWriter: w}
		rw = rec
	}
	done := false
	defer func() {
		// Runs on panic too: concurrency units go back, but a request whose
		// handler panicked is neither refunded nor counted as a failure.
		if taken {
			if done && m.refund != nil && m.refund(rec.code()) {
				for _, l := range s.members {
					if h, ok := l.(ratekit.Holder); ok {
						h.Release(n)
					} else {
						l.Refund(now, n)
					}
				}
			} else {
				ratekit.ReleaseAll(n, s.members...)
			}
		}
		if done && fl != nil && m.failCounts(rec.code()) {
			m.chargeFailure(fl, now, tds[len(m.tiers)].Key)
		}
		m.pool.Put(s)
	}()
	h.next.ServeHTTP(rw, r)
	done = true
}

// chargeFailure takes one unit from the FailureTier's limiter of key, as it
// is now: the limiter found when the request arrived (fl) may since have
// been dropped from a keyed store (ratekit.Keyed's advice is to look a key up
// again rather than keep its limiter), and a failure charged to it would be
// lost. The lookup costs only requests that failed.
func (m *Middleware) chargeFailure(fl ratekit.Limiter, now time.Time, key string) {
	if l := m.failure.Limiter(key); l != nil {
		fl = l
	}
	fl.Take(now, 1)
}

// newProblem builds the problem detail of a refusal. bind is the index of
// the refusing tier with the longest RetryAfter, or -1.
func (m *Middleware) newProblem(out outcome, n int, d ratekit.Decision, tds []TierDecision, bind int) *Problem {
	switch out {
	case refuseKey:
		name := ""
		for i := range m.tiers {
			if tds[i].Missing && m.tiers[i].Missing == MissingReject {
				name = m.tiers[i].Name
				break
			}
		}
		return &Problem{
			Type: ProblemMissingKey, Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: fmt.Sprintf("The request carries no key for policy %q.", name),
		}
	case refuseNever:
		p := &Problem{Type: ProblemExceedsLimit, Title: "Request exceeds the rate limit", Status: http.StatusRequestEntityTooLarge}
		name, limit := d.Policy, d.Limit
		if bind >= 0 {
			name, limit = tds[bind].Tier, tds[bind].Decision.Limit
		}
		for i := range m.tiers {
			if td := &tds[i]; td.Applied && !td.Decision.Allowed && td.Decision.RetryAfter == ratekit.Never {
				p.ViolatedPolicies = append(p.ViolatedPolicies, td.Tier)
			}
		}
		if n < 0 {
			p.Detail = fmt.Sprintf("The request has a negative cost (%d).", n)
		} else {
			p.Detail = fmt.Sprintf("The request costs %d units; policy %q admits at most %d at once.", n, name, limit)
		}
		return p
	}
	retry := retrySeconds(d.RetryAfter)
	p := &Problem{Type: m.problemType, Title: "Rate limit exceeded", Status: http.StatusTooManyRequests, RetryAfter: retry}
	detail := ""
	if out == refuseFail {
		f := &tds[len(m.tiers)]
		p.ViolatedPolicies = []string{f.Tier}
		detail = m.failure.Detail
		if detail == "" {
			detail = "Too many failed requests from this client."
		}
	} else {
		for i := range m.tiers {
			if td := &tds[i]; td.Applied && !td.Decision.Allowed {
				p.ViolatedPolicies = append(p.ViolatedPolicies, td.Tier)
			}
		}
		if bind >= 0 {
			detail = m.tiers[bind].Detail
			if detail == "" {
				detail = fmt.Sprintf("Too many requests for policy %q.", m.tiers[bind].Name)
			}
		} else {
			detail = "Too many requests."
		}
	}
	unit := "seconds"
	if retry == 1 {
		unit = "second"
	}
	p.Detail = fmt.Sprintf("%s Retry in %d %s.", detail, retry, unit)
	return p
}
