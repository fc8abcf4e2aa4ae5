package rolling_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/rolling"
)

// farMixAnchors are the instants a history jumps between (see
// conformance.FarMixTimes).
var farMixAnchors = conformance.FarMixTimes(t0)

// TestFarMixedHistories drives two limiters and their reference models
// with histories whose times jump between instants centuries apart and
// back (near Take, far Take, near Refund, far Refund), through Take,
// TakeAll of the two, and a Keyed that holds them, with Reconfigures and
// restarts whose clocks read any of those instants between; the two
// limiters are of one Template (they share parameters until one moves its
// epoch) or of New, and a restart restores into a new Limiter (of the
// Template, reconfigured, or of New). Every Decision, Idle answer and OnLimitReached call
// must be the model's, and a TakeAll must be all or none: it admits iff
// both models admit, and one the first member denies leaves both as they
// were (one the second member alone denies is not sent: see the TakeAll
// case).
func TestFarMixedHistories(t *testing.T) {
	for seed := range uint64(300) {
		farMixHistory(t, seed)
	}
}

// farMixHistory runs the history of seed (see TestFarMixedHistories).
func farMixHistory(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xfa2))
	calls := [2]int{}
	hooks := [2]func(ratekit.Decision){func(ratekit.Decision) { calls[0]++ }, func(ratekit.Decision) { calls[1]++ }}
	windows := []time.Duration{time.Second, time.Hour, 30 * 24 * time.Hour}
	clockAt := func() clock.Clock {
		m := clock.NewMock()
		m.Set(farMixAnchors[rng.IntN(len(farMixAnchors))].Add(time.Duration(rng.IntN(5)-2) * time.Second))
		return m
	}
	cfgs := [2]rolling.Config{}
	var ls [2]*rolling.Limiter
	var ms [2]*model.Rolling
	base := rolling.Config{Limit: 1 + rng.IntN(4), Window: windows[rng.IntN(len(windows))], Name: "mix", Clock: clockAt()}
	fromTemplate := rng.IntN(2) == 0
	tmpl := mustTemplate(t, base)
	for i := range ls {
		cfgs[i] = base
		if fromTemplate {
			ls[i] = tmpl.New()
		} else {
			ls[i] = mustNew(t, base)
		}
		ms[i] = model.NewRolling(base.Limit, base.Window, base.Name, false)
	}
	keyed := ratekit.NewKeyed(func(k int) *rolling.Limiter { return ls[k] }, ratekit.KeyedConfig{})
	var taken [2][]time.Time
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		for _, s := range log {
			t.Log(s)
		}
		t.Fatalf("seed %d (template %v): "+format, append([]any{seed, fromTemplate}, args...)...)
	}
	log = append(log, fmt.Sprintf("Config %d/%v, clock at %v", base.Limit, base.Window, base.Clock.Now()))
	for i := range 40 {
		k := rng.IntN(2)
		l, m, cfg := ls[k], ms[k], &cfgs[k]
		a := farMixAnchors[rng.IntN(len(farMixAnchors))]
		offs := []time.Duration{0, 1, -1, cfg.Window, cfg.Window - 1, -cfg.Window, cfg.Window / 2, 2 * cfg.Window}
		now := a.Add(offs[rng.IntN(len(offs))])
		n := []int{0, 1, 1, 2, cfg.Limit}[rng.IntN(5)]
		switch op := rng.IntN(12); {
		case op < 3:
			var got ratekit.Decision
			if op == 2 {
				got = keyed.Take(now, k, n)
			} else {
				got = l.Take(now, n)
			}
			want := m.Take(now, n)
			log = append(log, fmt.Sprintf("%d: Take(%v, %d) [op %d] -> %v", k, now, n, op, got.Allowed))
			if got != want {
				fail("op %d: limiter %d: Take(%v, %d) = %v; model %v", i, k, now, n, got, want)
			}
			if got.Allowed && n > 0 {
				taken[k] = append(taken[k], now)
			}
		case op == 3:
			w0, w1 := ms[0].Peek(now, n), ms[1].Peek(now, n)
			if w0.Allowed && !w1.Allowed {
				// The first member would be rolled back by a Refund
				// where TakeAll takes its general path, which may leave
				// it spent (admitting less than the model at stale
				// times): not what this history is about.
				break
			}
			got := ratekit.TakeAll(now, n, ls[0], ls[1])
			log = append(log, fmt.Sprintf("TakeAll(%v, %d) -> %v", now, n, got.Allowed))
			if want := w0.Allowed && w1.Allowed; got.Allowed != want {
				fail("op %d: TakeAll(%v, %d) = %v; models %v, %v", i, now, n, got, w0, w1)
			}
			switch {
			case got.Allowed:
				for j := range ms {
					ms[j].Take(now, n)
					if n > 0 {
						taken[j] = append(taken[j], now)
					}
				}
			default:
				ms[0].Take(now, n) // the denial that decides, as a Take's
			}
		case op == 4:
			if got, want := l.Peek(now, n), m.Peek(now, n); got != want {
				fail("op %d: limiter %d: Peek(%v, %d) = %v; model %v", i, k, now, n, got, want)
			}
		case op < 8:
			at := now
			if len(taken[k]) > 0 && rng.IntN(3) > 0 {
				at = taken[k][rng.IntN(len(taken[k]))]
			}
			log = append(log, fmt.Sprintf("%d: Refund(%v, %d)", k, at, n))
			l.Refund(at, n)
			m.Refund(at, n)
		case op == 8:
			if got, want := l.Idle(now), m.Idle(now); got != want {
				fail("op %d: limiter %d: Idle(%v) = %v; model %v", i, k, now, got, want)
			}
		case op == 9:
			c := *cfg
			c.Limit, c.Window, c.Clock, c.OnLimitReached = 1+rng.IntN(4), windows[rng.IntN(len(windows))], clockAt(), hooks[k]
			log = append(log, fmt.Sprintf("%d: Reconfigure at %v to %d/%v", k, c.Clock.Now(), c.Limit, c.Window))
			if err := l.Reconfigure(c); err != nil {
				t.Fatal(err)
			}
			*cfg = c
			m.Reconfigure(c.Clock.Now(), c.Limit, c.Window, c.Name, true)
		default:
			state, err := l.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			c := *cfg
			c.Clock = clockAt()
			log = append(log, fmt.Sprintf("%d: restart at %v", k, c.Clock.Now()))
			r := mustNew(t, c)
			if fromTemplate && rng.IntN(2) == 0 {
				r = tmpl.New()
				if err := r.Reconfigure(c); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.UnmarshalBinary(state); err != nil {
				fail("op %d: UnmarshalBinary: %v", i, err)
			}
			m.Restored()
			// The Keyed makes its limiter anew: the restored one.
			ls[k] = r
			keyed.Delete(k)
		}
		for j := range ms {
			if cfgs[j].OnLimitReached != nil && calls[j] != ms[j].Notified {
				fail("op %d: limiter %d: OnLimitReached called %d times; model %d", i, j, calls[j], ms[j].Notified)
			}
		}
	}
}
