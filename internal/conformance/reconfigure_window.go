package conformance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// This file holds the check of a Window change by Reconfigure: units taken
// stay counted whatever limits Reconfigure sets and unsets, the change
// takes effect at once, and a stale time never admits more (the ratekit
// package documentation).
//
// What the check can hold a limiter to: a limiter forgets units its
// window no longer counts, and a longer Window does not bring them back
// (the Reconfigure contract in the ratekit package documentation says so).
// So every script takes its units at instants where the limiter still
// counts each one at the Reconfigure instant r (Peek(r, 0).Remaining says
// so; a script whose units a window boundary made the limiter forget is
// moved to another r). From r on, the limiter, under the new Window (and,
// for windows aligned to the clock, the new Offset), must admit no more in
// one Take, at any instant, stale ones included, than a twin that had the
// new Config all along and took the same Takes.
//
// An Anchored limiter (rolling) keeps one window, which after a shorter
// Window holds the units carried over for up to the new Window from r: a
// Take stamped in it joins it and closes with it, where the twin may open
// a window of its own at that Take (its windows of the units before r
// having closed), so such a limiter is held to its twin only for Takes
// after r stamped before r or a new Window or more after it.

// winTake is a Take of N units at r+At.
type winTake struct {
	At time.Duration
	N  int
}

// winScript is one history of the check: Takes before the Reconfigure (at
// instants up to r), the new Window and shift (see
// Subject.ReconfigureWindow), Takes after it (at any instant, stale ones
// included) and the instants, relative to r, to compare the limiter and
// its twin at.
type winScript struct {
	before  []winTake
	window  time.Duration
	shift   time.Duration
	after   []winTake
	queries []time.Duration
}

func (sc winScript) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Takes (at r+, n) %v, then the window set to %v", sc.before, sc.window)
	if sc.shift != 0 {
		fmt.Fprintf(&b, " shifted by %v", sc.shift)
	}
	if len(sc.after) > 0 {
		fmt.Fprintf(&b, ", then Takes %v", sc.after)
	}
	return b.String()
}

// reconfigureWindow checks Window changes over fixed scripts (a window cut
// to a sixtieth with the units taken just before r, longer and shorter
// windows that are not multiples, shifted alignments) and random ones; the
// seed is logged and read back from SeedEnv.
func (s Subject) reconfigureWindow(t *testing.T) {
	if s.ReconfigureWindow == nil {
		t.Skip("Subject has no ReconfigureWindow (a limiter without a Window, or a view whose limiters are reconfigured each on its own)")
	}
	w, c := s.window(t), s.Capacity
	third := max(c/3, 1)
	windows := []time.Duration{w / 60, w / 3, 2 * w / 7, w, 4 * w / 3, 5 * w / 2, 3 * w}
	befores := [][]winTake{
		{{0, c}},
		{{-w / 2, third}, {-w / 100, third}, {0, c - 2*third}},
		{{-w / 60, 1}, {-1, c - 1}},
		{{0, third}, {-w / 3, third}, {-w / 2, 1}}, // stale Takes after the first
		{{-3 * w / 4, 1}, {-w / 4, third}},
		{{-w / time.Duration(4*c), c / 2}, {0, 1}}, // close enough for a token bucket
	}
	ran := 0
	for _, before := range befores {
		for _, nw := range windows {
			for _, shift := range []time.Duration{0, w / 5, -w / 3} {
				if shift != 0 && nw != w && nw != w/3 && nw != 5*w/2 {
					continue
				}
				if nw <= 0 {
					continue
				}
				sc := winScript{before: before, window: nw, shift: shift}
				sc.after = []winTake{{nw / 2, 1}, {nw, third}, {-nw / 2, 1}, {w, c}, {w / 2, 1}}
				sc.queries = winQueries(w, nw, before)
				if s.runWindowScript(t, sc) {
					ran++
				}
			}
		}
	}
	if ran == 0 {
		t.Fatalf("no fixed script ran: the limiter forgot some unit of each before the Reconfigure, at every r tried")
	}
	rng := rand.New(rand.NewPCG(seed(t), 0x3140))
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	factors := [][2]int64{{1, 60}, {1, 7}, {2, 7}, {1, 3}, {1, 2}, {3, 4}, {1, 1}, {4, 3}, {3, 2}, {2, 1}, {5, 2}, {7, 1}}
	for range rounds {
		var sc winScript
		left := c
		for range 1 + rng.IntN(4) {
			if left == 0 {
				break
			}
			n := 1 + rng.IntN(left)
			left -= n
			at := -time.Duration(rng.Int64N(int64(w)))
			if rng.IntN(3) == 0 {
				at = -time.Duration(rng.IntN(3)) // at r, or nanoseconds before
			}
			sc.before = append(sc.before, winTake{at, n})
		}
		if rng.IntN(3) == 0 {
			sc.window = time.Duration(1 + rng.Int64N(4*int64(w)))
		} else {
			f := factors[rng.IntN(len(factors))]
			sc.window = max(time.Duration(int64(w)/f[1]*f[0]), 1)
		}
		if rng.IntN(3) == 0 {
			sc.shift = time.Duration(rng.Int64N(2*int64(w))) - w
		}
		span := func() time.Duration { return time.Duration(rng.Int64N(int64(5*w))) - 2*w } // r-2w to r+3w
		for range rng.IntN(4) {
			sc.after = append(sc.after, winTake{span(), 1 + rng.IntN(c)})
		}
		sc.queries = winQueries(w, sc.window, sc.before)
		for range 8 {
			sc.queries = append(sc.queries, span())
		}
		s.runWindowScript(t, sc)
	}
}

// winQueries returns the instants, relative to r, that a script compares
// the limiter and its twin at: around r, and around where the old window w
// and the new one nw would end after r and after each Take before it.
func winQueries(w, nw time.Duration, before []winTake) []time.Duration {
	q := []time.Duration{-2 * w, -w, -w / 2, -nw, -nw / 2, -1, 0, 1, nw / 3, nw / 2, nw - 1, nw, nw + 1,
		3 * nw / 2, w / 2, w - 1, w, w + 1, 2 * w, 2 * nw, 3 * w}
	for _, tk := range before {
		for _, d := range []time.Duration{nw - 1, nw, w - 1, w, w + nw - 1} {
			q = append(q, tk.At+d)
		}
	}
	slices.Sort(q)
	return slices.Compact(q)
}

// runWindowScript runs sc at the first r (Start, then Start moved on by
// eighths of a window) where the limiter counts every unit sc takes before
// r, and reports whether it found one.
func (s Subject) runWindowScript(t *testing.T, sc winScript) bool {
	t.Helper()
	w := s.window(t)
	for k := range 8 {
		r := s.Start.Add(time.Duration(k) * (w / 8))
		if s.runWindowScriptAt(t, sc, r) {
			return true
		}
	}
	return false
}

// runWindowScriptAt runs sc with the Reconfigure at r, unless the limiter
// has forgotten some unit taken before r: then it reports false.
func (s Subject) runWindowScriptAt(t *testing.T, sc winScript, r time.Time) bool {
	t.Helper()
	l, twin := s.New(t), s.New(t)
	// The twin is reconfigured long before every instant of the script: a
	// fresh token bucket reconfigured at r would be full from r on only,
	// emptier at stale instants than one of the new Config all along.
	if err := s.ReconfigureWindow(twin, sc.window, sc.shift, r.Add(-4*s.window(t))); err != nil {
		t.Fatalf("ReconfigureWindow(%v, shift %v) of a fresh limiter: %v", sc.window, sc.shift, err)
	}
	taken := 0
	for _, tk := range sc.before {
		at := r.Add(tk.At)
		if l.Take(at, tk.N).Allowed {
			taken += tk.N
			// A twin that denies (a stale Take its shorter window has
			// left behind) holds less, and the check stays sound.
			twin.Take(at, tk.N)
		}
	}
	if taken == 0 || l.Peek(r, 0).Remaining != s.Capacity-taken {
		return false // nothing counted, or a unit forgotten: try another r
	}
	if err := s.ReconfigureWindow(l, sc.window, sc.shift, r); err != nil {
		t.Fatalf("ReconfigureWindow(%v, shift %v): %v", sc.window, sc.shift, err)
	}
	s.compareAfter(t, sc, l, twin, r, func(what string, q time.Duration, got, want int) {
		t.Helper()
		t.Fatalf("%v (r = Start%s)%s: the limiter admits %d at r%s; a twin with the new Window all along, %d",
			sc, signed(r.Sub(s.Start)), what, got, signed(q), want)
	})
	return true
}

// compareAfter compares l with its twin at sc's query instants from r, then
// takes sc's Takes after r on both, comparing before each and at the
// queries after it, and calls fail where l admits more than the twin.
func (s Subject) compareAfter(t *testing.T, sc winScript, l, twin ratekit.Limiter, r time.Time,
	fail func(what string, q time.Duration, got, want int)) {
	t.Helper()
	compare := func(q time.Duration, what string) {
		t.Helper()
		at := r.Add(q)
		if got, want, more := s.admitsMore(l, twin, at); more {
			fail(what, q, got, want)
		}
	}
	for _, q := range sc.queries {
		compare(q, "")
	}
	for i, tk := range sc.after {
		if s.Anchored && tk.At >= 0 && tk.At < sc.window {
			// A Take that joins the window carried over closes with it,
			// sooner than the window it may open for the twin.
			continue
		}
		compare(tk.At, fmt.Sprintf(", before Take %d (%v) after it", i, tk))
		at := r.Add(tk.At)
		if l.Take(at, tk.N).Allowed {
			twin.Take(at, tk.N)
		}
		// A third of the queries after each Take (all of them over
		// three), and all after the last: Peeks of a log of a thousand
		// units are not free under -race.
		last := i == len(sc.after)-1
		for j, q := range sc.queries {
			if last || j%3 == i%3 {
				compare(q, fmt.Sprintf(", after Take %d (%v) after it", i, tk))
			}
		}
	}
}
