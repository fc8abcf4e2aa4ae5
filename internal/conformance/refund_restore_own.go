package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// refundAcrossOwnRestore holds the refund contract of ratekit.Limiter
// where a limiter is restored from its own state (a restart that saved it
// and loaded it back) between a Take X and X's refund: had X never
// happened, the limiter would have saved and restored a state without it.
// So at every query instant from X's stamp on, the limiter must admit, in
// one Take, no more than a twin that saw every other Take and made the
// same round trip of its own state, but not X. (A restore may make a
// refund give back less, never more: for an anchored limiter, doing
// nothing is not always less, since X may have opened the window that
// later Takes joined, which then closes sooner than the twin's.) Other
// Takes are stamped less than a Window after X (see Subject.Anchored).
func (s Subject) refundAcrossOwnRestore(t *testing.T) {
	marshal, restore := s.saver(t)
	w := s.window(t)
	roundTrip := func(l ratekit.Limiter) {
		t.Helper()
		restore(l, marshal(l))
	}
	// A step is a Take at an offset from Start (x: X), or, with restore
	// set, a round trip of each limiter's own state.
	type step struct {
		at         time.Duration
		x, restore bool
	}
	histories := [][]step{
		{{0, true, false}, {0, false, true}, {3 * w / 4, false, false}},
		{{0, true, false}, {3 * w / 4, false, false}, {0, false, true}},
		{{0, false, false}, {w, true, false}, {0, false, true}, {3 * w / 4, false, false}, {w + w/3, false, false}},
		{{w / 4, true, false}, {0, false, true}, {w / 2, false, false}, {0, false, true}},
	}
	compared := 0
	for hi, h := range histories {
		for _, n := range []int{1, s.Capacity / 3} {
			if n == 0 {
				continue
			}
			l, twin := s.New(t), s.New(t)
			var xAt time.Duration
			alike := true
			for _, st := range h {
				at := s.Start.Add(st.at)
				switch {
				case st.restore:
					roundTrip(l)
					roundTrip(twin)
				case st.x:
					xAt = st.at
					alike = alike && l.Take(at, n).Allowed
				default:
					alike = alike && l.Take(at, n).Allowed == twin.Take(at, n).Allowed
				}
			}
			if !alike {
				continue
			}
			compared++
			l.Refund(s.Start.Add(xAt), n)
			for _, q := range []time.Duration{0, w / 4, w / 2, 3 * w / 4, w - 1, w, w + w/3, 3 * w / 2, 2*w - 1, 2 * w, 3 * w} {
				if q < xAt {
					continue
				}
				at := s.Start.Add(q)
				if got, want, more := s.admitsMore(l, twin, at); more {
					t.Fatalf("history %d (Takes of %d: %v), X refunded: the limiter admits %d at Start%s; "+
						"a twin that never saw X, its own state restored alike, %d", hi, n, fmt.Sprint(h), got, signed(q), want)
				}
			}
		}
	}
	if compared == 0 {
		t.Fatalf("no history had the other Takes decided alike with and without X: the check compared nothing")
	}
}
