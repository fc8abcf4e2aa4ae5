package conformance

import (
	"fmt"
	"testing"
	"time"
)

// reconfigureStale holds "units taken stay counted whatever limits
// Reconfigure sets and unsets" at stale instants too: a limiter takes at
// instants spread over more than a Window, its limit goes down (below what
// was taken) and back up, and at every query instant, stale ones included
// (a stale time never admits more), it must admit no more than a twin that
// took alike and was never reconfigured. A limiter may forget a unit that
// no later instant counts, but not, when its limit goes down, one that a
// stale instant still counts and that a higher limit would need again.
// Each cycle runs twice: with the limit changes alone, and with a Take of 1
// under each limit at a later instant than every take before (the twin
// takes 1 there too if the limiter admitted it): a Take under a lowered
// limit must not make the limiter forget a unit a stale time counts.
func (s Subject) reconfigureStale(t *testing.T) {
	if !s.reconfigureCheck(t) {
		return
	}
	w, c := s.window(t), s.Capacity
	takes := [][]time.Duration{
		{0, w},
		{0, w / 4, w, w + w/3},
		{0, 0, w / 2, w, w},
	}
	cycles := [][]int{{1, c}, {max(c/2, 1), c}, {1, 2 * c, c}, {1, 1, max(c/2, 1), c}}
	queries := []time.Duration{-w, 0, w / 4, w / 2, 3 * w / 4, w - 1, w, w + w/3, 3 * w / 2, 2 * w, 3 * w}
	for hi, h := range takes {
		for _, cy := range cycles {
			for _, n := range []int{1, max(c/3, 1)} {
				for _, write := range []bool{false, true} {
					l, twin := s.New(t), s.New(t)
					for _, at := range h {
						if got, want := l.Take(s.Start.Add(at), n).Allowed, twin.Take(s.Start.Add(at), n).Allowed; got != want {
							t.Fatalf("two fresh limiters decided Take(Start%s, %d) differently: %v and %v", signed(at), n, got, want)
						}
					}
					later := 5 * w
					for _, limit := range cy {
						s.reconfigure(t, l, limit)
						if !write {
							continue
						}
						// The twin takes what the limiter handed out (a
						// limit above Capacity may admit what the twin
						// denies: the twin then holds less, and the check
						// stays sound).
						if at := s.Start.Add(later); l.Take(at, 1).Allowed {
							twin.Take(at, 1)
						}
						later += 3 * w
					}
					for _, q := range queries {
						at := s.Start.Add(q)
						if got, want, more := s.admitsMore(l, twin, at); more {
							t.Fatalf("takes %d of %d at %v, then the limit set to %v (a Take under each: %v): the limiter admits %d at Start%s; "+
								"a twin never reconfigured, %d", hi, n, fmt.Sprint(h), cy, write, got, signed(q), want)
						}
					}
				}
			}
		}
	}
}
