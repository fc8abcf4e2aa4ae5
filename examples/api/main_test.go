package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"
)

// exchange is one request the drive sent and the answer it got.
type exchange struct {
	at     time.Time // when the request reached the service
	path   string
	key    string // bearer token or Rollbar token, "" if none
	ip     string // X-Forwarded-For
	status int
	header http.Header
	body   []byte
}

// inProcess is an http.RoundTripper that serves each request with the
// service's handler in the caller's goroutine, as from a proxy on loopback,
// and records it. Inside a synctest bubble, the whole drive then runs on the
// bubble's fake clock.
type inProcess struct {
	h   http.Handler
	clk clock.Clock

	mu  sync.Mutex
	log []exchange
}

func (p *inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RemoteAddr = "127.0.0.1:41234" // a trusted proxy: X-Forwarded-For is believed
	r.RequestURI = req.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	at := p.clk.Now()
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, r)
	res := w.Result()

	key := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	if tok := req.Header.Get("X-Rollbar-Access-Token"); tok != "" {
		key = tok
	}
	p.mu.Lock()
	p.log = append(p.log, exchange{at: at, path: req.URL.Path, key: key, ip: req.Header.Get("X-Forwarded-For"),
		status: res.StatusCode, header: res.Header.Clone(), body: w.Body.Bytes()})
	p.mu.Unlock()
	return res, nil
}

// where returns the exchanges for which keep holds, in the order they
// reached the service.
func (p *inProcess) where(keep func(e exchange) bool) []exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []exchange
	for _, e := range p.log {
		if keep(e) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b exchange) int { return a.at.Compare(b.at) })
	return out
}

// driveSeconds is long enough for the minute-long windows (the mail API's
// sliding minute, Rollbar's windows) to end and admit again.
const driveSeconds = 62

// TestDrive runs the drive mode in process on a fake clock, from
// 2000-01-01T00:00:57Z so that Sender's minute ends 3 seconds in, for 62
// seconds, and checks the seeds' numbers against what the service answered.
func TestDrive(t *testing.T) {
	var (
		tr  *inProcess
		rep *report
		svc *service
		out bytes.Buffer
	)
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(57 * time.Second) // the bubble's clock starts at midnight
		clk := clock.New()           // reads the bubble's clock
		var outMu sync.Mutex
		var err error
		if svc, err = newService(clk, &out, &outMu); err != nil {
			t.Fatal(err)
		}
		tr = &inProcess{h: svc, clk: clk}
		rep, err = drive(t.Context(), driveConfig{
			Client: &http.Client{Transport: tr}, Base: "http://api.test", Clock: clk,
			Duration: driveSeconds * time.Second, Out: &out, OutMu: &outMu,
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}
	if want := time.Date(2000, 1, 1, 0, 0, 57, 0, time.UTC); !rep.Start.Equal(want) {
		t.Fatalf("drive started at %v, want %v", rep.Start, want)
	}
	if len(tr.log) != rep.Requests || rep.Requests != 617*driveSeconds {
		t.Fatalf("the service saw %d requests, the drive sent %d, want %d", len(tr.log), rep.Requests, 617*driveSeconds)
	}
	t.Run("EveryResponseCarriesItsBudget", func(t *testing.T) { checkHeaders(t, tr, rep) })
	t.Run("Sanity", func(t *testing.T) { checkSanity(t, tr, rep, svc) })
	t.Run("Mail", func(t *testing.T) { checkMail(t, tr, rep) })
	t.Run("Rollbar", func(t *testing.T) { checkRollbar(t, tr, rep, svc, out.String()) })
	t.Run("Sender", func(t *testing.T) { checkSender(t, tr, rep) })
	t.Run("Sentry", func(t *testing.T) { checkSentry(t, tr, rep) })
	t.Run("Output", func(t *testing.T) { checkOutput(t, out.String()) })
}

// checkHeaders: every response, 2xx, 401 and 429, carries its API's
// rate-limit fields, and every 429 a Retry-After and a problem+json body
// whose retry_after agrees with it.
func checkHeaders(t *testing.T, tr *inProcess, rep *report) {
	fields := map[string][]string{
		"sanity":  {"X-Ratelimit-Limit-Ip", "X-Ratelimit-Remaining-Ip", "X-Ratelimit-Limit-Dataset", "X-Ratelimit-Remaining-Dataset", "Ratelimit-Reset"},
		"mail":    {"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Ratelimit-Policy", "Ratelimit"},
		"rollbar": {"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Remaining-Seconds", "X-Rate-Limit-Reset"},
		"sender":  {"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"},
		"sentry":  {"X-Sentry-Rate-Limit-Limit", "X-Sentry-Rate-Limit-Remaining", "X-Sentry-Rate-Limit-Reset"},
	}
	statuses := map[int]int{}
	bad := 0
	for _, e := range tr.where(func(exchange) bool { return true }) {
		statuses[e.status]++
		route := strings.Split(e.path, "/")[1]
		var missing []string
		for _, f := range fields[route] {
			if len(e.header[f]) != 1 {
				missing = append(missing, f)
			}
		}
		if e.status == http.StatusTooManyRequests {
			var p struct {
				Status     int   `json:"status"`
				RetryAfter int64 `json:"retry_after"`
			}
			ra, err := strconv.ParseInt(e.header.Get("Retry-After"), 10, 64)
			if err != nil || ra < 1 || json.Unmarshal(e.body, &p) != nil || p.Status != 429 || p.RetryAfter != ra ||
				e.header.Get("Content-Type") != "application/problem+json" {
				missing = append(missing, "Retry-After or the problem+json body")
			}
		}
		if len(missing) > 0 {
			if bad++; bad <= 5 {
				t.Errorf("%s %s -> %d lacks %v: %v", e.at.Format("15:04:05.000"), e.path, e.status, missing, e.header)
			}
		}
	}
	for _, s := range []int{200, 202, 401, 429} {
		if statuses[s] == 0 {
			t.Errorf("no response with status %d: the drive must show every kind (%v)", s, statuses)
		}
	}
	if len(statuses) != 4 {
		t.Errorf("statuses %v, want only 200, 202, 401 and 429", statuses)
	}
	if rep.Headerless != 0 {
		t.Errorf("the drive counted %d responses without rate-limit headers", rep.Headerless)
	}
}

// admittedAt returns the instants at which exchanges were admitted.
func admittedAt(es []exchange) []time.Time {
	var at []time.Time
	for _, e := range es {
		if e.status/100 == 2 {
			at = append(at, e.at)
		}
	}
	return at
}

// checkSliding fails if more than limit of the instants fall in some
// interval of length window.
func checkSliding(t *testing.T, what string, at []time.Time, limit int, window time.Duration) {
	t.Helper()
	for i := 0; i+limit < len(at); i++ {
		if d := at[i+limit].Sub(at[i]); d < window {
			t.Errorf("%s: %d admitted within %v (from %v)", what, limit+1, d, at[i].Format("15:04:05.000"))
			return
		}
	}
}

// wantTally compares one second's tally of a stream.
func wantTally(t *testing.T, rep *report, sec int, id string, admitted, refused, unauthorized int) {
	t.Helper()
	got := rep.tallyOf(sec, id)
	if got.Admitted != admitted || got.Refused != refused || got.Unauthorized != unauthorized || got.Errors+got.Other != 0 {
		t.Errorf("second %d, %s: admitted %d, refused %d, 401 %d (errors %d, other %d); want %d, %d, %d",
			sec, id, got.Admitted, got.Refused, got.Unauthorized, got.Errors, got.Other, admitted, refused, unauthorized)
	}
}

// checkSanity: exactly 25 mutations per second from an IP sending 100 a
// second, never more than 25 in any second, and at most 100 in flight on a
// dataset, with the burst's refusals charged to no IP.
func checkSanity(t *testing.T, tr *inProcess, rep *report, svc *service) {
	for s := range driveSeconds {
		wantTally(t, rep, s, "sanity-ip", 25, 75, 0)
		if by := rep.tallyOf(s, "sanity-ip").RefusedBy; by["ip"] != 75 || len(by) != 1 {
			t.Errorf("second %d: sanity-ip refused by %v, want ip 75", s, by)
		}
		wantTally(t, rep, s, "sanity-burst", 100, 50, 0)
		burst := rep.tallyOf(s, "sanity-burst")
		if burst.RefusedBy["dataset"] != 50 || len(burst.RefusedBy) != 1 || burst.MaxInFlight != 100 {
			t.Errorf("second %d: burst refused by %v, up to %d in flight; want dataset 50, 100", s, burst.RefusedBy, burst.MaxInFlight)
		}
	}
	if got := svc.maxInFlight("staging"); got != sanityConcurrent {
		t.Errorf("staging had up to %d mutations in flight, want %d (the limit, reached)", got, sanityConcurrent)
	}
	ips := map[string]bool{}
	for _, e := range tr.where(func(e exchange) bool { return strings.HasPrefix(e.path, "/sanity/") }) {
		ips[e.ip] = true
	}
	for ip := range ips {
		at := admittedAt(tr.where(func(e exchange) bool { return strings.HasPrefix(e.path, "/sanity/") && e.ip == ip }))
		checkSliding(t, "sanity "+ip, at, sanityPerIP, time.Second)
	}
}

// checkMail: 600 per sliding minute for the org's live keys together, 60
// for its test keys together, another org untouched, and the failure
// ceiling blocking an IP, valid key included, until its failures slide out.
func checkMail(t *testing.T, tr *inProcess, rep *report) {
	for s := range driveSeconds {
		switch {
		case s < 3 || s >= 60: // 200 a second fit until 600; at 60 the first ones slide out
			wantTally(t, rep, s, "mail-live", 200, 0, 0)
		default: // a fixed minute would have reset at 00:01:00, second 3
			wantTally(t, rep, s, "mail-live", 0, 200, 0)
		}
		switch {
		case s == 0 || s == 60:
			wantTally(t, rep, s, "mail-test", 40, 0, 0)
		case s == 1 || s == 61:
			wantTally(t, rep, s, "mail-test", 20, 20, 0)
		default:
			wantTally(t, rep, s, "mail-test", 0, 40, 0)
		}
		wantTally(t, rep, s, "mail-globex", 5, 0, 0)
		switch {
		case s == 0:
			wantTally(t, rep, s, "mail-scanner", 1, 0, 5)
		case s == 1 || s == 60 || s == 61: // 10 failures reached: the valid key is refused too
			wantTally(t, rep, s, "mail-scanner", 0, 1, 5)
		default:
			wantTally(t, rep, s, "mail-scanner", 0, 6, 0)
		}
	}
	org := func(keys ...string) []exchange {
		return tr.where(func(e exchange) bool { return e.path == "/mail/v1/messages" && slices.Contains(keys, e.key) })
	}
	live := admittedAt(org("sk_live_acme_1", "sk_live_acme_2"))
	checkSliding(t, "mail acme live", live, mailLive, mailWindow)
	if n := len(admittedAt(org("sk_live_acme_1"))); n != 500 {
		t.Errorf("sk_live_acme_1 was admitted %d times, want 500: 300 of the org's 600, and 200 more once they slid out", n)
	}
	checkSliding(t, "mail acme test", admittedAt(org("sk_test_acme_1", "sk_test_acme_2")), mailTest, mailWindow)
	for _, e := range org("sk_live_acme_2") {
		if e.status == http.StatusTooManyRequests {
			// The first refusal of key 2 comes at 3 s, having sent 300:
			// key 1's requests used the rest of the org's budget.
			if want := rep.Start.Add(3*time.Second + 5*ms); !e.at.Equal(want) || e.header.Get("X-Ratelimit-Limit") != "600" {
				t.Errorf("sk_live_acme_2's first 429 at %v (limit %s), want %v (600)", e.at, e.header.Get("X-Ratelimit-Limit"), want)
			}
			break
		}
	}
	for _, e := range org("", "sk_live_acme_typo") {
		if e.status == http.StatusUnauthorized && (e.header.Get("X-Ratelimit-Limit") != strconv.Itoa(mailFailures) ||
			!strings.Contains(string(e.body), mailAuthType)) {
			t.Errorf("401 at %v: X-RateLimit-Limit %q, body %s; want the failure ceiling's budget and a problem+json body",
				e.at, e.header.Get("X-Ratelimit-Limit"), e.body)
		}
	}
}

// checkRollbar: the system limit binds tok_backend for the rest of its
// window, which opened at its first event; events it refuses use none of the
// user limit; tok_frontend's user limit binds first; and each is noticed once.
func checkRollbar(t *testing.T, tr *inProcess, rep *report, svc *service, out string) {
	backend, frontend := 0, 0
	for s := range driveSeconds {
		switch {
		case s < 2 || s >= 60: // a new window opens at 60 s, 60 s after the first event
			wantTally(t, rep, s, "rollbar-backend", 40, 0, 0)
			wantTally(t, rep, s, "rollbar-frontend", 20, 0, 0)
		case s == 2:
			wantTally(t, rep, s, "rollbar-backend", 20, 20, 0)
			wantTally(t, rep, s, "rollbar-frontend", 10, 10, 0)
		default:
			wantTally(t, rep, s, "rollbar-backend", 0, 40, 0)
			wantTally(t, rep, s, "rollbar-frontend", 0, 20, 0)
		}
		b, f := rep.tallyOf(s, "rollbar-backend"), rep.tallyOf(s, "rollbar-frontend")
		backend += b.Admitted
		frontend += f.Admitted
		if b.RefusedBy["system"] != b.Refused || f.RefusedBy["user"] != f.Refused || len(b.RefusedBy) > 1 || len(f.RefusedBy) > 1 {
			t.Errorf("second %d: tok_backend refused by %v, tok_frontend by %v; want by system and by user", s, b.RefusedBy, f.RefusedBy)
		}
	}
	// The 429s name the binding limit: the system's 100 for tok_backend,
	// the user's 50 for tok_frontend.
	for tok, limit := range map[string]string{"tok_backend": "100", "tok_frontend": "50"} {
		for _, e := range tr.where(func(e exchange) bool { return e.key == tok && e.status == http.StatusTooManyRequests }) {
			if e.header.Get("X-Rate-Limit-Limit") != limit {
				t.Errorf("%s refused at %v with X-Rate-Limit-Limit %s, want %s", tok, e.at, e.header.Get("X-Rate-Limit-Limit"), limit)
				break
			}
		}
	}
	end := rep.Start.Add(driveSeconds * time.Second)
	if sent := 40 * driveSeconds; backend >= sent {
		t.Fatalf("tok_backend: all %d events admitted", sent)
	}
	if got := svc.rollbarUsers["tok_backend"].Peek(end, 0).Remaining; got != 1000-backend {
		t.Errorf("tok_backend's user limit has %d left after %d admitted events, want %d: refused events were counted",
			got, backend, 1000-backend)
	}
	if got := svc.rollbarUsers["tok_frontend"].Peek(end, 0).Remaining; got != 50-40 {
		t.Errorf("tok_frontend's user limit has %d left in its second window, want 10", got)
	}
	notices := svc.Notices()
	want := []struct {
		token, policy string
		at            time.Duration
	}{
		{"tok_backend", "system", 2500 * ms}, // the 101st event
		{"tok_frontend", "user", 2510 * ms},  // the 51st
	}
	if len(notices) != len(want) {
		t.Fatalf("notices %v, want one per token", notices)
	}
	slices.SortFunc(notices, func(a, b notice) int { return a.At.Compare(b.At) })
	for i, w := range want {
		n := notices[i]
		if n.Token != w.token || n.Policy != w.policy || !n.At.Equal(rep.Start.Add(w.at)) {
			t.Errorf("notice %d: %s %s at %v, want %s %s at +%v", i, n.Token, n.Policy, n.At.Sub(rep.Start), w.token, w.policy, w.at)
		}
		line := "Your rate limit has been reached for access_token " + w.token
		if c := strings.Count(out, line); c != 1 {
			t.Errorf("%q logged %d times, want once", line, c)
		}
	}
}

// checkSender: 60 per account per minute, the two tokens together, in
// windows that reset at :00 (second 3), with X-RateLimit-Reset the next :00
// in RFC 3339.
func checkSender(t *testing.T, tr *inProcess, rep *report) {
	perMinute := map[time.Time]int{}
	for s := range driveSeconds {
		switch {
		case s == 0: // 00:00:57
			wantTally(t, rep, s, "sender", 40, 0, 0)
		case s == 1:
			wantTally(t, rep, s, "sender", 20, 20, 0)
		case (s+57)%60 == 0: // :00, a new window
			wantTally(t, rep, s, "sender", 40, 0, 0)
		case (s+57)%60 == 1:
			wantTally(t, rep, s, "sender", 20, 20, 0)
		default:
			wantTally(t, rep, s, "sender", 0, 40, 0)
		}
	}
	for _, e := range tr.where(func(e exchange) bool { return strings.HasPrefix(e.path, "/sender/") }) {
		next := e.at.Truncate(time.Minute).Add(time.Minute)
		if got := e.header.Get("X-Ratelimit-Reset"); got != next.Format(time.RFC3339) || !strings.HasSuffix(got, ":00Z") {
			t.Fatalf("%v: X-RateLimit-Reset %q, want %q", e.at, got, next.Format(time.RFC3339))
		}
		if e.status == http.StatusTooManyRequests {
			if got, want := e.header.Get("Retry-After"), strconv.Itoa(int(next.Sub(e.at).Seconds()+0.999)); got != want {
				t.Fatalf("%v: Retry-After %s, want %s", e.at, got, want)
			}
		} else {
			perMinute[e.at.Truncate(time.Minute)]++
		}
	}
	for m, n := range perMinute {
		if n > senderLimit {
			t.Errorf("sender: %d admitted in the minute from %v", n, m)
		}
	}
}

// checkSentry: 40 per org in windows of 10 s aligned to the clock, with
// X-Sentry-Rate-Limit-Reset the window's end as a Unix time.
func checkSentry(t *testing.T, tr *inProcess, rep *report) {
	perWindow := map[int64]int{}
	for _, e := range tr.where(func(e exchange) bool { return strings.HasPrefix(e.path, "/sentry/") }) {
		end := e.at.Truncate(sentryWindow).Add(sentryWindow).Unix()
		if got := e.header.Get("X-Sentry-Rate-Limit-Reset"); got != strconv.FormatInt(end, 10) {
			t.Fatalf("%v: X-Sentry-Rate-Limit-Reset %q, want %d", e.at, got, end)
		}
		if e.status/100 == 2 {
			perWindow[end]++
		}
	}
	// The first window (from :50) had 7 s to go; the rest are whole.
	for end, n := range perWindow {
		if want := sentryLimit; n != want && end != time.Date(2000, 1, 1, 0, 1, 0, 0, time.UTC).Unix() &&
			end != time.Date(2000, 1, 1, 0, 2, 0, 0, time.UTC).Unix() {
			t.Errorf("sentry: %d admitted in the window ending %v, want %d", n, time.Unix(end, 0).UTC(), want)
		}
		if n > sentryLimit {
			t.Errorf("sentry: %d admitted in the window ending %v", n, time.Unix(end, 0).UTC())
		}
	}
	wantTally(t, rep, 0, "sentry", 16, 0, 0)
	wantTally(t, rep, 2, "sentry", 8, 8, 0)
	wantTally(t, rep, 3, "sentry", 16, 0, 0) // 00:01:00: a new window
}

// checkOutput: the printed report has a block per second and a sample of
// every header dialect, and a 429's body.
func checkOutput(t *testing.T, out string) {
	for _, want := range []string{
		"driving http://api.test for 62s from 2000-01-01T00:00:57Z",
		"second 0 (00:00:57.000 UTC)",
		"second 61 (00:01:58.000 UTC)",
		"  sanity  IP 203.0.113.10, 100 mutations/s (4x)            25       75     0  refused by ip 75",
		"      X-Ratelimit-Limit-Ip: 25\n",
		"      Ratelimit-Policy: \"org\";q=600;w=60\n",
		"      Retry-After: ",
		"      X-Ratelimit-Reset: 2000-01-01T00:01:00Z\n",
		"      X-Sentry-Rate-Limit-Reset: 946684860\n",
		"      X-Rate-Limit-Remaining-Seconds: ",
		`{"type":"https://api.sendops.dev/errors/rate_limit","title":"Rate limit exceeded","status":429,"detail":"Too many requests for this organization. Retry in 57 seconds.","retry_after":57,"violated-policies":["org"]}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestEdges checks the answers the drive does not provoke: a dataset the
// project does not have, a Sentry token used for another org, Rollbar's
// token without a user limit, and the route map at /.
func TestEdges(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(time.Date(2026, 3, 18, 13, 1, 23, 0, time.UTC))
	svc, err := newService(clk, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = "192.0.2.1:4711"
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, r)
		return w
	}

	// An unknown dataset has no concurrency limit, but the mutation counts
	// against the IP.
	w := send("POST", "/sanity/data/mutate/nosuch")
	if w.Code != http.StatusNotFound || w.Header().Get("X-Ratelimit-Remaining-Ip") != "24" ||
		w.Header().Get("X-Ratelimit-Limit-Dataset") != "" {
		t.Errorf("unknown dataset: %d %v", w.Code, w.Header())
	}
	if len(svc.gauges) != 2 {
		t.Errorf("%d gauges after an unknown dataset, want 2", len(svc.gauges))
	}

	if w := send("GET", "/sentry/api/0/organizations/globex/issues/", "Authorization", "Bearer sntrys_acme"); w.Code != http.StatusUnauthorized {
		t.Errorf("acme's Sentry token on globex: %d, want 401", w.Code)
	}

	// tok_worker has only the system limit: its 101st event in a minute is
	// refused by it.
	for i := range rollbarSystem + 1 {
		w := send("POST", "/rollbar/api/1/item/", "X-Rollbar-Access-Token", "tok_worker")
		if want := i < rollbarSystem; (w.Code == http.StatusOK) != want {
			t.Fatalf("tok_worker event %d: %d, want admitted %v", i+1, w.Code, want)
		}
	}
	if n := svc.Notices(); len(n) != 1 || n[0].Token != "tok_worker" || n[0].Policy != "system" {
		t.Errorf("notices %v, want tok_worker's system limit", n)
	}

	if w := send("GET", "/"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "sk_live_acme_1") {
		t.Errorf("GET /: %d %q", w.Code, w.Body)
	}
}
