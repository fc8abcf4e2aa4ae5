package conformance

import (
	"encoding"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// This file holds the checks of a clock glitch through Reconfigure and
// restore. The ratekit package documentation says a time far ahead (a
// clock glitch of a hundred years) is taken at its word: what it takes
// stays counted until then, and Reconfigure does not undo it. A limiter
// measures time from an epoch and holds only so many years either side of
// it exactly (a token bucket 2^60/q ns, 36 years at q = 1; the sliding Log
// and Counter 73 years; fixedwindow merges the windows past MinSpan into
// one that never ends), so a Take that far ahead is one the limiter keeps
// in a window or a TAT at the edge of its range, and a change of epoch (a
// Reconfigure on a clock that reads another time, a restore into a limiter
// made on one) must carry it as the limiter counted it.

// glitchAheads are how far after Start the glitched Takes are stamped:
// past a token bucket's range at q = 1 (36.5 years), past the sliding
// limiters' (73), and twice and three times that.
var glitchAheads = []time.Duration{40 * glitchYear, 80 * glitchYear, 150 * glitchYear, 250 * glitchYear}

const glitchYear = 8766 * time.Hour // 365.25 days

// glitchQueries are the instants, relative to the glitched Take, that the
// checks compare at: a nanosecond before (stale), at it, and inside the
// window that counts it.
func glitchQueries(w time.Duration) []time.Duration {
	return []time.Duration{-1, 0, 1, w / 2, w - 1}
}

// glitched returns a fresh limiter that has taken n, half the Capacity,
// at g, ahead past Start.
func (s Subject) glitched(t *testing.T, ahead time.Duration) (ratekit.Limiter, time.Time, int) {
	t.Helper()
	l := s.New(t)
	g := s.Start.Add(ahead)
	n := max(s.Capacity/2, 1)
	if !l.Take(g, n).Allowed {
		t.Fatalf("Take(Start+%v, %d) of a fresh limiter denied", ahead, n)
	}
	return l, g, n
}

// glitchReconfigure takes half the Capacity at a glitched instant g far
// ahead of Start, then reconfigures the limiter to the Config in force
// (ReconfigureWindow with its own Window and no shift), with the clock
// read at Start (the glitch is over) or at g (the clock glitched too). At
// g and in the window after it, the limiter must admit no more than it did
// before the Reconfigure.
func (s Subject) glitchReconfigure(t *testing.T) {
	if s.ReconfigureWindow == nil {
		t.Skip("Subject has no ReconfigureWindow (a limiter without a Window, or a view)")
	}
	w := s.window(t)
	for _, ahead := range glitchAheads {
		for _, clockAt := range []string{"Start", "the glitch"} {
			l, g, n := s.glitched(t, ahead)
			qs := glitchQueries(w)
			before := make([]int, len(qs))
			for i, q := range qs {
				before[i] = s.capacity(l, g.Add(q))
			}
			now := s.Start
			if clockAt == "the glitch" {
				now = g
			}
			if err := s.ReconfigureWindow(l, w, 0, now); err != nil {
				t.Fatalf("ReconfigureWindow to its own Window at %v: %v", now, err)
			}
			for i, q := range qs {
				if got := s.capacity(l, g.Add(q)); got > before[i] {
					t.Errorf("%d taken at Start+%v (a glitch), then Reconfigure to the Config in force with the clock at %s: at the glitch%s it admits %d, before the Reconfigure %d",
						n, ahead, clockAt, signed(q), got, before[i])
				}
			}
		}
	}
}

// glitchRestore takes half the Capacity at a glitched instant g far ahead
// of Start, saves the limiter's state and restores it into a fresh one
// whose clock reads Start (a restart after the glitch) or g (a restart
// during it). At g and in the window after it, the restored limiter must
// admit no more than the one it was saved from; an error from
// UnmarshalBinary (a state further from the limiter's epoch than it
// holds, which some algorithms refuse as their docs say) passes.
func (s Subject) glitchRestore(t *testing.T) {
	if s.WithClock == nil {
		t.Skip("no WithClock: the limiter reads no clock of its own")
	}
	marshal, _ := s.saver(t)
	w := s.window(t)
	for _, ahead := range glitchAheads {
		for _, clockAt := range []string{"Start", "the glitch"} {
			l, g, n := s.glitched(t, ahead)
			clk := clock.NewMock()
			clk.Set(s.Start)
			if clockAt == "the glitch" {
				clk.Set(g)
			}
			r := s.WithClock(t, clk)
			if err := r.(encoding.BinaryUnmarshaler).UnmarshalBinary(marshal(l)); err != nil {
				// A clear refusal (a state further from the restoring
				// limiter's epoch than it holds) is a documented
				// decision; the check is of what a restore admits.
				t.Logf("%d taken at Start+%v, restored with the clock at %s: %v", n, ahead, clockAt, err)
				continue
			}
			for _, q := range glitchQueries(w) {
				if got, want := s.capacity(r, g.Add(q)), s.capacity(l, g.Add(q)); got > want {
					t.Errorf("%d taken at Start+%v (a glitch), saved and restored into a limiter whose clock reads %s: at the glitch%s it admits %d, the saved one %d",
						n, ahead, clockAt, signed(q), got, want)
				}
			}
		}
	}
}
