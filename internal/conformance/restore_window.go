package conformance

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// This file holds the check of a redeploy: a state saved by MarshalBinary
// under one Config and restored by UnmarshalBinary into a limiter of
// another (a longer or shorter Window, a lower or higher Limit or Burst).
// Units taken stay counted whatever limits are set, and a stale time never
// admits more (the ratekit package documentation, Reconfiguration and
// Persistence): restoring a state under a new Config is held to what
// Reconfigure to that Config at the state's own instant is held to (see
// reconfigure_window.go).
//
// Every script takes its units at instants where the limiter still counts
// each one at the save instant r (Peek(r, 0).Remaining says so; a script
// whose units a window boundary made the limiter forget is moved to
// another r). The state is saved at r and restored into a fresh limiter
// reconfigured to the new Config long before every instant of the script.
// From then on the restored limiter must admit no more in one Take, at any
// instant, stale ones included, than a twin that had the new Config all
// along and took the same Takes.
//
// Anchored limiters (rolling) are held to the twin as in ReconfigureWindow:
// a Take after r that joins the window carried over closes with it, and is
// skipped (compareAfter's one rule). A state does not record when it was
// saved, so a shorter Window carries the window to start at the old
// window's last instant (its units may all have been taken then), not at
// r: the window carried over lasts from the first admitted Take's stamp
// plus the old Window less 1 ns, for the new Window. Under a lower Limit,
// a twin that denied a Take the saving limiter admitted opened its window
// at another Take than the saved state did, and an Anchored unit closes
// with the window it joined, whatever Limit is set: the reference is then
// the saving limiter reconfigured to that Limit at r, as the restore is
// held to what Reconfigure at the state's own instant is held to.

// rwChange is the new Config of a restoreWindow script: a Window and shift
// (Subject.ReconfigureWindow) if window is set, else a capacity
// (Subject.Reconfigure).
type rwChange struct {
	window, shift time.Duration
	limit         int
}

func (ch rwChange) String() string {
	if ch.window == 0 {
		return fmt.Sprintf("restored into a limit of %d", ch.limit)
	}
	s := fmt.Sprintf("restored into a window of %v", ch.window)
	if ch.shift != 0 {
		s += fmt.Sprintf(" shifted by %v", ch.shift)
	}
	return s
}

// restoreWindow checks states restored under a changed Window or Limit
// over fixed scripts (those of ReconfigureWindow, and lower and higher
// limits) and random ones; the seed is logged and read back from SeedEnv.
func (s Subject) restoreWindow(t *testing.T) {
	marshal, restore := s.saver(t)
	if s.ReconfigureWindow == nil && s.Reconfigure == nil {
		t.Skip("Subject has neither ReconfigureWindow nor Reconfigure")
	}
	w, c := s.window(t), s.Capacity
	third := max(c/3, 1)
	var changes []rwChange
	if s.ReconfigureWindow != nil {
		for _, nw := range []time.Duration{w / 60, w / 3, 2 * w / 7, w, 4 * w / 3, 5 * w / 2, 3 * w} {
			for _, shift := range []time.Duration{0, w / 5, -w / 3} {
				if nw <= 0 || shift != 0 && nw != w && nw != w/3 && nw != 5*w/2 {
					continue
				}
				changes = append(changes, rwChange{window: nw, shift: shift})
			}
		}
	}
	if s.Reconfigure != nil {
		for _, lim := range []int{1, third, c / 2, c - 1, c + 1, 2 * c} {
			if lim >= 1 {
				changes = append(changes, rwChange{limit: lim})
			}
		}
	}
	befores := [][]winTake{
		{{0, c}},
		{{-w / 2, third}, {-w / 100, third}, {0, c - 2*third}},
		{{-w / 60, 1}, {-1, c - 1}},
		{{0, third}, {-w / 3, third}, {-w / 2, 1}}, // stale Takes after the first
		{{-3 * w / 4, 1}, {-w / 4, third}},
		{{-w / time.Duration(4*c), c / 2}, {0, 1}}, // close enough for a token bucket
		{{-w / 2, c}},
	}
	ran := 0
	for _, before := range befores {
		for _, ch := range changes {
			nw := ch.window
			if nw == 0 {
				nw = w
			}
			sc := winScript{before: before, window: nw, shift: ch.shift}
			sc.after = []winTake{{nw / 2, 1}, {nw, third}, {-nw / 2, 1}, {w, c}, {w / 2, 1}}
			sc.queries = winQueries(w, nw, before)
			if s.runRestoreWindow(t, sc, ch, marshal, restore) {
				ran++
			}
		}
	}
	if ran == 0 {
		t.Fatalf("no fixed script ran: the limiter forgot some unit of each before the save, at every r tried")
	}
	rng := rand.New(rand.NewPCG(seed(t), 0x5e5a))
	rounds := 40
	if testing.Short() {
		rounds = 15
	}
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
				at = -time.Duration(rng.IntN(3))
			}
			sc.before = append(sc.before, winTake{at, n})
		}
		ch := changes[rng.IntN(len(changes))]
		if ch.window != 0 && rng.IntN(2) == 0 {
			ch.window = time.Duration(1 + rng.Int64N(4*int64(w)))
			if rng.IntN(3) == 0 {
				ch.shift = time.Duration(rng.Int64N(2*int64(w))) - w
			}
		}
		sc.window, sc.shift = w, ch.shift
		if ch.window != 0 {
			sc.window = ch.window
		}
		span := func() time.Duration { return time.Duration(rng.Int64N(int64(5*w))) - 2*w }
		for range rng.IntN(4) {
			sc.after = append(sc.after, winTake{span(), 1 + rng.IntN(c)})
		}
		sc.queries = winQueries(w, sc.window, sc.before)
		for range 8 {
			sc.queries = append(sc.queries, span())
		}
		s.runRestoreWindow(t, sc, ch, marshal, restore)
	}
}

// runRestoreWindow runs sc at the first r (Start plus two windows, then
// moved on by eighths of a window: the Reconfigure of a limit reads the
// time at Start, before every instant of the script) where the limiter
// counts every unit sc takes before r, and reports whether it found one.
func (s Subject) runRestoreWindow(t *testing.T, sc winScript, ch rwChange,
	marshal func(ratekit.Limiter) []byte, restore func(ratekit.Limiter, []byte)) bool {
	t.Helper()
	w := s.window(t)
	for k := range 8 {
		r := s.Start.Add(3*w + time.Duration(k)*(w/8))
		if s.runRestoreWindowAt(t, sc, ch, r, marshal, restore) {
			return true
		}
	}
	return false
}

// runRestoreWindowAt runs sc with the save at r, unless the limiter has
// forgotten some unit taken before r: then it reports false.
func (s Subject) runRestoreWindowAt(t *testing.T, sc winScript, ch rwChange, r time.Time,
	marshal func(ratekit.Limiter) []byte, restore func(ratekit.Limiter, []byte)) bool {
	t.Helper()
	w := s.window(t)
	reconfigure := func(l ratekit.Limiter) {
		t.Helper()
		var err error
		if ch.window != 0 {
			err = s.ReconfigureWindow(l, ch.window, ch.shift, r.Add(-3*w))
		} else {
			err = s.Reconfigure(l, ch.limit)
		}
		if err != nil {
			t.Fatalf("%v: Reconfigure of a fresh limiter: %v", ch, err)
		}
	}
	old, twin := s.New(t), s.New(t)
	reconfigure(twin)
	taken, twinAll := 0, true
	var first time.Duration // the first admitted Take's stamp: an Anchored window's start
	for _, tk := range sc.before {
		at := r.Add(tk.At)
		if old.Take(at, tk.N).Allowed {
			if taken == 0 {
				first = tk.At
			}
			taken += tk.N
			if !twin.Take(at, tk.N).Allowed {
				twinAll = false
			}
		}
	}
	if taken == 0 || old.Peek(r, 0).Remaining != s.Capacity-taken {
		return false
	}
	saved := marshal(old)
	l := s.New(t)
	reconfigure(l)
	restore(l, saved)
	ref, refName := twin, "a twin of the new Config all along"
	if s.Anchored && !twinAll && ch.window == 0 {
		// The twin anchored its window at other Takes: the saving
		// limiter, reconfigured at r, is the reference.
		if err := s.Reconfigure(old, ch.limit); err != nil {
			t.Fatalf("%v: Reconfigure at r: %v", ch, err)
		}
		ref, refName = old, "the saving limiter reconfigured at r"
	}
	cmp := sc
	if s.Anchored && sc.window < w {
		// The window carried over starts at the old one's last instant
		// and lasts the new Window: compareAfter skips the Takes after r
		// that join it, as in ReconfigureWindow.
		cmp.window = first + w - 1 + sc.window
	}
	s.compareAfter(t, cmp, l, ref, r, func(what string, q time.Duration, got, want int) {
		t.Helper()
		t.Fatalf("Takes (at r+, n) %v saved at r = Start%s, %v%s: the limiter admits %d at r%s; %s, %d",
			sc.before, signed(r.Sub(s.Start)), ch, what, got, signed(q), refName, want)
	})
	return true
}
