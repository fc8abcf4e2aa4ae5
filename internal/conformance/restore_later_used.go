package conformance

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"
)

// restoreLaterUsed is restoreLater for a restoring limiter that has
// already taken (a Take of 1 at the restart instant, before the restore,
// as a process that serves before persist attaches its state does): the
// restore promise (Persistence in the ratekit package documentation)
// makes no exception for it. At every query instant around the saver's
// Takes, stale ones included, the restored limiter must admit, in one
// Take, no more than the saver. (A token bucket at q = 999999937, whose
// fast range is 1.15 s, restored a day after the save into a limiter that
// had taken read the saver's times as full: 50 admitted where the saver
// admits none.)
func (s Subject) restoreLaterUsed(t *testing.T) {
	marshal, restore := s.saver(t)
	if s.WithClock == nil {
		t.Skip("Subject has no WithClock: the restoring limiter's Clock cannot be set")
	}
	w, c := s.window(t), s.Capacity
	scripts := [][]winTake{
		{{0, c}},
		{{-w / 2, max(c/3, 1)}, {0, max(c/3, 1)}},
	}
	for _, later := range []time.Duration{2 * w, 24 * time.Hour, 400 * 24 * time.Hour} {
		for _, sc := range scripts {
			saver := s.New(t)
			for _, tk := range sc {
				saver.Take(s.Start.Add(tk.At), tk.N)
			}
			mock := clock.NewMock()
			mock.Set(s.Start.Add(later))
			l := s.WithClock(t, mock)
			l.Take(s.Start.Add(later), 1)
			restore(l, marshal(saver))
			queries := []time.Duration{-w, -1, 0, 1, w / 3, w - 1, w}
			for _, tk := range sc {
				queries = append(queries, tk.At-1, tk.At, tk.At+1)
			}
			for _, q := range queries {
				at := s.Start.Add(q)
				if got, want := s.capacity(l, at), s.capacity(saver, at); got > want {
					t.Fatalf("Takes (at Start+, n) %v, saved and restored into a limiter whose Clock reads Start+%v and that took 1 then: it admits %d at Start%s; the saver, %d",
						sc, later, got, signed(q), want)
				}
			}
		}
	}
}
