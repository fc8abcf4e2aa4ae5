package httplimit

import (
	"fmt"
	"net/http"
	"net/textproto"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

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
	// required. It is passed the key's stored form, StoreKey(key): keys
	// longer than MaxKeyLen arrive as their digest. It may return nil to exempt a key (an internal token): the
	// tier then does not apply to the request. A typed nil (a nil
	// pointer in a ratekit.Limiter) exempts it too. It is called once per
	// request; it must be safe for concurrent use and should not allocate.
	Limiter func(key string) ratekit.Limiter

	// Detail is the first sentence of the problem detail of a 429 this tier
	// causes, e.g. "Too many requests for this organization." The
	// middleware appends " Retry in N seconds." Empty: a sentence naming the
	// tier.
	Detail string

	// Unit is the quota unit of the tier's limits: "content-bytes" for a
	// tier whose Cost is the body size. Empty: requests
	// ("concurrent-requests" for a concurrency limit). It must be a token
	// of letters, digits and '-'. The IETF dialect sends a unit of the
	// draft's registry (requests, content-bytes, concurrent-requests) as
	// qu, and any other ("events") as the vendor parameter ratekit-unit,
	// since qu admits only registered units. The dialects without a unit
	// field count the tier in requests instead (see Dialect).
	Unit string

	// Cost returns how many units a request takes from this tier: the
	// size of an upload for a bytes tier beside a request tier that costs
	// 1. nil: Config.Cost. Costs are taken all or none across tiers, with
	// the rules of Config.Cost. The dialects without a unit field count
	// the tier in requests of this cost (see Dialect).
	Cost func(r *http.Request) int
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
	// (ratekit.TakeEach): a request that one tier refuses is charged to none.
	// Put the tier most likely to refuse first; it makes rollbacks rare.
	Tiers []Tier

	// Failure, if set, is a limit charged by failed responses (see
	// FailureTier).
	Failure *FailureTier

	// Cost returns how many units a request takes from every tier without
	// a Cost of its own: the number of events in a batch, the size of an
	// upload. nil: 1. A cost of
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
	// ProblemQuotaExceeded for a tier's refusal, ProblemAbnormalUsage for
	// the FailureTier's.
	ProblemType string

	// Problem writes a refusal (429, 413, or 401 for a missing key). The
	// rate-limit headers and Retry-After are already set. p is the
	// refusal's own (a new Problem each call), so the func may keep it.
	// nil: the same output as WriteProblem, written from pooled buffers
	// without a Problem.
	Problem func(w http.ResponseWriter, r *http.Request, p *Problem)

	// OnDecision, if set, is called once per request after the decision,
	// before the handler runs or the refusal is written, for logs and
	// metrics. d is the binding decision (zero when no tier applied, or on a
	// 401 for a missing key when there is no FailureTier); tiers has an entry
	// per Tier in order, then one for the FailureTier if configured. tiers
	// is reused: it is valid only during the call. It is called from the
	// request's goroutine, concurrently for concurrent requests.
	OnDecision func(r *http.Request, d ratekit.Decision, tiers []TierDecision)

	// TierDecisionsOnRefusal spares OnDecision the Peek of 0 units that
	// fills TierDecision.Decision, on a refused request, for each tier that
	// did not refuse it: with it set, those tiers carry what the all-or-none
	// take already knew (their Take before the rollback, or a Peek of their
	// Cost), unless a dialect needs their state (Sanity, IETF). Admitted
	// requests cost no Peek either way. Set it when OnDecision only counts
	// outcomes, as metrics do.
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

	// PartitionKeys adds the IETF pk parameter (a Byte Sequence) to each
	// tier's RateLimit-Policy and RateLimit items, so that a client can tell
	// the partitions of one policy apart. It never discloses a key: pk is
	// the first 12 bytes of HMAC-SHA256(PartitionKeySecret, tier name, 0,
	// StoreKey(key)). Off by default.
	PartitionKeys bool

	// PartitionKeySecret keys the pk hash; at least 16 bytes. nil: 32
	// random bytes drawn by New, so pk values differ between processes
	// (and restarts); set it to make them agree across a fleet.
	PartitionKeySecret []byte
}

// TierDecision is what one tier decided about a request, as passed to
// Config.OnDecision.
type TierDecision struct {
	// Tier is the tier's Name.
	Tier string
	// Key is the key found for the tier in its stored form (StoreKey: a
	// digest for a key longer than MaxKeyLen), "" if none.
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
	// Cost is the units asked of the tier: set by the transport before
	// Policy.Decide (the middleware sets Tier.Cost's, Config.Cost's or 1).
	Cost int
	// Decision is the tier's state: for an admitted request, its Take
	// (what remains after it). For a refused one, the tier's denial if it
	// refused (Refused reports it), and for the others, when per-tier
	// state is needed (the Sanity or IETF dialect, or OnDecision without
	// Config.TierDecisionsOnRefusal), a Peek of
	// 0 units; otherwise their Take before the rollback (Allowed) or a
	// Peek of their Cost. For the FailureTier, its Peek of one more
	// failure.
	Decision ratekit.Decision

	index   int  // into Middleware.tierHeaders
	report  bool // listed in per-policy headers
	refused bool // this tier refused the request: Decision is its refusal
}

// Middleware is net/http middleware that enforces the limits of its Config
// on every request and reports them in response headers. Build it with New
// and wrap handlers with Wrap. It is safe for concurrent use.
type Middleware struct {
	pol         *Policy
	cost        func(*http.Request) int // Config.Cost, for tiers without their own
	dialect     Dialect
	shadow      bool
	refund      func(int) bool
	clock       clock.Clock
	problem     func(http.ResponseWriter, *http.Request, *Problem) // nil: the built-in writer
	onDecision  func(*http.Request, ratekit.Decision, []TierDecision)
	tierHeaders []tierHeader              // per tier, then the failure tier
	rateProblem [][]byte                  // per tier, then the failure tier: its 429's rateProblemPrefix
	refusals    []atomic.Pointer[refusal] // per tier, then the failure tier: its last 429; nil: not cached
	perTier     bool                      // per-tier Decisions are needed on every request
	// tierDecisions: something reads the tiers' Decisions of an admitted
	// request (OnDecision, the per-policy dialects)
	tierDecisions bool
	pk            *pkHasher // nil: no partition keys
	pool          sync.Pool // *scratch
}

type tierHeader struct {
	limit, remaining string // Sanity header keys
	qu               string // the IETF qu parameter, "" for requests or none
	vendorUnit       string // a unit outside the draft's registry, sent as ratekit-unit
}

// scratch is the per-request working memory, pooled so that a request
// allocates none of it.
type scratch struct {
	rep     *Report
	hdr     headerBuf
	problem Problem
	detail  []byte
	body    []byte
	pk      pkState
	rec     recorder
	link    link
	hit     *refusal // the cached 429 this request is refused with
	keep    bool     // cache the 429 this request is refused with, under rkey
	rkey    refusalKey
}

// New returns a Middleware for cfg, or an error wrapping
// ratekit.ErrInvalidConfig that names the problem: no tiers, a tier without
// a Name or Limiter, a duplicate or malformed Name, a FailureTier without
// Key or Limiter, an unknown Missing value, or an unknown or contradictory
// Dialect.
func New(cfg Config) (*Middleware, error) {
	pol, err := NewPolicy(cfg)
	if err != nil {
		return nil, err
	}
	m := &Middleware{
		pol:        pol,
		cost:       cfg.Cost,
		dialect:    cfg.Headers,
		shadow:     cfg.Shadow,
		refund:     cfg.Refund,
		clock:      core.Clock(cfg.Clock),
		problem:    cfg.Problem,
		onDecision: cfg.OnDecision,
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
	for _, t := range pol.tiers {
		m.tierHeaders = append(m.tierHeaders, newTierHeader(t.Name, t.Unit))
	}
	if f := pol.failure; f != nil {
		m.tierHeaders = append(m.tierHeaders, newTierHeader(f.Name, ""))
	}
	if m.problem == nil {
		m.rateProblem = pol.rateProblemPrefixes()
	}
	if m.cacheableRefusal() {
		m.refusals = make([]atomic.Pointer[refusal], len(m.tierHeaders))
	}
	if cfg.PartitionKeys {
		if m.pk, err = newPKHasher(cfg.PartitionKeySecret); err != nil {
			return nil, err
		}
	}
	m.perTier = m.dialect&perPolicy != 0 || m.onDecision != nil && !cfg.TierDecisionsOnRefusal
	m.tierDecisions = m.dialect&perPolicy != 0 || m.onDecision != nil
	m.pool.New = func() any { return &scratch{rep: pol.NewReport()} }
	return m, nil
}

// Policy returns the transport-neutral core of m.
func (m *Middleware) Policy() *Policy { return m.pol }

// Refused reports whether this tier refused the request.
func (td *TierDecision) Refused() bool { return td.refused }

func newTierHeader(name, unit string) tierHeader {
	h := tierHeader{
		limit:     textproto.CanonicalMIMEHeaderKey("X-RateLimit-Limit-" + name),
		remaining: textproto.CanonicalMIMEHeaderKey("X-RateLimit-Remaining-" + name),
	}
	switch unit {
	case "", "requests":
	case "content-bytes", "concurrent-requests":
		h.qu = unit
	default:
		h.vendorUnit = unit
	}
	return h
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
// tier's units, or refund). A nil that get returns, typed or not (a Keyed
// whose factory returns nil for a key it does not know; a ratekit.Limiter
// holding a nil pointer), becomes a nil ratekit.Limiter: the tier does not
// apply to that key. The check allocates nothing, and for a pointer L, the
// usual case, it is one comparison.
func Per[L ratekit.Limiter](get func(key string) L) func(key string) ratekit.Limiter {
	switch reflect.TypeFor[L]().Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Map, reflect.Func, reflect.UnsafePointer:
		// A value of these kinds is one pointer word, nil when the word
		// is: reading it is one load and compare. (Comparing any(l) with
		// any of the zero L is as exact but calls runtime.efaceeq, which
		// measured slower, and panics for maps and funcs.)
		return func(key string) ratekit.Limiter {
			l := get(key)
			if *(*unsafe.Pointer)(unsafe.Pointer(&l)) == nil {
				return nil
			}
			return l
		}
	case reflect.Interface, reflect.Slice:
		// An interface may hold a nil of any kind, and a slice is three
		// words: ask reflect. Nothing allocates for an interface L (a
		// slice allocates to become a ratekit.Limiter in any case).
		return func(key string) ratekit.Limiter {
			l := ratekit.Limiter(get(key))
			if isNil(l) {
				return nil
			}
			return l
		}
	}
	// A struct, array or other value kind is never nil.
	return func(key string) ratekit.Limiter { return get(key) }
}

// typedNil reports whether l, not nil, holds a nil pointer, map, func,
// slice or chan, as isNil does, reflecting only when the interface's data
// word is nil (as for every typed nil; see ratekit.All).
func typedNil(l ratekit.Limiter) bool {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&l))[1] == nil && isNil(l)
}

// isNil reports whether l is nil or holds a nil pointer, map, func, slice
// or chan. It allocates nothing: l is already an interface.
func isNil(l ratekit.Limiter) bool {
	if l == nil {
		return true
	}
	switch v := reflect.ValueOf(l); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Slice, reflect.Chan, reflect.UnsafePointer:
		return v.IsNil()
	}
	return false
}

// Shared returns a Tier.Limiter that gives every key the same limiter l: a
// system-wide ceiling.
func Shared(l ratekit.Limiter) func(key string) ratekit.Limiter {
	return func(string) ratekit.Limiter { return l }
}
