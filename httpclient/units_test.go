package httpclient_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/httpclient"
	"github.com/ratekit/ratekit/httplimit"
)

// TestQuotaInOtherUnitsSkipped: a policy counted in units other than
// requests is not paced as if it counted requests, whichever way the server
// names its unit: the draft's qu, or the vendor parameter ratekit-unit that
// httplimit sends for a unit outside the draft's registry (a Rollbar-style
// quota of events, a batch of 10 costing 10). ParseQuotas read such an
// item, which has no qu, as a quota of requests: a client sharing 40
// events as 40 requests sends four times what the server admits.
func TestQuotaInOtherUnitsSkipped(t *testing.T) {
	now := time.Date(2026, 3, 18, 13, 1, 48, 0, time.UTC)
	for _, unit := range []string{"events", "content-bytes"} {
		events := must(fixedwindow.New(fixedwindow.Config{Name: "events", Limit: 100, Window: time.Minute}))
		reqs := must(fixedwindow.New(fixedwindow.Config{Name: "requests", Limit: 50, Window: time.Minute}))
		m := must(httplimit.New(httplimit.Config{
			Tiers: []httplimit.Tier{
				{Name: "events", Unit: unit, Limiter: httplimit.Shared(events), Cost: func(*http.Request) int { return 10 }},
				{Name: "requests", Limiter: httplimit.Shared(reqs)},
			},
			Headers: httplimit.IETF,
		}))
		rec := httptest.NewRecorder()
		m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("POST", "/api/1/item/", nil))
		qs := httpclient.ParseQuotas(rec.Header(), now)
		require.Len(t, qs, 1, "unit %s: %q %q -> %+v", unit, rec.Header().Values("RateLimit-Policy"), rec.Header().Values("RateLimit"), qs)
		require.Equal(t, "requests", qs[0].Policy)
		require.Equal(t, 49, qs[0].Remaining)
	}
}

// TestPacesTierInOtherUnits: the server's binding tier counts events, 105 a
// minute, and every request is a batch of 10 of them, beside a tier of 50
// requests a minute. The single-policy dialects count what binds in
// requests (10 a minute here, the events tier's), so a client pacing from
// them at 8 times the limit, one request after another over real sockets,
// draws no 429 and sends at most 10 in any window. (When they reported the
// least Remaining in its own unit, the 5 events left after 10 requests
// read as 5 more requests, and the 11th drew a 429.)
func TestPacesTierInOtherUnits(t *testing.T) {
	for name, dl := range map[string]httplimit.Dialect{
		"XRateLimit": httplimit.XRateLimit, "XRateLimitUnix": httplimit.XRateLimitUnix, "XRateLimitRFC3339": httplimit.XRateLimitRFC3339,
		"Sentry": httplimit.Sentry, "Rollbar": httplimit.Rollbar, "Sanity": httplimit.Sanity,
	} {
		t.Run(name, func(t *testing.T) {
			clk := clock.NewMock()
			clk.Set(time.Date(2026, 3, 18, 13, 1, 48, 0, time.UTC))
			s := &seedServer{clk: clk}
			events := must(fixedwindow.New(fixedwindow.Config{Name: "events", Limit: 105, Window: time.Minute}))
			reqs := must(fixedwindow.New(fixedwindow.Config{Name: "requests", Limit: 50, Window: time.Minute}))
			m := must(httplimit.New(httplimit.Config{
				Tiers: []httplimit.Tier{
					{Name: "events", Unit: "events", Limiter: httplimit.Shared(events), Cost: func(*http.Request) int { return 10 }},
					{Name: "requests", Limiter: httplimit.Shared(reqs)},
				},
				Headers: dl,
				Clock:   clk,
				OnDecision: func(_ *http.Request, d ratekit.Decision, _ []httplimit.TierDecision) {
					if !d.Allowed {
						s.mu.Lock()
						s.refused++
						s.mu.Unlock()
					}
				},
			}))
			limited := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.record(r) }))
			s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
				limited.ServeHTTP(w, r)
			}))
			t.Cleanup(s.Close)
			client := seedTransport(t, s, &waits{clk: clk}, httpclient.Config{})
			for i := range 8 * 10 {
				resp, err := client.Post(s.URL+"/api/1/item/", "application/json", strings.NewReader(`{"events":10}`))
				require.NoError(t, err, "request %d", i)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				require.Equal(t, 200, resp.StatusCode, "request %d", i)
			}
			require.Zero(t, s.refused, "429s drawn")
			require.Len(t, s.arrivals, 80)
			perWindow := map[time.Time]int{}
			for _, at := range s.arrivals {
				perWindow[at.Truncate(time.Minute)]++
			}
			for w, n := range perWindow {
				require.LessOrEqual(t, n, 10, "window %v", w)
			}
		})
	}
}
