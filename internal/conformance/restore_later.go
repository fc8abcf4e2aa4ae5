package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// restoreLater holds the restore promise (Persistence in the ratekit
// package documentation: restored into a limiter of the same Config, a
// state decides, at every instant, stale ones included, no more
// generously than the limiter that saved it) for a restart long after the
// save: the restoring limiter is made (Subject.WithClock) on a Clock that
// reads two Windows, a day, 400 days or 40 years after the saver's Takes,
// so that its epoch, if it has one, is that far from the saved instants
// (a token bucket's fast range can be 1.15 s, or 36 years). At every query
// instant around the saver's Takes, stale ones included, the restored
// limiter must admit, in one Take, no more than the saver; then both take
// at the restart instant (the saver only if the restored one admits), and
// the queries repeat.
func (s Subject) restoreLater(t *testing.T) { s.restoreAfter(t, false) }

// restoreLaterUsed is restoreLater for a restoring limiter that has
// already taken (a Take of 1 at the restart instant, before the restore,
// as a process that serves before persist attaches its state does): the
// restore promise makes no exception for it. (A token bucket at
// q = 999999937, whose fast range is 1.15 s, restored a day after the save
// into a limiter that had taken read the saver's times as full: 50
// admitted where the saver admits none.)
func (s Subject) restoreLaterUsed(t *testing.T) { s.restoreAfter(t, true) }

// restoreAfter is restoreLater, and restoreLaterUsed if used.
func (s Subject) restoreAfter(t *testing.T, used bool) {
	marshal, restore := s.saver(t)
	if s.WithClock == nil {
		t.Skip("Subject has no WithClock: the restoring limiter's Clock cannot be set")
	}
	w, c := s.window(t), s.Capacity
	third := max(c/3, 1)
	scripts := [][]winTake{
		{{0, c}},
		{{-w / 2, third}, {0, third}, {-w, 1}},
		{{-3 * w, c}, {-w / 3, 1}},
		{{0, 1}},
	}
	for _, later := range []time.Duration{2 * w, 24 * time.Hour, 400 * 24 * time.Hour, 40 * 365 * 24 * time.Hour} {
		for _, sc := range scripts {
			saver := s.New(t)
			for _, tk := range sc {
				saver.Take(s.Start.Add(tk.At), tk.N)
			}
			mock := clock.NewMock()
			mock.Set(s.Start.Add(later))
			l := s.WithClock(t, mock)
			took := ""
			if used {
				l.Take(s.Start.Add(later), 1)
				took = " and that took 1 then"
			}
			restore(l, marshal(saver))
			queries := []time.Duration{-4 * w, -w, -w / 2, -1, 0, 1, w / 3, w - 1, w, 2 * w}
			for _, tk := range sc {
				queries = append(queries, tk.At-1, tk.At, tk.At+1, tk.At+w-1, tk.At+w)
			}
			compare := func(what string) {
				t.Helper()
				for _, q := range queries {
					at := s.Start.Add(q)
					if got, want := s.capacity(l, at), s.capacity(saver, at); got > want {
						t.Fatalf("Takes (at Start+, n) %v, saved and restored into a limiter whose Clock reads Start+%v%s%s: it admits %d at Start%s; the saver, %d",
							sc, later, took, what, got, signed(q), want)
					}
				}
			}
			compare("")
			at := s.Start.Add(later)
			if l.Take(at, 1).Allowed {
				saver.Take(at, 1)
			}
			compare(fmt.Sprintf(", after a Take of 1 at Start+%v", later))
		}
	}
}
