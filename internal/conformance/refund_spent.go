package conformance

import (
	"fmt"
	"testing"
	"time"
)

// refundAfterSpent holds the refund contract of ratekit.Limiter where other
// callers' units were refunded in between: a Take X is admitted, another
// caller's Take after it is admitted and refunded in full (so that the
// state that counted it may be as empty as a fresh one), Takes follow at
// X's instant or before it, and then X is refunded. At every query
// instant the limiter must admit, in one Take, no more than a twin that
// saw every other Take and refund but not X. (RefundInterleaved refunds
// only the one Take; this is the case where the state between holds
// nothing that tells X's units from the later Takes' at the same
// instants.)
func (s Subject) refundAfterSpent(t *testing.T) {
	w := s.window(t)
	// A step is a Take at an offset from Start; x marks X, refunded at the
	// end, and undo a Take refunded at once.
	type step struct {
		at      time.Duration
		x, undo bool
	}
	histories := [][]step{
		{{0, false, false}, {3 * w / 4, true, false}, {w + w/3, false, true}, {3 * w / 4, false, false}},
		{{0, false, false}, {3 * w / 4, true, false}, {w + w/3, false, true}, {-w / 2, false, false}, {3 * w / 4, false, false}},
		{{0, true, false}, {w, false, true}, {0, false, false}},
		{{0, false, false}, {w / 4, true, false}, {w + w/3, false, true}, {w / 4, false, false}},
		{{0, true, false}, {w / 2, false, true}, {0, false, false}},
	}
	queries := []time.Duration{-w, -w / 2, 0, w / 4, w / 2, 3 * w / 4, w - 1, w, w + w/3, 3 * w / 2, 2 * w, 2*w + w/2, 3 * w}
	compared := 0
	for hi, h := range histories {
		// Three Takes of n fit in one window, so that X leaves the others'
		// decisions as they are in the twin: a Take that X's units denied
		// would leave the twin fuller, and the two incomparable.
		for _, n := range []int{1, s.Capacity / 3} {
			if n == 0 {
				continue
			}
			l, twin := s.New(t), s.New(t)
			var xAt time.Duration
			alike := true
			for _, st := range h {
				at := s.Start.Add(st.at)
				if st.x {
					xAt = st.at
					alike = alike && l.Take(at, n).Allowed
					continue
				}
				got, want := l.Take(at, n).Allowed, twin.Take(at, n).Allowed
				alike = alike && got == want
				if st.undo && got && want {
					l.Refund(at, n)
					twin.Refund(at, n)
				}
			}
			if !alike {
				continue
			}
			compared++
			l.Refund(s.Start.Add(xAt), n)
			for _, q := range queries {
				at := s.Start.Add(q)
				if got, want, more := s.admitsMore(l, twin, at); more {
					t.Fatalf("history %d (Takes of %d: %v), X refunded: the limiter admits %d at Start%s; a twin that never saw X, %d",
						hi, n, fmt.Sprint(h), got, signed(q), want)
				}
			}
		}
	}
	if compared == 0 {
		t.Fatalf("no history had the other Takes decided alike with and without X: the check compared nothing")
	}
}
