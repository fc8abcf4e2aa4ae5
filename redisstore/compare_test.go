package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/redisstore"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

var start = conformance.DefaultStart // on the µs grid, aligned to no window

// modelConfigs cover every algorithm: small and large limits, intervals
// that are not whole microseconds, offsets, and the products at the bounds
// the script's exact arithmetic allows.
var modelConfigs = []redisstore.Config{
	{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 10, Window: time.Second, Burst: 10},
	{Algorithm: redisstore.TokenBucket, Name: "tb-odd", Limit: 7, Window: time.Second, Burst: 3},
	{Algorithm: redisstore.TokenBucket, Name: "tb-big", Limit: 1_000_000, Window: 24 * time.Hour, Burst: 50_000},
	{Algorithm: redisstore.TokenBucket, Name: "tb-fine", Limit: 3, Window: 10 * time.Microsecond, Burst: 5},
	{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 5, Window: time.Second},
	{Algorithm: redisstore.FixedWindow, Name: "fw-off", Limit: 60, Window: time.Minute, Offset: -7 * time.Second},
	{Algorithm: redisstore.Rolling, Name: "rw", Limit: 4, Window: time.Second},
	{Algorithm: redisstore.Rolling, Name: "rw-day", Limit: 100_000, Window: 24 * time.Hour},
	{Algorithm: redisstore.SlidingLog, Name: "sl", Limit: 5, Window: time.Second},
	{Algorithm: redisstore.SlidingLog, Name: "sl-25", Limit: 25, Window: time.Second},
	{Algorithm: redisstore.SlidingLog, Name: "sl-300", Limit: 300, Window: 10 * time.Second}, // walks in batches
	{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 5, Window: time.Second},
	{Algorithm: redisstore.SlidingCounter, Name: "sc-600", Limit: 600, Window: time.Minute},
	{Algorithm: redisstore.SlidingCounter, Name: "sc-big", Limit: 50_000, Window: 24 * time.Hour},
	// Real quotas beyond 2^53 unit·µs (issue #20): Rollbar's 100,000 a day
	// as a token bucket, 10^9 a day and 30-day windows on every algorithm.
	{Algorithm: redisstore.TokenBucket, Name: "tb-rollbar", Limit: 100_000, Window: 24 * time.Hour, Burst: 100_000},
	{Algorithm: redisstore.TokenBucket, Name: "tb-1e9-day", Limit: 1_000_000_000, Window: 24 * time.Hour, Burst: 1_000_000_000},
	{Algorithm: redisstore.TokenBucket, Name: "tb-1e9-30d", Limit: 1_000_000_000, Window: 30 * 24 * time.Hour, Burst: 999_999_937},
	{Algorithm: redisstore.TokenBucket, Name: "tb-max", Limit: redisstore.MaxLimit, Window: redisstore.MaxWindow, Burst: redisstore.MaxLimit},
	{Algorithm: redisstore.FixedWindow, Name: "fw-1e9-30d", Limit: 1_000_000_000, Window: 30 * 24 * time.Hour, Offset: -5 * time.Hour},
	{Algorithm: redisstore.Rolling, Name: "rw-1e9-30d", Limit: 1_000_000_000, Window: 30 * 24 * time.Hour},
	{Algorithm: redisstore.SlidingLog, Name: "sl-1e9-30d", Limit: 1_000_000_000, Window: 30 * 24 * time.Hour},
	{Algorithm: redisstore.SlidingCounter, Name: "sc-1e9-day", Limit: 1_000_000_000, Window: 24 * time.Hour},
	{Algorithm: redisstore.SlidingCounter, Name: "sc-1e9-30d", Limit: 1_000_000_000, Window: 30 * 24 * time.Hour},
	{Algorithm: redisstore.SlidingCounter, Name: "sc-max", Limit: redisstore.MaxLimit, Window: redisstore.MaxWindow},
}

// seed is the random seed of the randomized tests: RATEKIT_SEED replays one.
func seed(tb testing.TB) uint64 {
	if s := os.Getenv("RATEKIT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	v := uint64(time.Now().UnixNano())
	tb.Logf("seed %d (replay with RATEKIT_SEED=%d)", v, v)
	return v
}

// steps returns time steps for a window of w: zero, tiny, fractions of
// the window, whole windows, and steps back (stale times).
func steps(w time.Duration) []time.Duration {
	return []time.Duration{0, 0, 0, time.Microsecond, 7 * time.Microsecond, w / 7, w / 3, w / 2, w - time.Microsecond,
		w, 2*w + 3*time.Microsecond, -time.Microsecond, -w / 3}
}

// TestScriptMatchesModel drives the script and the reference model with the
// same random Take, Peek and Refund calls at injected instants and requires
// identical Decisions. Between calls the policy's Limit changes now and
// then (down to a third, up to twice, and back), as a Limiter of the same
// Algorithm and Name with another Limit does to a key, for every algorithm
// but the token bucket (whose Limit and Burst reshape its state; the
// reference models have no rule for that), and a sliding counter's Window
// too (a third, three times). Odd rounds change it more often
// and also step back by half a Window and a whole one, so that stale times
// meet units that a lowered Limit trimmed (the sliding log's lost mark).
func TestScriptMatchesModel(t *testing.T) {
	c := newClient(t)
	sd := seed(t)
	for _, evalOnly := range []bool{false, true} {
		s, err := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("model%d:", prefixes.Add(1)), TTLSlack: time.Hour, EvalOnly: evalOnly})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint("EvalOnly=", evalOnly), func(t *testing.T) { matchModels(t, s, sd) })
	}
}

func matchModels(t *testing.T, s *redisstore.Store, sd uint64) {
	for _, cfg := range modelConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			l := mustLimiter(t, s, cfg)
			rng := rand.New(rand.NewPCG(sd, uint64(len(cfg.Name))))
			capacity := cfg.Limit
			if cfg.Algorithm == redisstore.TokenBucket {
				capacity = cfg.Burst
			}
			// The policy under each Limit; for a token bucket, each rate
			// (Limit per Window, at one Burst) that validates: its tat's
			// fraction of a µs is kept in units of 1/Limit, which the script
			// must read under another Limit as the model does.
			// A sliding counter's and log's also under each Window (a third,
			// three times), as their state carries to another Window.
			var limits []*redisstore.Limiter
			windows := []time.Duration{cfg.Window}
			if cfg.Algorithm == redisstore.SlidingCounter || cfg.Algorithm == redisstore.SlidingLog {
				windows = append(windows, max((cfg.Window/3).Truncate(time.Microsecond), time.Microsecond), 3*cfg.Window)
			}
			for _, window := range windows {
				for _, limit := range []int{cfg.Limit, max(cfg.Limit/3, 1), min(2*cfg.Limit, redisstore.MaxLimit)} {
					c := cfg
					c.Limit, c.Window = limit, window
					if c.Validate() == nil {
						limits = append(limits, mustLimiter(t, s, c))
					}
				}
			}
			for round := range 6 {
				key := fmt.Sprint("k", round)
				m := newModel(cfg)
				l := l
				now := start
				st := steps(cfg.Window)
				if len(limits) > 0 && round%2 == 1 {
					st = append(st, -cfg.Window/2, -cfg.Window)
				}
				for i := range 150 {
					if len(limits) > 0 && rng.IntN(10) < 1+3*(round%2) {
						l = limits[rng.IntN(len(limits))]
						if tm, ok := m.(*tbModel); ok {
							k := l.Config()
							tm.setRate(int64(k.Limit), k.Window, int64(k.Burst))
						} else {
							m.setLimit(int64(l.Config().Limit))
						}
						if wm, ok := m.(interface{ setWindow(time.Duration) }); ok {
							wm.setWindow(l.Config().Window)
						}
					}
					now = now.Add(st[rng.IntN(len(st))]).Truncate(time.Microsecond)
					n := drawN(rng, capacity)
					us := scriptMicros(now)
					if os.Getenv("DBG") != "" && round == 1 {
						t.Logf("step %d +%v n=%d", i, now.Sub(start), n)
					}
					switch rng.IntN(5) {
					case 0:
						want := m.decide(us, n, false)
						got, err := l.PeekAt(context.Background(), key, now, n)
						check(t, sd, round, i, "Peek", n, now, got, want, err)
					case 1:
						at := now.Add(-st[rng.IntN(len(st))] / 2).Truncate(time.Microsecond)
						m.refund(scriptMicros(at), n)
						if err := l.RefundAt(context.Background(), key, at, n); err != nil {
							t.Fatal(err)
						}
					default:
						want := m.decide(us, n, true)
						got, err := l.TakeAt(context.Background(), key, now, n)
						check(t, sd, round, i, "Take", n, now, got, want, err)
					}
				}
			}
		})
	}
}

func check(t *testing.T, seed uint64, round, step int, op string, n int, now time.Time, got, want ratekit.Decision, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("seed %d round %d step %d: %s: %v", seed, round, step, op, err)
	}
	if got != want {
		t.Fatalf("seed %d round %d step %d: %s(+%v, %d):\n got  %v\n want %v", seed, round, step, op, now.Sub(start), n, got, want)
	}
}

// TestMatchesEmbedded runs the same script of events through each Redis
// limiter and the embedded limiter of the same algorithm.
func TestMatchesEmbedded(t *testing.T) {
	s, _ := newStore(t)
	sd := seed(t)
	type maker func(cfg redisstore.Config) (ratekit.Limiter, error)
	fixed := func(c redisstore.Config) (ratekit.Limiter, error) {
		return fixedwindow.New(fixedwindow.Config{Name: c.Name, Limit: c.Limit, Window: c.Window, Offset: c.Offset})
	}
	algs := []struct {
		alg          redisstore.Algorithm
		limit, burst int
		offset       time.Duration
		make         maker
	}{
		{redisstore.FixedWindow, 7, 0, 0, fixed},
		{redisstore.FixedWindow, 60, 0, -5 * time.Hour, fixed},
		{redisstore.FixedWindow, 5, 0, 90 * time.Minute, fixed},
		{redisstore.TokenBucket, 10, 10, 0, func(c redisstore.Config) (ratekit.Limiter, error) {
			return tokenbucket.New(tokenbucket.Config{Name: c.Name, Limit: c.Limit, Window: c.Window, Burst: c.Burst})
		}},
		{redisstore.TokenBucket, 7, 3, 0, func(c redisstore.Config) (ratekit.Limiter, error) {
			return tokenbucket.New(tokenbucket.Config{Name: c.Name, Limit: c.Limit, Window: c.Window, Burst: c.Burst})
		}},
		{redisstore.Rolling, 7, 0, 0, func(c redisstore.Config) (ratekit.Limiter, error) {
			return rolling.New(rolling.Config{Name: c.Name, Limit: c.Limit, Window: c.Window})
		}},
		{redisstore.SlidingLog, 7, 0, 0, func(c redisstore.Config) (ratekit.Limiter, error) {
			return slidingwindow.NewLog(slidingwindow.Config{Name: c.Name, Limit: c.Limit, Window: c.Window})
		}},
		{redisstore.SlidingCounter, 7, 0, 0, func(c redisstore.Config) (ratekit.Limiter, error) {
			return slidingwindow.NewCounter(slidingwindow.Config{Name: c.Name, Limit: c.Limit, Window: c.Window})
		}},
		{redisstore.SlidingCounter, 600, 0, 0, func(c redisstore.Config) (ratekit.Limiter, error) {
			return slidingwindow.NewCounter(slidingwindow.Config{Name: c.Name, Limit: c.Limit, Window: c.Window})
		}},
	}
	for _, a := range algs {
		for _, w := range []time.Duration{time.Second, time.Minute, 24 * time.Hour} {
			cfg := redisstore.Config{Algorithm: a.alg, Name: "user", Limit: a.limit, Window: w, Burst: a.burst, Offset: a.offset}
			t.Run(fmt.Sprintf("%v/%d/%v/%v", a.alg, a.limit, w, a.offset), func(t *testing.T) {
				r := mustLimiter(t, s, cfg)
				compareEmbedded(t, sd, r, cfg, func() ratekit.Limiter {
					l, err := a.make(cfg)
					if err != nil {
						t.Fatal(err)
					}
					return l
				})
			})
		}
	}
}

// compareEmbedded drives r (in Redis) and fresh embedded limiters with the
// same random events, at instants on the microsecond grid, and requires
// identical Decisions. Takes go forward in time (stale times are compared
// in TestScriptMatchesModel, where the semantics are this package's own).
// Refunds are legitimate: each gives back one earlier allowed Take, at its
// instant, once (the embedded packages document refunding more as misuse).
func compareEmbedded(t *testing.T, sd uint64, r *redisstore.Limiter, cfg redisstore.Config, fresh func() ratekit.Limiter) {
	t.Helper()
	rng := rand.New(rand.NewPCG(sd, uint64(cfg.Window)+uint64(cfg.Algorithm)))
	st := steps(cfg.Window)
	capacity := cfg.Limit
	if cfg.Burst > 0 {
		capacity = cfg.Burst
	}
	type take struct {
		at time.Time
		n  int
	}
	for round := range 4 {
		key := fmt.Sprintf("%v-%d-%d", cfg.Window, cfg.Limit, round)
		e := fresh()
		now := start
		var taken []take
		for i := range 120 {
			if d := st[rng.IntN(len(st))]; d > 0 {
				now = now.Add(d).Truncate(time.Microsecond)
			}
			n := rng.IntN(min(capacity, 10) + 2)
			if rng.IntN(3) == 0 {
				n = 1
			}
			switch op := rng.IntN(5); {
			case op == 0:
				got, err := r.PeekAt(context.Background(), key, now, n)
				check(t, sd, round, i, "Peek", n, now, got, onGrid(e.Peek(now, n)), err)
			case op == 1 && len(taken) > 0:
				j := rng.IntN(len(taken))
				tk := taken[j]
				taken = append(taken[:j], taken[j+1:]...)
				e.Refund(tk.at, tk.n)
				if err := r.RefundAt(context.Background(), key, tk.at, tk.n); err != nil {
					t.Fatal(err)
				}
			default:
				got, err := r.TakeAt(context.Background(), key, now, n)
				check(t, sd, round, i, "Take", n, now, got, onGrid(e.Take(now, n)), err)
				if got.Allowed && n > 0 {
					taken = append(taken, take{now, n})
				}
			}
		}
	}
}

// onGrid rounds an embedded limiter's RetryAfter and ResetAfter up to the
// microsecond, the script's resolution: on the microsecond grid the first
// instant at which a request is admitted is then the same (see the package
// doc).
func onGrid(d ratekit.Decision) ratekit.Decision {
	up := func(r time.Duration) time.Duration {
		if r == ratekit.Never || r%time.Microsecond == 0 {
			return r
		}
		return r - r%time.Microsecond + time.Microsecond
	}
	d.RetryAfter, d.ResetAfter = up(d.RetryAfter), up(d.ResetAfter)
	return d
}

// TestSlidingLogLongWalk fills a log with units at distinct instants, so
// that a denial and a refund walk many entries (in batches), and compares
// with the embedded Log.
func TestSlidingLogLongWalk(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	cfg := redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "org", Limit: 600, Window: time.Minute}
	r := mustLimiter(t, s, cfg)
	e, _ := slidingwindow.NewLog(slidingwindow.Config{Name: "org", Limit: 600, Window: time.Minute})
	now := start
	for i := range 600 {
		now = start.Add(time.Duration(i) * 50 * time.Millisecond)
		got, err := r.TakeAt(ctx, "k", now, 1)
		check(t, 0, 0, i, "Take", 1, now, got, e.Take(now, 1), err)
	}
	for i, n := range []int{1, 150, 599, 600} {
		got, err := r.PeekAt(ctx, "k", now, n)
		check(t, 0, 1, i, "Peek", n, now, got, e.Peek(now, n), err)
	}
	at := start.Add(100 * 50 * time.Millisecond)
	e.Refund(at, 200)
	if err := r.RefundAt(ctx, "k", at, 200); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{1, 200, 201} {
		got, err := r.PeekAt(ctx, "k", now, n)
		check(t, 0, 2, i, "Peek", n, now, got, e.Peek(now, n), err)
	}
}

// drawN draws a call's n for a key of capacity units: mostly small, at
// times the whole capacity or one less, and now and then -1 or one more
// than the capacity (bad input the script must refuse).
func drawN(rng *rand.Rand, capacity int) int {
	n := rng.IntN(min(capacity, 12) + 2)
	switch {
	case rng.IntN(8) == 0:
		n = capacity - rng.IntN(2)
	case rng.IntN(30) == 0:
		n = -1
	case rng.IntN(30) == 0:
		n = capacity + 1
	}
	return n
}
