package httplimit_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestWriteHeaders holds WriteHeaders, the header writer another transport
// uses, to the middleware's own output: two twin middlewares, one serving
// requests and one judging the same requests through its Policy, must
// produce the same rate-limit fields, admitted, refused and never-fitting.
func TestWriteHeaders(t *testing.T) {
	twin := func() *httplimit.Middleware {
		org, _ := tokenbucket.New(tokenbucket.Config{Limit: 3, Window: time.Minute, Burst: 3})
		sem, _ := concurrency.New(concurrency.Config{Limit: 10})
		return mustNew(t, httplimit.Config{
			Tiers: []httplimit.Tier{
				{Name: "org", Key: httplimit.Bearer, Limiter: httplimit.Shared(org)},
				{Name: "conc", Limiter: httplimit.Shared(sem)},
			},
			Cost:    func(r *http.Request) int { return len(r.Header["N"]) + 1 },
			Headers: httplimit.XRateLimit | httplimit.Sanity | httplimit.IETF,
			Clock:   mockAt(t0),
		})
	}
	served, judged := twin(), twin()
	pol := judged.Policy()
	h := served.Wrap(ok)
	for i, n := range []int{1, 1, 2, 1, 5} { // admitted, admitted, refused (429), admitted, never (413)
		r := newReq("192.0.2.1:5", "Authorization", "Bearer tok")
		for range n - 1 {
			r.Header.Add("N", "x")
		}
		w := serve(h, r)

		rep := pol.NewReport()
		rep.Tiers[0].Key, rep.Tiers[0].Cost = "tok", n
		rep.Tiers[1].Cost = n
		pol.Decide(t0, rep, true)
		got := http.Header{}
		judged.WriteHeaders(got, rep)
		pol.Settle(rep, false)

		want := w.Header().Clone()
		for _, k := range []string{"Content-Type", "X-Content-Type-Options"} {
			delete(want, k)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("request %d (status %d): WriteHeaders = %v, middleware wrote %v", i, w.Code, got, want)
		}
		if (w.Code == http.StatusTooManyRequests) != (got.Get("Retry-After") != "") {
			t.Errorf("request %d: status %d with Retry-After %q", i, w.Code, got.Get("Retry-After"))
		}
	}
}

// TestWriteHeadersNoPolicy: a request no tier applied to gets no fields.
func TestWriteHeadersNoPolicy(t *testing.T) {
	m := mustNew(t, httplimit.Config{Tiers: []httplimit.Tier{{Name: "t", Key: httplimit.Bearer,
		Limiter: func(string) ratekit.Limiter { return nil }}}})
	pol := m.Policy()
	rep := pol.NewReport()
	rep.Tiers[0].Key = "k"
	pol.Decide(t0, rep, true)
	h := http.Header{}
	m.WriteHeaders(h, rep)
	if len(h) != 0 {
		t.Errorf("WriteHeaders with no tier applied = %v, want none", h)
	}
}
