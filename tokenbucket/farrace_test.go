package tokenbucket_test

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// farRaceTake is one admitted Take of TestFarConcurrentTakes: on limiter
// k, in cluster c, at, n units, and whether it was refunded since.
type farRaceTake struct {
	k, c, n  int
	at       time.Time
	refunded bool
}

// TestFarConcurrentTakes races Takes (direct and through a Keyed), and
// Refunds of some of them, on two limiters (of one Template, whose
// siblings share parameters until a far Take moves one's epoch, or of New)
// at times in clusters centuries apart (year 1, 300 years before t0, Sub's
// bound from t0, t0 and 10 s either side, beyond the fine bucket's fast
// range, and year 9999), visited in that order, a phase each, with stale
// Takes mixed in, so that the epoch moves forward under the race; in every
// other phase Reconfigures to the same Config, with the clock two fast
// ranges after the cluster, move the epoch past the TAT, so that the
// phase's next Takes move it back, racing (see movedTo; a Reconfigure with
// the clock before a cluster would forgive its debt, by design).
//
// Within a cluster of Take times spanning S, GCRA admits at most Burst
// plus S's refill, whatever the order and whatever the other clusters saw:
// each Take moves the TAT by n intervals from at least the cluster's first
// time, and one admitted at s leaves it at most s + tau. A Refund leaves
// the TAT no lower than had its Take not happened, so the units of the
// Takes never refunded keep that bound. The spans are 3 ns and 1 ns, so
// the bound is Burst plus at most 2 units: a move that loses 2 units of
// the TAT fails it.
func TestFarConcurrentTakes(t *testing.T) {
	// In order of time: the phases visit them so, each cluster in turn
	// (the TAT only moves on, so a Take at a later one leaves the earlier
	// ones empty).
	anchors := []time.Time{{}, t0.AddDate(-300, 0, 0), t0.Add(math.MinInt64), t0.Add(-10 * time.Second), t0, t0.Add(10 * time.Second), yearMax}
	for _, tc := range []struct {
		cfg  tokenbucket.Config
		span time.Duration
	}{
		{tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "fine"}, 3},
		{tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 5, Name: "coarse"}, 1},
	} {
		for _, fromTemplate := range []bool{true, false} {
			tc.cfg.Clock = atT0()
			var ls [2]*tokenbucket.Limiter
			tmpl := mustTemplate(t, tc.cfg)
			for i := range ls {
				if fromTemplate {
					ls[i] = tmpl.New()
				} else {
					ls[i] = mustNew(t, tc.cfg)
				}
			}
			keyed := ratekit.NewKeyed(func(k int) *tokenbucket.Limiter { return ls[k] }, ratekit.KeyedConfig{})
			const workers, ops = 4, 60
			takes := make([][]farRaceTake, workers)
			for phase := range anchors {
				// Two fast ranges after the cluster: the epoch is moved
				// there, and Z with it, close enough for the cluster's
				// Takes to move the epoch back (see movedTo).
				ahead := tc.cfg
				ahead.Clock = &setClock{now: anchors[phase].Add(2 * farRange(tc.cfg))}
				var wg sync.WaitGroup
				var done atomic.Int64 // the phase's steps so far
				if phase%2 == 1 {
					// The epoch moves past the cluster, three times in the
					// phase (after 40, 100 and 160 of its 240 steps), the
					// TAT kept before it: the phase's next Takes
					// move it back with the TAT, racing. (Z moves there
					// too: a Refund after gives nothing back; the phase
					// has none.)
					wg.Add(1)
					go func() {
						defer wg.Done()
						for _, at := range []int64{40, 100, 160} {
							for done.Load() < at {
								runtime.Gosched()
							}
							for _, l := range ls {
								if err := l.Reconfigure(ahead); err != nil {
									t.Error(err)
								}
							}
						}
					}()
				}
				for g := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rng := rand.New(rand.NewPCG(uint64(g), uint64(phase)))
						for range ops {
							farRaceStep(rng, phase, g, anchors, tc.span, ls, keyed, takes)
							done.Add(1)
						}
					}()
				}
				wg.Wait()
			}
			// Units kept, and the span of their times, per limiter and cluster.
			type cell struct {
				units  int64
				lo, hi time.Time
				admits int
			}
			var cells [2][]cell
			for k := range cells {
				cells[k] = make([]cell, len(anchors))
			}
			for _, mine := range takes {
				for _, r := range mine {
					c := &cells[r.k][r.c]
					c.admits++
					if r.refunded {
						continue
					}
					if c.units == 0 || r.at.Before(c.lo) {
						c.lo = r.at
					}
					if c.units == 0 || r.at.After(c.hi) {
						c.hi = r.at
					}
					c.units += int64(r.n)
				}
			}
			g := gcdInt(int64(tc.cfg.Limit), int64(tc.cfg.Window))
			q, p := int64(tc.cfg.Limit)/g, int64(tc.cfg.Window)/g
			for k := range cells {
				for c, x := range cells[k] {
					// units*p <= (hi - lo)*q + Burst*p
					if x.units*p > int64(x.hi.Sub(x.lo))*q+int64(tc.cfg.Burst)*p {
						t.Errorf("%s (template %v): limiter %d, cluster %v: %d units kept over %v; GCRA admits at most %d plus the span's refill",
							tc.cfg.Name, fromTemplate, k, anchors[c], x.units, x.hi.Sub(x.lo), tc.cfg.Burst)
					}
				}
				t.Logf("%s (template %v): limiter %d: admitted Takes per cluster %v", tc.cfg.Name, fromTemplate, k, func() []int {
					a := make([]int, len(anchors))
					for c, x := range cells[k] {
						a[c] = x.admits
					}
					return a
				}())
			}
		}
	}
}

// farRaceStep is one step of worker g of TestFarConcurrentTakes in the
// phase of cluster phase: a Refund of one of its admitted Takes (a fifth of
// the steps of an even phase: in an odd one, a Refund after a Reconfigure
// gives nothing back, and uncounting its Take would loosen the check), or a
// Take on a limiter, direct or through keyed, at a time in
// the phase's cluster or an earlier one (stale). (A Take at a later one
// would leave the phase's cluster empty for the rest of the phase.)
func farRaceStep(rng *rand.Rand, phase, g int, anchors []time.Time, span time.Duration, ls [2]*tokenbucket.Limiter, keyed *ratekit.Keyed[int, *tokenbucket.Limiter], takes [][]farRaceTake) {
	if mine := takes[g]; phase%2 == 0 && len(mine) > 0 && rng.IntN(5) == 0 {
		r := &mine[rng.IntN(len(mine))]
		if !r.refunded {
			ls[r.k].Refund(r.at, r.n)
			r.refunded = true
		}
		return
	}
	k, c, n := rng.IntN(2), phase, 1+rng.IntN(3)
	if rng.IntN(7) == 0 {
		c = rng.IntN(phase + 1) // stale, or not
	}
	at := anchors[c].Add(time.Duration(rng.Int64N(int64(span))))
	var d ratekit.Decision
	if rng.IntN(3) == 0 {
		d = keyed.Take(at, k, n)
	} else {
		d = ls[k].Take(at, n)
	}
	if d.Allowed {
		takes[g] = append(takes[g], farRaceTake{k: k, c: c, n: n, at: at})
	}
}

// gcdInt is the greatest common divisor of two positive numbers.
func gcdInt(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
