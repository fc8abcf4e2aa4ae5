package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/clock"
)

// request is one request a stream sends.
type request struct {
	method, path string
	header       []string // name, value, name, value...
}

// stream is one simulated client of the drive, with the requests it sends
// in every second of it.
type stream struct {
	id    string // for tests: "sanity-ip", "mail-live", ...
	route string // the seed: sanity, mail, rollbar, sender, sentry
	label string
	send  func(add func(at time.Duration, r request)) // at: from the second's start
}

const ms = time.Millisecond

// streams is the drive's load, the same in every second: each limit at
// several times its rate, a burst of concurrent mutations, failed
// authentication, and traffic within limits beside it, to show that one key's
// refusals do not touch another's.
var streams = []stream{
	{id: "sanity-ip", route: "sanity", label: "IP 203.0.113.10, 100 mutations/s (4x)",
		send: func(add func(time.Duration, request)) {
			for i := range 100 {
				add(time.Duration(i)*10*ms, mutation("production", "203.0.113.10"))
			}
		}},
	// 10 mutations from each of 15 IPs: within the per-IP limit even when
	// two bursts fall in one second, so the dataset's concurrency limit is
	// the one that binds.
	{id: "sanity-burst", route: "sanity", label: "dataset staging, 150 at once from 15 IPs",
		send: func(add func(time.Duration, request)) {
			for i := range 150 {
				add(500*ms, mutation("staging", fmt.Sprintf("203.0.113.%d", 21+i/10)))
			}
		}},
	{id: "mail-live", route: "mail", label: "org acme, 2 live keys x 100/s",
		send: func(add func(time.Duration, request)) {
			for i := range 100 {
				add(time.Duration(i)*10*ms, mail("sk_live_acme_1", "203.0.113.50"))
				add(time.Duration(i)*10*ms+5*ms, mail("sk_live_acme_2", "203.0.113.51"))
			}
		}},
	{id: "mail-test", route: "mail", label: "org acme, 2 test keys x 20/s",
		send: func(add func(time.Duration, request)) {
			for i := range 20 {
				add(time.Duration(i)*50*ms, mail("sk_test_acme_1", "203.0.113.52"))
				add(time.Duration(i)*50*ms+25*ms, mail("sk_test_acme_2", "203.0.113.52"))
			}
		}},
	{id: "mail-globex", route: "mail", label: "org globex, 1 live key x 5/s",
		send: func(add func(time.Duration, request)) {
			for i := range 5 {
				add(time.Duration(i)*200*ms+100*ms, mail("sk_live_globex_1", "203.0.113.60"))
			}
		}},
	{id: "mail-scanner", route: "mail", label: "IP 198.51.100.66, 5 bad keys/s + 1 valid",
		send: func(add func(time.Duration, request)) {
			add(0, mail("", "198.51.100.66")) // no key at all
			for i := 1; i < 5; i++ {
				add(time.Duration(i)*100*ms, mail("sk_live_acme_typo", "198.51.100.66"))
			}
			add(500*ms, mail("sk_live_globex_1", "198.51.100.66"))
		}},
	{id: "rollbar-backend", route: "rollbar", label: "tok_backend, 40 events/s",
		send: func(add func(time.Duration, request)) {
			for i := range 40 {
				add(time.Duration(i)*25*ms, item("tok_backend"))
			}
		}},
	{id: "rollbar-frontend", route: "rollbar", label: "tok_frontend, 20 events/s",
		send: func(add func(time.Duration, request)) {
			for i := range 20 {
				add(time.Duration(i)*50*ms+10*ms, item("tok_frontend"))
			}
		}},
	{id: "sender", route: "sender", label: "acct_42, 2 tokens x 20/s",
		send: func(add func(time.Duration, request)) {
			for i := range 20 {
				add(time.Duration(i)*50*ms, sender("sender_token_1"))
				add(time.Duration(i)*50*ms+25*ms, sender("sender_token_2"))
			}
		}},
	{id: "sentry", route: "sentry", label: "org acme, 16/s",
		send: func(add func(time.Duration, request)) {
			for i := range 16 {
				add(time.Duration(i)*62500*time.Microsecond, request{method: "GET",
					path: "/sentry/api/0/organizations/acme/issues/", header: []string{"Authorization", "Bearer sntrys_acme"}})
			}
		}},
}

func mutation(dataset, ip string) request {
	return request{method: "POST", path: "/sanity/data/mutate/" + dataset, header: []string{"X-Forwarded-For", ip}}
}

func mail(key, ip string) request {
	r := request{method: "POST", path: "/mail/v1/messages", header: []string{"X-Forwarded-For", ip}}
	if key != "" {
		r.header = append(r.header, "Authorization", "Bearer "+key)
	}
	return r
}

func item(token string) request {
	return request{method: "POST", path: "/rollbar/api/1/item/", header: []string{"X-Rollbar-Access-Token", token}}
}

func sender(token string) request {
	return request{method: "GET", path: "/sender/v2/subscribers", header: []string{"Authorization", "Bearer " + token}}
}

// driveConfig configures drive.
type driveConfig struct {
	Client   *http.Client
	Base     string        // the service's URL, e.g. http://127.0.0.1:8080
	Clock    clock.Clock   // nil: the real clock
	Duration time.Duration // rounded up to whole seconds, 1s to maxDrive
	Out      io.Writer
	OutMu    *sync.Mutex // held while writing to Out; nil: a private one
}

// maxDrive bounds the drive's length, and with it its request budget.
const maxDrive = 10 * time.Minute

// tally counts one stream's responses in one second of the drive, by the
// second the service received each request in.
type tally struct {
	Admitted, Refused, Unauthorized, Other, Errors int
	RefusedBy                                      map[string]int // violated-policies of the 429s
	MaxInFlight                                    int            // Sanity: the most mutations in flight a response reported
}

// sample is one response kept to show its headers.
type sample struct {
	Request string
	Status  int
	Header  http.Header // rate-limit fields only
	Body    string
	at      time.Duration // when the drive sent it: the earliest is kept
}

// report is what a drive saw.
type report struct {
	Start    time.Time
	Requests int                // sent
	Seconds  [][]tally          // [second][stream]
	Samples  map[string]*sample // by stream id and status: "mail-live 429"
	// Headerless counts responses without a rate-limit header.
	Headerless int
}

// tallyOf returns the tally of stream id in second sec.
func (r *report) tallyOf(sec int, id string) tally {
	for i, s := range streams {
		if s.id == id {
			return r.Seconds[sec][i]
		}
	}
	panic("no stream " + id)
}

type shot struct {
	at     time.Duration
	sec    int
	stream int
	req    request
}

// drive sends the streams' load to cfg.Base for cfg.Duration, printing a
// block per second to cfg.Out as each second's requests have all been
// answered, then a sample of each kind of response. It stops by itself;
// cancelling ctx stops it early.
func drive(ctx context.Context, cfg driveConfig) (*report, error) {
	if cfg.Duration <= 0 || cfg.Duration > maxDrive {
		return nil, fmt.Errorf("drive: duration %v is outside 1s to %v", cfg.Duration, maxDrive)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.New()
	}
	if cfg.OutMu == nil {
		cfg.OutMu = new(sync.Mutex)
	}
	secs := int((cfg.Duration + time.Second - 1) / time.Second)

	var plan []shot
	for sec := range secs {
		for i, st := range streams {
			st.send(func(at time.Duration, r request) {
				plan = append(plan, shot{at: time.Duration(sec)*time.Second + at, sec: sec, stream: i, req: r})
			})
		}
	}
	slices.SortStableFunc(plan, func(a, b shot) int { return int(a.at - b.at) })

	rep := &report{Start: clk.Now(), Seconds: make([][]tally, secs), Samples: map[string]*sample{}}
	for s := range rep.Seconds {
		rep.Seconds[s] = make([]tally, len(streams))
	}
	pending := make([]sync.WaitGroup, secs)
	for _, p := range plan {
		pending[p.sec].Add(1)
	}
	cfg.print(func(w io.Writer) {
		fmt.Fprintf(w, "driving %s for %ds from %s: %d requests, the same load each second\n",
			cfg.Base, secs, rep.Start.UTC().Format(time.RFC3339), len(plan))
	})

	// The printer shows each second once all its requests are answered.
	var mu sync.Mutex // guards rep
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for s := range secs {
			pending[s].Wait()
			mu.Lock()
			block := rep.second(s)
			mu.Unlock()
			cfg.print(func(w io.Writer) { io.WriteString(w, block) })
		}
	}()

	var stopped error
	for i, p := range plan {
		if stopped == nil {
			stopped = sleepUntil(ctx, clk, rep.Start.Add(p.at))
		}
		if stopped != nil {
			for _, q := range plan[i:] {
				pending[q.sec].Done()
			}
			break
		}
		rep.Requests++
		go func() {
			defer pending[p.sec].Done()
			sent := clk.Now()
			res := cfg.do(ctx, p.req)
			// Counted in the second the service received it in (later
			// than planned when the machine is busy).
			at := sent
			if ns, err := strconv.ParseInt(res.header.Get(receivedHeader), 10, 64); err == nil {
				at = time.Unix(0, ns)
			}
			sec := min(max(int(at.Sub(rep.Start)/time.Second), 0), secs-1)
			mu.Lock()
			rep.record(sec, p, res)
			mu.Unlock()
		}()
	}
	<-printed
	cfg.print(func(w io.Writer) { io.WriteString(w, rep.samples()) })
	return rep, stopped
}

func (cfg *driveConfig) print(f func(io.Writer)) {
	cfg.OutMu.Lock()
	defer cfg.OutMu.Unlock()
	f(cfg.Out)
}

// sleepUntil waits on clk until t, or returns ctx's error.
func sleepUntil(ctx context.Context, clk clock.Clock, t time.Time) error {
	d := t.Sub(clk.Now())
	if d <= 0 {
		return ctx.Err()
	}
	timer := clk.Timer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// result is one response, read in full.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (cfg *driveConfig) do(ctx context.Context, r request) result {
	req, err := http.NewRequestWithContext(ctx, r.method, cfg.Base+r.path, nil)
	if err != nil {
		return result{err: err}
	}
	for i := 0; i+1 < len(r.header); i += 2 {
		req.Header.Set(r.header[i], r.header[i+1])
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: body, err: err}
}

// rateLimitField reports whether a header field is one of the rate-limit
// dialects' (or Retry-After).
func rateLimitField(name string) bool {
	name = strings.ToLower(name)
	return strings.HasPrefix(name, "x-ratelimit-") || strings.HasPrefix(name, "x-rate-limit-") ||
		strings.HasPrefix(name, "x-sentry-rate-limit-") || strings.HasPrefix(name, "ratelimit") ||
		name == "retry-after"
}

func (rep *report) record(sec int, p shot, res result) {
	t := &rep.Seconds[sec][p.stream]
	if res.err != nil {
		t.Errors++
		return
	}
	fields := http.Header{}
	for k, v := range res.header {
		if rateLimitField(k) {
			fields[k] = v
		}
	}
	if len(fields) == 0 {
		rep.Headerless++
	}
	switch {
	case res.status >= 200 && res.status < 300:
		t.Admitted++
		var m struct{ InFlight int }
		if json.Unmarshal(res.body, &m) == nil {
			t.MaxInFlight = max(t.MaxInFlight, m.InFlight)
		}
	case res.status == http.StatusTooManyRequests:
		t.Refused++
		var prob struct {
			Violated []string `json:"violated-policies"`
		}
		if json.Unmarshal(res.body, &prob) == nil {
			if t.RefusedBy == nil {
				t.RefusedBy = map[string]int{}
			}
			for _, v := range prob.Violated {
				t.RefusedBy[v]++
			}
		}
	case res.status == http.StatusUnauthorized:
		t.Unauthorized++
	default:
		t.Other++
	}
	key := fmt.Sprintf("%s %d", streams[p.stream].id, res.status)
	if old := rep.Samples[key]; old == nil || p.at < old.at {
		s := &sample{Request: p.req.method + " " + p.req.path, Status: res.status, Header: fields, at: p.at}
		if res.status >= 400 {
			s.Body = strings.TrimSpace(string(res.body))
		}
		rep.Samples[key] = s
	}
}

// second formats the block of second s.
func (rep *report) second(s int) string {
	var b strings.Builder
	at := rep.Start.Add(time.Duration(s) * time.Second).UTC()
	fmt.Fprintf(&b, "\nsecond %d (%s UTC)%*s%9s%9s%6s\n", s, at.Format("15:04:05.000"), labelWidth-21-len(strconv.Itoa(s)), "", "admitted", "refused", "401")
	for i, st := range streams {
		t := rep.Seconds[s][i]
		var notes []string
		if len(t.RefusedBy) > 0 {
			var by []string
			for _, p := range slices.Sorted(maps.Keys(t.RefusedBy)) {
				by = append(by, fmt.Sprintf("%s %d", p, t.RefusedBy[p]))
			}
			notes = append(notes, "refused by "+strings.Join(by, ", "))
		}
		if t.MaxInFlight > 0 {
			notes = append(notes, fmt.Sprintf("up to %d in flight", t.MaxInFlight))
		}
		if t.Errors+t.Other > 0 {
			notes = append(notes, fmt.Sprintf("%d errors, %d other statuses", t.Errors, t.Other))
		}
		fmt.Fprintf(&b, "  %-8s%-*s%9d%9d%6d  %s\n", st.route, labelWidth-10, st.label, t.Admitted, t.Refused, t.Unauthorized, strings.Join(notes, "; "))
	}
	return b.String()
}

// labelWidth is the width of a block's first two columns.
const labelWidth = 52

// sampled lists the samples the report shows: one response of each kind
// per API, by stream id and status.
var sampled = []struct{ key, what string }{
	{"sanity-ip 200", "Sanity, admitted"},
	{"sanity-ip 429", "Sanity, refused by the IP's 25 per second"},
	{"sanity-burst 429", "Sanity, refused by the dataset's 100 in flight"},
	{"mail-live 202", "mail API, admitted"},
	{"mail-live 429", "mail API, refused by the org's 600 per minute"},
	{"mail-scanner 401", "mail API, a bad key"},
	{"mail-scanner 429", "mail API, refused by the IP's failure ceiling"},
	{"rollbar-backend 200", "Rollbar, admitted"},
	{"rollbar-backend 429", "Rollbar, refused by the system limit"},
	{"rollbar-frontend 429", "Rollbar, refused by the user limit"},
	{"sender 200", "Sender, admitted"},
	{"sender 429", "Sender, refused"},
	{"sentry 200", "Sentry, admitted"},
	{"sentry 429", "Sentry, refused"},
}

// samples formats one response of each kind per API, with its rate-limit
// fields, and a 429's problem+json body.
func (rep *report) samples() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nheader samples: the first response of each kind\n")
	for _, k := range sampled {
		s := rep.Samples[k.key]
		if s == nil {
			continue
		}
		fmt.Fprintf(&b, "  %s: %s -> %d\n", k.what, s.Request, s.Status)
		for _, f := range slices.Sorted(maps.Keys(s.Header)) {
			fmt.Fprintf(&b, "      %s: %s\n", f, strings.Join(s.Header[f], ", "))
		}
	}
	if s := rep.Samples["mail-live 429"]; s != nil {
		fmt.Fprintf(&b, "\nthe mail API's 429, application/problem+json:\n  %s\n", s.Body)
	}
	if rep.Headerless > 0 {
		fmt.Fprintf(&b, "\n%d responses carried no rate-limit header\n", rep.Headerless)
	}
	return b.String()
}
