package conformance

import (
	"math/rand/v2"
	"testing"
	"time"
)

// reconfigureSame holds "Reconfigure takes effect at once" to its trivial
// case: a Reconfigure to the Config in force (Subject.Reconfigure to
// Capacity, reading the time at Start) changes no decision at all, at any
// instant, stale ones included, whatever was taken before it: a limiter
// and a twin take alike, the limiter is reconfigured, and from then on
// every Take and Peek of both, at instants from hours before Start to
// several Windows after it, must return the same Decision.
//
// Scripts: a fresh limiter (nothing taken), Takes all before Start (a
// token bucket full again by Start, or not), Takes after Start (in the
// future of the time Reconfigure reads), and random ones; the seed is
// logged and read back from SeedEnv.
func (s Subject) reconfigureSame(t *testing.T) {
	if !s.reconfigureCheck(t) {
		return
	}
	w, c := s.window(t), s.Capacity
	third := max(c/3, 1)
	befores := [][]winTake{
		nil,
		{{-2 * w, c}},
		{{-w / 2, c}},
		{{-3 * w, third}, {-w / 3, 1}},
		{{w / 4, c}},
		{{-w / 2, third}, {w / 3, third}, {-w, 1}},
	}
	rng := rand.New(rand.NewPCG(seed(t), 0x5a3e))
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	span := func() time.Duration { return time.Duration(rng.Int64N(int64(6*w))) - 3*w }
	for range rounds {
		var b []winTake
		for range 1 + rng.IntN(4) {
			b = append(b, winTake{span(), 1 + rng.IntN(c)})
		}
		befores = append(befores, b)
	}
	for _, before := range befores {
		l, twin := s.New(t), s.New(t)
		for _, tk := range before {
			at := s.Start.Add(tk.At)
			if got, want := l.Take(at, tk.N), twin.Take(at, tk.N); got != want {
				t.Fatalf("two fresh limiters decided Take(Start%s, %d) differently: %v and %v", signed(tk.At), tk.N, got, want)
			}
		}
		s.reconfigure(t, l, c)
		// Queries first (Peeks change nothing), then Takes mixed with Peeks.
		queries := []time.Duration{-2 * time.Hour, -time.Hour, -3 * w, -w, -w / 2, -1, 0, 1, w / 2, w, 3 * w}
		for _, tk := range before {
			queries = append(queries, tk.At-1, tk.At, tk.At+w/2, tk.At+w-1, tk.At+w)
		}
		for _, q := range queries {
			for _, n := range []int{0, 1, third, c} {
				at := s.Start.Add(q)
				if got, want := l.Peek(at, n), twin.Peek(at, n); got != want {
					t.Fatalf("Takes (at Start+, n) %v, then Reconfigure to the same Config (at Start): Peek(Start%s, %d) = %v; never reconfigured, %v",
						before, signed(q), n, got, want)
				}
			}
		}
		for i := range 8 {
			q, n := span(), 1+rng.IntN(c)
			if i%2 == 0 {
				q = queries[rng.IntN(len(queries))]
			}
			at := s.Start.Add(q)
			if got, want := l.Take(at, n), twin.Take(at, n); got != want {
				t.Fatalf("Takes (at Start+, n) %v, then Reconfigure to the same Config (at Start): Take(Start%s, %d) = %v; never reconfigured, %v",
					before, signed(q), n, got, want)
			}
		}
	}
}
