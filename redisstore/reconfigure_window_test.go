package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestReconfigureWindowTwin is internal/conformance's ReconfigureWindow
// against the script, for every algorithm: a key takes at instants where
// it still counts every unit at r, its policy's Window (for a fixed window
// also its Offset) changes (a Limiter of the same Algorithm and Name, as
// the package doc says a policy changes), and at every query instant,
// stale ones included, it must admit no more than a twin key that had the
// new policy all along and took the same Takes; then Takes after r under
// the new policy, and the queries again. A rolling key is held to its twin
// only for Takes stamped outside the window carried over (see the check).
func TestReconfigureWindowTwin(t *testing.T) {
	s, _ := newStore(t)
	rng := rand.New(rand.NewPCG(seed(t), 0x3141))
	for _, cfg := range refundTwinConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			w, c := cfg.Window, cfg.Limit
			if cfg.Burst > 0 {
				c = cfg.Burst
			}
			with := func(window, shift time.Duration) *redisstore.Limiter {
				k := cfg
				k.Window = window.Truncate(time.Microsecond)
				if k.Algorithm == redisstore.FixedWindow {
					k.Offset += shift.Truncate(time.Microsecond)
				}
				return mustLimiter(t, s, k)
			}
			old := with(w, 0)
			third := max(c/3, 1)
			type tk struct {
				at time.Duration
				n  int
			}
			// Fewer scripts than the conformance check runs: each query
			// here is a round trip.
			befores := [][]tk{
				{{0, c}},
				{{-w / 2, third}, {-w / 100, third}, {0, c - 2*third}},
				{{0, third}, {-w / 3, third}, {-w / 2, 1}},
			}
			windows := []time.Duration{w / 60, 2 * w / 7, w, 4 * w / 3, 5 * w / 2}
			round, ran := 0, 0
			for rep := range 3 {
				for _, before := range befores {
					for _, nw := range windows {
						shift := time.Duration(0)
						if rep > 0 {
							shift = []time.Duration{w / 5, -w / 3}[rep-1]
							if cfg.Algorithm != redisstore.FixedWindow {
								continue
							}
						}
						if nw == w && rep == 0 {
							continue // no change
						}
						after := []tk{{nw / 2, 1}, {nw, third}, {-nw / 2, 1}, {w, c}}
						for range 1 {
							after = append(after, tk{time.Duration(rng.Int64N(int64(5*w))) - 2*w, 1 + rng.IntN(c)})
						}
						queries := []time.Duration{-w, -w / 2, -nw, -time.Microsecond, 0, nw / 2, nw - time.Microsecond, nw,
							w - time.Microsecond, w, 2 * w}
						for _, b := range before {
							queries = append(queries, b.at+nw-time.Microsecond, b.at+w-time.Microsecond)
						}
						for k := range 8 {
							round++
							r := start.Add(time.Duration(k) * (w / 8)).Truncate(time.Microsecond)
							key, twin := fmt.Sprint("rw", round), fmt.Sprint("rw-twin", round)
							nl := with(nw, shift)
							taken := 0
							for _, b := range before {
								at := r.Add(b.at.Truncate(time.Microsecond))
								if takeAt(t, old, key, at, b.n) {
									taken += b.n
									takeAt(t, nl, twin, at, b.n)
								}
							}
							d, err := old.PeekAt(context.Background(), key, r, 0)
							if err != nil {
								t.Fatal(err)
							}
							if taken == 0 || d.Remaining != c-taken {
								continue // a unit forgotten: another r
							}
							ran++
							desc := fmt.Sprintf("Takes %v at r = start%s, then Window %v shifted %v", before, signedDur(r.Sub(start)), nl.Config().Window, shift)
							compare := func(what string) {
								for _, q := range queries {
									at := r.Add(q.Truncate(time.Microsecond))
									if got, want := capacityAt(t, nl, key, at, c), capacityAt(t, nl, twin, at, c); got > want {
										t.Fatalf("%s%s: the key admits %d at r%s; a twin with the new Window all along, %d", desc, what, got, signedDur(q), want)
									}
								}
							}
							compare("")
							for i, a := range after {
								if cfg.Algorithm == redisstore.Rolling && a.at >= 0 && a.at < nw {
									continue // joins the carried window (see the check)
								}
								at := r.Add(a.at.Truncate(time.Microsecond))
								if got, want := capacityAt(t, nl, key, at, c), capacityAt(t, nl, twin, at, c); got > want {
									t.Fatalf("%s, before Take %d (%v): the key admits %d; the twin, %d", desc, i, a, got, want)
								}
								if takeAt(t, nl, key, at, a.n) {
									takeAt(t, nl, twin, at, a.n)
								}
							}
							compare(", after the Takes after r")
							break
						}
					}
				}
			}
			if ran == 0 {
				t.Fatal("no script ran: every one had a unit forgotten at every r tried")
			}
		})
	}
}
