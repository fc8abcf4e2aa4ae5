package main

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
)

// The seeds' numbers. Where a seed leaves a number to the plan (Rollbar's
// limits, Sentry's, the mail API's failure ceiling), the demo picks one small
// enough to be reached in a few seconds.
const (
	sanityPerIP      = 25                     // mutations per second per client IP
	sanityConcurrent = 100                    // mutations in flight per dataset
	sanityMutation   = 500 * time.Millisecond // how long the demo's mutation takes

	mailLive     = 600           // requests per sliding minute per org, live keys
	mailTest     = mailLive / 10 // test keys run at 10% of the live limit
	mailFailures = 10            // failed authentications per sliding minute per IP
	mailWindow   = time.Minute   // the window of all three
	mailProblem  = "https://api.sendops.dev/errors/rate_limit"
	mailAuthType = "https://api.sendops.dev/errors/unauthorized"

	rollbarSystem       = 100 // events per window of rollbarSystemWindow, every token
	rollbarSystemWindow = time.Minute

	senderLimit = 60 // requests per minute per account, reset at :00

	sentryLimit  = 40               // requests per window per org
	sentryWindow = 10 * time.Second // windows aligned to the clock
)

// mailKey is one of the mail API's demo keys.
type mailKey struct {
	org  string
	test bool
}

// The demo's credentials (also listed in the program's doc and -help).
var (
	mailKeys = map[string]mailKey{
		"sk_live_acme_1":   {org: "acme"},
		"sk_live_acme_2":   {org: "acme"},
		"sk_test_acme_1":   {org: "acme", test: true},
		"sk_test_acme_2":   {org: "acme", test: true},
		"sk_live_globex_1": {org: "globex"},
	}
	// rollbarUser is each Rollbar access token's user-defined limit; a zero
	// Limit means none (the "Default rate limit": only the system limit).
	rollbarUser = map[string]rolling.Config{
		"tok_backend":  {Limit: 1000, Window: time.Hour, Name: "user"},
		"tok_frontend": {Limit: 50, Window: time.Minute, Name: "user"},
		"tok_worker":   {},
	}
	senderAccounts = map[string]string{ // token → account
		"sender_token_1": "acct_42",
		"sender_token_2": "acct_42",
	}
	sentryOrgs = map[string]string{ // token → org
		"sntrys_acme": "acme",
	}
)

// maxNotices is how many Rollbar notices the service keeps.
const maxNotices = 100

// notice is a Rollbar "System Message": a token's limit was first reached.
type notice struct {
	At     time.Time
	Token  string
	Policy string
	D      ratekit.Decision
}

func (n notice) String() string {
	return fmt.Sprintf("Your rate limit has been reached for access_token %s (%s limit, %d per %v; the window closes in %v)",
		n.Token, n.Policy, n.D.Limit, n.D.Window, n.D.RetryAfter.Round(time.Millisecond))
}

// service is the demo API: each seed's policies on its own routes of one mux.
// It reads time only from clk, so a test drives it with fake time.
type service struct {
	clk clock.Clock
	mux *http.ServeMux
	log io.Writer // Rollbar notices go here, one line each

	// Kept for tests: the Rollbar user limits, the Sanity datasets'
	// in-flight gauges (read-only after newService: the datasets are
	// fixed) and the last maxNotices notices.
	rollbarUsers map[string]*rolling.Limiter
	gauges       map[string]*gauge

	mu       sync.Mutex // guards notices
	notices  []notice
	logMutex *sync.Mutex // shared with whoever else writes to log
}

// gauge counts one dataset's mutations in flight, as the handler sees them.
type gauge struct{ cur, max atomic.Int64 }

func (g *gauge) enter() int64 {
	n := g.cur.Add(1)
	for m := g.max.Load(); n > m && !g.max.CompareAndSwap(m, n); m = g.max.Load() {
	}
	return n
}

func (g *gauge) leave() { g.cur.Add(-1) }

// newService builds the demo's limits and routes. clk nil is the real clock;
// log receives Rollbar's notices (nil: discarded); logMu, if not nil, is held
// while writing to log.
func newService(clk clock.Clock, log io.Writer, logMu *sync.Mutex) (*service, error) {
	if clk == nil {
		clk = clock.New()
	}
	if log == nil {
		log = io.Discard
	}
	if logMu == nil {
		logMu = new(sync.Mutex)
	}
	s := &service{clk: clk, mux: http.NewServeMux(), log: log, logMutex: logMu,
		gauges:       map[string]*gauge{"production": new(gauge), "staging": new(gauge)},
		rollbarUsers: map[string]*rolling.Limiter{}}

	// The demo trusts X-Forwarded-For from loopback, as if a reverse proxy
	// ran in front of it, so that -drive can play many clients from one
	// machine. A real deployment lists its own proxies.
	ipOf, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	}})
	if err != nil {
		return nil, err
	}
	for _, add := range []func(httplimit.KeyFunc) error{s.sanity, s.mail, s.rollbar, s.sender, s.sentry} {
		if err := add(ipOf); err != nil {
			return nil, err
		}
	}
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, routes)
	})
	return s, nil
}

// receivedHeader carries the instant the service received a request, in
// Unix nanoseconds, so that the drive counts each request in the second its
// limits judged it in, however late a busy machine delivered it.
const receivedHeader = "X-Demo-Received"

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(receivedHeader, strconv.FormatInt(s.clk.Now().UnixNano(), 10))
	s.mux.ServeHTTP(w, r)
}

// keyed bounds every per-key store: a flood of new keys (random client IPs,
// say) evicts old ones rather than exhausting memory.
var keyed = ratekit.KeyedConfig{MaxKeys: 100_000}

// sanity: 25 mutations per second per client IP, an exact sliding window, and
// 100 mutations in flight per dataset, units held until the handler returns.
// A mutation refused by one is charged to neither. Headers: Sanity's
// X-RateLimit-Limit-<policy>, X-RateLimit-Remaining-<policy> and
// RateLimit-Reset.
func (s *service) sanity(ipOf httplimit.KeyFunc) error {
	perIP := slidingwindow.Config{Limit: sanityPerIP, Window: time.Second, Name: "ip"}
	if _, err := slidingwindow.NewLog(perIP); err != nil {
		return err
	}
	// New in the factory: the Logs of one Config share its parameters.
	ips := ratekit.NewKeyed(func(string) *slidingwindow.Log { return must(slidingwindow.NewLog(perIP)) }, keyed)
	datasets := ratekit.NewKeyed(func(string) *concurrency.Limiter {
		return must(concurrency.New(concurrency.Config{Limit: sanityConcurrent, Name: "dataset"}))
	}, keyed)
	// Only the project's datasets have a concurrency limit (and a gauge),
	// so that clients naming datasets cannot grow either; a mutation of any
	// other is charged to its IP and answered 404.
	datasetOf := func(r *http.Request) (string, bool) {
		ds := r.PathValue("dataset")
		return ds, s.gauges[ds] != nil
	}
	m, err := httplimit.New(httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "ip", Key: ipOf, Limiter: httplimit.Per(ips.Get), Detail: "Too many mutations from this IP."},
			{Name: "dataset", Key: datasetOf, Limiter: httplimit.Per(datasets.Get), Detail: "Too many concurrent mutations on this dataset."},
		},
		Headers: httplimit.Sanity,
		Clock:   s.clk,
	})
	if err != nil {
		return err
	}
	s.mux.Handle("POST /sanity/data/mutate/{dataset}", m.Wrap(http.HandlerFunc(s.mutate)))
	return nil
}

// mutate is Sanity's mutation endpoint: it holds its dataset's unit for
// sanityMutation and reports how many mutations were in flight with it.
func (s *service) mutate(w http.ResponseWriter, r *http.Request) {
	g := s.gauges[r.PathValue("dataset")]
	if g == nil {
		http.Error(w, "no such dataset", http.StatusNotFound)
		return
	}
	n := g.enter()
	defer g.leave()
	s.clk.Sleep(sanityMutation)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"results\":[],\"inFlight\":%d}\n", n)
}

// maxInFlight is the most mutations of dataset the handler ever saw at once.
func (s *service) maxInFlight(dataset string) int {
	return int(s.gauges[dataset].max.Load())
}

// mail: 600 requests per sliding minute per org, shared by every live key of
// the org; the org's test keys share 60 (10%). A missing or unknown key is
// answered 401 and charged to the client IP's failure ceiling, 10 per sliding
// minute; past it every request from that IP is refused, valid key or not.
// Every response, 401 included, carries X-RateLimit-* (Reset in delta
// seconds) and the IETF RateLimit-Policy and RateLimit fields.
func (s *service) mail(ipOf httplimit.KeyFunc) error {
	live := slidingwindow.Config{Limit: mailLive, Window: mailWindow, Name: "org"}
	test := slidingwindow.Config{Limit: mailTest, Window: mailWindow, Name: "org"}
	fails := slidingwindow.Config{Limit: mailFailures, Window: mailWindow, Name: "auth"}
	for _, cfg := range []slidingwindow.Config{live, test, fails} {
		if _, err := slidingwindow.NewLog(cfg); err != nil {
			return err
		}
	}
	orgs := ratekit.NewKeyed(func(org string) *slidingwindow.Log {
		if strings.HasSuffix(org, "/test") {
			return must(slidingwindow.NewLog(test))
		}
		return must(slidingwindow.NewLog(live))
	}, keyed)
	failures := ratekit.NewKeyed(func(string) *slidingwindow.Log { return must(slidingwindow.NewLog(fails)) }, keyed)

	// orgOf finds only known keys, so a missing or unknown one is refused
	// by the tier (MissingReject) with a 401 that carries the failure
	// tier's budget, and creates no limiter.
	orgOf := func(r *http.Request) (string, bool) {
		tok, _ := httplimit.Bearer(r)
		k, ok := mailKeys[tok]
		if k.test {
			return k.org + "/test", ok
		}
		return k.org, ok
	}
	m, err := httplimit.New(httplimit.Config{
		Tiers: []httplimit.Tier{{
			Name: "org", Key: orgOf, Missing: httplimit.MissingReject, Limiter: httplimit.Per(orgs.Get),
			Detail: "Too many requests for this organization.",
		}},
		Failure: &httplimit.FailureTier{
			Name: "auth", Key: ipOf, Limiter: httplimit.Per(failures.Get),
			Detail: "Too many failed authentications from this IP.",
		},
		Headers:     httplimit.XRateLimit | httplimit.IETF,
		Clock:       s.clk,
		ProblemType: mailProblem,
		Problem: func(w http.ResponseWriter, r *http.Request, p *httplimit.Problem) {
			if p.Status == http.StatusUnauthorized {
				p.Type, p.Detail = mailAuthType, "The API key is missing or invalid."
			}
			httplimit.WriteProblem(w, r, p)
		},
	})
	if err != nil {
		return err
	}
	s.mux.Handle("POST /mail/v1/messages", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, `{"status":"queued"}`)
	})))
	return nil
}

// rollbar: each access token has the system limit (100 per minute) and may
// have a user-defined one; both are windows that open at the token's first
// event, tracked independently, taken all or none, so that events one refuses
// do not count against the other. The first refusal of a window is noticed
// once, as Rollbar posts its "System Message". Headers: X-Rate-Limit-*.
func (s *service) rollbar(httplimit.KeyFunc) error {
	system := rolling.Config{Limit: rollbarSystem, Window: rollbarSystemWindow, Name: "system"}
	systems := map[string]ratekit.Limiter{}
	users := map[string]ratekit.Limiter{}
	for tok, cfg := range rollbarUser {
		l, err := rolling.New(system)
		if err != nil {
			return err
		}
		systems[tok] = l
		if cfg.Limit > 0 {
			l, err := rolling.New(cfg)
			if err != nil {
				return err
			}
			users[tok], s.rollbarUsers[tok] = l, l
		}
	}
	tokenOf := func(r *http.Request) (string, bool) {
		tok := r.Header.Get("X-Rollbar-Access-Token")
		_, ok := rollbarUser[tok]
		return tok, ok
	}
	// A map lookup of a token without a user limit yields a nil Limiter:
	// the tier does not apply to it.
	m, err := httplimit.New(httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "system", Key: tokenOf, Missing: httplimit.MissingReject, Limiter: func(k string) ratekit.Limiter { return systems[k] }},
			{Name: "user", Key: tokenOf, Limiter: func(k string) ratekit.Limiter { return users[k] }},
		},
		Headers: httplimit.Rollbar,
		Clock:   s.clk,
		OnLimitReached: func(policy, token string, d ratekit.Decision) {
			s.notice(notice{At: s.clk.Now(), Token: token, Policy: policy, D: d})
		},
	})
	if err != nil {
		return err
	}
	s.mux.Handle("POST /rollbar/api/1/item/", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"err":0,"result":{}}`)
	})))
	return nil
}

func (s *service) notice(n notice) {
	s.mu.Lock()
	if len(s.notices) == maxNotices {
		s.notices = append(s.notices[:0], s.notices[1:]...)
	}
	s.notices = append(s.notices, n)
	s.mu.Unlock()
	s.logMutex.Lock()
	defer s.logMutex.Unlock()
	fmt.Fprintf(s.log, "  rollbar notice at %s: %v\n", n.At.UTC().Format("15:04:05.000"), n)
}

// Notices returns the Rollbar notices so far, oldest first.
func (s *service) Notices() []notice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]notice(nil), s.notices...)
}

// sender: 60 requests per minute per account, shared by the account's
// tokens, in windows that reset at the top of each minute. Headers:
// X-RateLimit-* with Reset as an RFC 3339 instant, as Sender sends it.
func (s *service) sender(httplimit.KeyFunc) error {
	minute := fixedwindow.Config{Limit: senderLimit, Window: time.Minute, Name: "account", Clock: s.clk}
	if err := minute.Validate(); err != nil {
		return err
	}
	accounts := ratekit.NewKeyed(func(string) *fixedwindow.Limiter { return must(fixedwindow.New(minute)) }, keyed)
	accountOf := func(r *http.Request) (string, bool) {
		tok, _ := httplimit.Bearer(r)
		acct, ok := senderAccounts[tok]
		return acct, ok
	}
	m, err := httplimit.New(httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "account", Key: accountOf, Missing: httplimit.MissingReject, Limiter: httplimit.Per(accounts.Get)}},
		Headers: httplimit.XRateLimitRFC3339,
		Clock:   s.clk,
	})
	if err != nil {
		return err
	}
	list := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"data":[],"meta":{"current_page":1}}`)
	}))
	for _, p := range []string{"subscribers", "campaigns", "groups"} {
		s.mux.Handle("GET /sender/v2/"+p, list)
	}
	return nil
}

// sentry: 40 requests per 10 seconds per org, in windows aligned to the
// clock. Headers: X-Sentry-Rate-Limit-* with Reset as a Unix time.
func (s *service) sentry(httplimit.KeyFunc) error {
	window := fixedwindow.Config{Limit: sentryLimit, Window: sentryWindow, Name: "org", Clock: s.clk}
	if err := window.Validate(); err != nil {
		return err
	}
	orgs := ratekit.NewKeyed(func(string) *fixedwindow.Limiter { return must(fixedwindow.New(window)) }, keyed)
	orgOf := func(r *http.Request) (string, bool) {
		tok, _ := httplimit.Bearer(r)
		org, ok := sentryOrgs[tok]
		return org, ok && org == r.PathValue("org")
	}
	m, err := httplimit.New(httplimit.Config{
		Tiers:   []httplimit.Tier{{Name: "org", Key: orgOf, Missing: httplimit.MissingReject, Limiter: httplimit.Per(orgs.Get)}},
		Headers: httplimit.Sentry,
		Clock:   s.clk,
	})
	if err != nil {
		return err
	}
	s.mux.Handle("GET /sentry/api/0/organizations/{org}/issues/", m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `[]`)
	})))
	return nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err) // the demo's configs are constants, checked by its test
	}
	return v
}
