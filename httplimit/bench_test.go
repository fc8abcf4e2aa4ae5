package httplimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// discard is a ResponseWriter that keeps nothing, reused across requests so
// that benchmarks measure the middleware rather than httptest.Recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// benchLimiter returns a lock-free token bucket that admits every request of the
// benchmark (a huge limit), so that every iteration takes the admitted path.
func benchLimiter(name string) ratekit.Limiter {
	l, err := tokenbucket.New(tokenbucket.Config{Limit: 1 << 30, Window: time.Second, Burst: 1 << 30, Name: name})
	if err != nil {
		panic(err)
	}
	return l
}

type benchCase struct {
	name string
	cfg  func() *httplimit.Config // nil: the bare handler
}

func benchCases(tb testing.TB) []benchCase {
	ipKey, err := httplimit.ClientIP(httplimit.IPConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	// Every tier looks its key up in a ratekit.Keyed, as a service would.
	keyed := func(name string) func(string) ratekit.Limiter {
		k := ratekit.NewKeyed(func(string) ratekit.Limiter { return benchLimiter(name) }, ratekit.KeyedConfig{})
		return k.Get
	}
	three := func() []httplimit.Tier {
		return []httplimit.Tier{
			{Name: "org", Key: httplimit.Header("X-Org"), Limiter: keyed("org")},
			{Name: "token", Key: httplimit.Bearer, Limiter: keyed("token")},
			{Name: "ip", Key: ipKey, Limiter: keyed("ip")},
		}
	}
	return []benchCase{
		{"bare", nil},
		{"1tier", func() *httplimit.Config {
			return &httplimit.Config{Tiers: []httplimit.Tier{{Name: "ip", Key: ipKey, Limiter: keyed("ip")}}}
		}},
		{"3tiers", func() *httplimit.Config { return &httplimit.Config{Tiers: three()} }},
		// OnDecision needs every tier's own Decision: a Peek per tier after
		// TakeAll, without the IETF dialect's formatting.
		{"3tiers-OnDecision", func() *httplimit.Config {
			return &httplimit.Config{Tiers: three(), OnDecision: func(*http.Request, ratekit.Decision, []httplimit.TierDecision) {}}
		}},
		{"3tiers-IETF", func() *httplimit.Config {
			return &httplimit.Config{Tiers: three(), Headers: httplimit.XRateLimit | httplimit.IETF}
		}},
		// The org tier counts events, 10 a request: the headers count the
		// binding tier in requests (a division per tier of cost > 1).
		{"3tiers-units", func() *httplimit.Config {
			tiers := three()
			tiers[0].Unit, tiers[0].Cost = "events", func(*http.Request) int { return 10 }
			return &httplimit.Config{Tiers: tiers}
		}},
		{"3tiers-failure", func() *httplimit.Config {
			return &httplimit.Config{Tiers: three(), Failure: &httplimit.FailureTier{
				Name: "auth", Key: ipKey, Limiter: keyed("auth")}}
		}},
	}
}

func benchHandler(tb testing.TB, c benchCase) http.Handler {
	if c.cfg == nil {
		return ok
	}
	return mustNew(tb, *c.cfg()).Wrap(ok)
}

// BenchmarkMiddleware measures the cost of the middleware per request
// against the bare handler, serially and in parallel.
func BenchmarkMiddleware(b *testing.B) {
	for _, c := range benchCases(b) {
		b.Run(c.name, func(b *testing.B) {
			h := benchHandler(b, c)
			r := newReq("203.0.113.9:4711", "Authorization", "Bearer sk_live_1", "X-Org", "acme")
			w := &discard{h: make(http.Header)}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			reportCPU(b, cpu)
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			h := benchHandler(b, c)
			b.ReportAllocs()
			cpu := cpuTime()
			defer reportCPU(b, cpu)
			b.RunParallel(func(pb *testing.PB) {
				r := newReq("203.0.113.9:4711", "Authorization", "Bearer sk_live_1", "X-Org", "acme")
				w := &discard{h: make(http.Header)}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, r)
				}
			})
		})
	}
}

// reportCPU reports the process's CPU time per operation since start, in
// all threads (GC included), as cpu-ns/op: on a busy shared machine it
// varies far less than ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 && b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// TestAllocs pins the allocations of an admitted request: two for the
// header values (one string holding them all, one []string), whatever the
// number of tiers and dialects; the status recorder is pooled.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	want := map[string]float64{"bare": 0, "1tier": 2, "3tiers": 2, "3tiers-OnDecision": 2, "3tiers-IETF": 2, "3tiers-units": 2, "3tiers-failure": 2}
	for _, c := range benchCases(t) {
		h := benchHandler(t, c)
		r := newReq("203.0.113.9:4711", "Authorization", "Bearer sk_live_1", "X-Org", "acme")
		w := &discard{h: make(http.Header)}
		got := testing.AllocsPerRun(200, func() {
			clear(w.h)
			h.ServeHTTP(w, r)
		})
		if got != want[c.name] {
			t.Errorf("%s: %v allocations per request, want %v", c.name, got, want[c.name])
		}
	}
}
