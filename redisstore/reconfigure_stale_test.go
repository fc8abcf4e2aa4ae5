package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestReconfigureStaleTwin is internal/conformance's ReconfigureStale
// against the script, for every algorithm: units taken stay counted
// whatever limits come and go, at stale instants too. A key takes at
// instants spread over more than a Window, its policy's Limit goes down
// (below what was taken) and back up (a Limiter of the same Algorithm and
// Name, as the package doc says a policy changes), and at every query
// instant, stale ones included, it must admit no more than a twin key that
// took alike under the first Limit only. The conformance check itself
// (writes false) holds trivially here, as a policy changes in Redis only
// when a call writes under it; so each Limit in turn also takes (key and
// twin alike, writes true) at a later instant, where both decide alike.
//
// The sliding log with writes is the hard case: its archive, trimmed on a
// write to the Limit newest units, forgets under a lowered Limit a unit
// that a stale time still counts (takes of 1 at start and start+W, Limit
// 5 -> 1 -> 5 with a Take under each: without the lost mark, 3 admitted at
// start-W, by the twin 1). As slidingwindow.Log, the key keeps the newest
// unit it so forgot, and a time at which it counts admits nothing.
func TestReconfigureStaleTwin(t *testing.T) {
	s, _ := newStore(t)
	for _, cfg := range refundTwinConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			w, c := cfg.Window, cfg.Limit
			if cfg.Burst > 0 {
				c = cfg.Burst
			}
			with := func(limit int) *redisstore.Limiter {
				k := cfg
				if k.Burst > 0 {
					k.Burst = limit
				} else {
					k.Limit = limit
				}
				return mustLimiter(t, s, k)
			}
			l := with(c)
			takes := [][]time.Duration{
				{0, w},
				{0, w / 4, w, w + w/3},
				{0, 0, w / 2, w, w},
			}
			cycles := [][]int{{1, c}, {max(c/2, 1), c}, {1, 2 * c, c}, {1, 1, max(c/2, 1), c}}
			queries := []time.Duration{-w, 0, w / 4, w / 2, 3 * w / 4, w - time.Microsecond, w, w + w/3, 3 * w / 2, 2 * w, 3 * w}
			round := 0
			for _, h := range takes {
				for _, cy := range cycles {
					for _, n := range []int{1, max(c/3, 1)} {
						for _, write := range []bool{false, true} {
							round++
							key, twin := fmt.Sprint("rs", round), fmt.Sprint("rs-twin", round)
							for _, at := range h {
								at := start.Add(at.Truncate(time.Microsecond))
								if got, want := takeAt(t, l, key, at, n), takeAt(t, l, twin, at, n); got != want {
									t.Fatalf("two fresh keys decided Take(%v, %d) differently: %v and %v", at, n, got, want)
								}
							}
							later := start.Add(5 * w)
							for _, limit := range cy {
								lim := with(limit)
								if !write {
									continue
								}
								// A Take of 1 at a later instant under each
								// Limit, and the same on the twin under c.
								if takeAt(t, lim, key, later, 1) != takeAt(t, l, twin, later, 1) {
									t.Fatalf("Take(start+%v, 1) decided differently under Limit %d and %d", later.Sub(start), limit, c)
								}
								later = later.Add(3 * w)
							}
							for _, q := range queries {
								at := start.Add(q)
								if got, want := capacityAt(t, l, key, at, c), capacityAt(t, l, twin, at, c); got > want {
									t.Fatalf("takes of %d at %v, then the Limit set to %v (writes: %v): the key admits %d at start%s; a twin never reconfigured, %d",
										n, fmt.Sprint(h), cy, write, got, signedDur(q), want)
								}
							}
						}
					}
				}
			}
		})
	}
}
