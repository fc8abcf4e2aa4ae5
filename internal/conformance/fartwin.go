package conformance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// This file holds the check that a limiter decides times in any year as a
// twin whose clock reads near them would: "time passed in may go backwards
// or be stale: a limiter never admits more because of it", at every
// time.Time, year 1 and year 9999 included. A limiter measures time from an
// epoch its clock gave, and time.Time.Sub saturates 292 years from it: a
// limiter that read every time beyond as that bound took instants a Window
// apart for one, so a window opened a Window before the bound held a Take
// stamped just after it, where the twin had closed that window and opened
// one at the Take, which counted it a Window longer.

// farAnchors are the instants the histories of farTwin are stamped
// around, relative to a limiter whose clock reads Start: the bounds
// time.Time.Sub saturates at either side of Start, a few centuries either
// side, and the first and the last years time.Time spells (year 1 is the
// zero time.Time).
func (s Subject) farAnchors() []farAnchor {
	const year = 8766 * time.Hour
	return []farAnchor{
		{"292 years before (Sub's bound)", s.Start.Add(math.MinInt64)},
		{"292 years after (Sub's bound)", s.Start.Add(math.MaxInt64)},
		{"300 years before", s.Start.Add(-150 * year).Add(-150 * year)},
		{"300 years after", s.Start.Add(150 * year).Add(150 * year)},
		{"year 1", time.Time{}},
		{"year 9999", time.Date(9999, 11, 30, 13, 1, 7, 250_000_000, time.UTC)},
	}
}

// farAnchor is an instant farTwin stamps histories around.
type farAnchor struct {
	name string
	at   time.Time
}

// farStep is one Take of a farTwin history: n units at the anchor plus at.
type farStep struct {
	at time.Duration
	n  int
}

// farTwin runs histories of Takes stamped around each of farAnchors on a
// limiter whose clock reads Start and on a twin, a limiter of the same
// Config whose clock reads the anchor. Every Take the limiter admits, the
// twin must admit; and after the history, at instants a nanosecond to
// three Windows either side of the anchor and next to every stamp, the
// limiter must admit in one Take no more than the twin. Where the limiter
// denies a Take the twin admits (it errs toward admitting less) the
// history stops, as the two no longer saw the same Takes. Targeted
// histories (a window opened a Window before Sub's bound, joined either
// side of it) come first, then random ones; the seed is logged and read
// back from SeedEnv. Limiters without a clock of their own are skipped.
func (s Subject) farTwin(t *testing.T) {
	if s.WithClock == nil {
		t.Skip("no WithClock: the limiter reads no clock of its own")
	}
	w, c := s.window(t), s.Capacity
	half := max(c/2, 1)
	targeted := [][]farStep{
		{{-w, half}, {-1, 1}, {1, 1}},
		{{-w, half}, {0, 1}, {w / 2, 1}},
		{{-w / 2, c}, {w / 2, 1}, {w, 1}},
		{{-2 * w, c}, {-w, 1}, {1, half}},
		{{0, 1}, {w - 1, half}, {w, 1}, {2*w - 1, 1}},
		{{w, half}, {-w, half}, {1, 1}},
	}
	rng := rand.New(rand.NewPCG(seed(t), 0xfa27))
	offs := []time.Duration{-2 * w, -w - 1, -w, -w + 1, -w / 2, -1, 0, 1, w / 2, w - 1, w, w + 1, 2 * w}
	sizes := []int{1, half, c}
	for _, a := range s.farAnchors() {
		t.Run(a.name, func(t *testing.T) {
			histories := append([][]farStep(nil), targeted...)
			for range 24 {
				h := make([]farStep, 1+rng.IntN(5))
				for i := range h {
					h[i] = farStep{offs[rng.IntN(len(offs))], sizes[rng.IntN(len(sizes))]}
				}
				histories = append(histories, h)
			}
			for _, h := range histories {
				if msg := s.farHistory(t, a.at, w, h); msg != "" {
					t.Errorf("history %v around %v (the limiter's clock at Start, the twin's at the anchor): %s", h, a.at, msg)
				}
			}
		})
	}
}

// farHistory runs h around anchor on a limiter of s.WithClock on a clock
// at Start and on its twin on a clock at anchor, and returns what the
// limiter admitted beyond the twin ("" if nothing).
func (s Subject) farHistory(t *testing.T, anchor time.Time, w time.Duration, h []farStep) string {
	t.Helper()
	lc, tc := clock.NewMock(), clock.NewMock()
	lc.Set(s.Start)
	tc.Set(anchor)
	l, twin := s.WithClock(t, lc), s.WithClock(t, tc)
	queries := []time.Duration{-3 * w, -2 * w, -w - 1, -w, -w / 2, -1, 0, 1, w / 2, w - 1, w, w + 1, 3 * w / 2, 2*w - 1, 2 * w, 2*w + 1, 3 * w}
	for i, st := range h {
		now := anchor.Add(st.at)
		got, want := l.Take(now, st.n), twin.Take(now, st.n)
		if got.Allowed && !want.Allowed {
			return fmt.Sprintf("Take %d (anchor%s, %d) admitted, the twin denies: %+v, twin %+v", i, signed(st.at), st.n, got, want)
		}
		if !got.Allowed && want.Allowed {
			return "" // less: the histories part
		}
		queries = append(queries, st.at-1, st.at+1, st.at+w-1, st.at+w)
	}
	for _, q := range queries {
		if got, want, more := s.admitsMore(l, twin, anchor.Add(q)); more {
			return fmt.Sprintf("at anchor%s it admits %d, the twin %d", signed(q), got, want)
		}
	}
	return ""
}

// String spells a farStep for a failure message.
func (st farStep) String() string { return fmt.Sprintf("%d@%s", st.n, signed(st.at)) }

// FarMixTimes returns the instants centuries apart that the far mixed
// histories of an algorithm's package (TestFarMixedHistories) jump
// between: t0, the bounds time.Time.Sub saturates at from t0, three
// centuries either side, and the first and the last years time.Time
// spells (the last within an hour of its end).
func FarMixTimes(t0 time.Time) []time.Time {
	return []time.Time{
		t0,
		t0.Add(math.MaxInt64),
		t0.Add(math.MinInt64),
		t0.AddDate(300, 0, 0),
		t0.AddDate(-300, 0, 0),
		{},
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC),
	}
}
