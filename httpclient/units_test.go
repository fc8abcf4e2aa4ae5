package httpclient_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
