package conformance

import (
	"testing"
	"time"
)

// refundReplacedWindow holds the refund contract of ratekit.Limiter where
// the refunded Take X came after an earlier Take's window had closed: a
// Take P fills the limiter at Start-3W/4, X (stamped at Start+W, when
// P's window, if any, has closed) is admitted and refunded in full at its
// own stamp. At every query instant, stale ones before X's stamp
// included, the limiter must admit, in one Take, no more than a twin that
// saw P but not X. It runs for anchored limiters too: a refund that
// empties the window X opened must not forget what P's window still
// counts at stale times, which the twin, never having opened X's window,
// still has.
func (s Subject) refundReplacedWindow(t *testing.T) {
	w := s.window(t)
	queries := []time.Duration{-w, -3 * w / 4, -w / 2, -time.Nanosecond, 0, w / 4, w / 2, w - 1, w, w + w/2, 2 * w, 3 * w}
	compared := 0
	for _, n := range []int{s.Capacity, s.Capacity / 2, 1} {
		l, twin := s.New(t), s.New(t)
		p := s.Start.Add(-3 * w / 4)
		if !l.Take(p, s.Capacity).Allowed || !twin.Take(p, s.Capacity).Allowed {
			t.Fatalf("a fresh limiter denied a Take of its Capacity %d", s.Capacity)
		}
		x := s.Start.Add(w)
		if !l.Take(x, n).Allowed {
			continue
		}
		compared++
		l.Refund(x, n)
		for _, q := range queries {
			at := s.Start.Add(q)
			if got, want, more := s.admitsMore(l, twin, at); more {
				t.Fatalf("P of %d at Start-3W/4, X of %d at Start+W refunded: the limiter admits %d at Start%s; a twin that never saw X, %d",
					s.Capacity, n, got, signed(q), want)
			}
		}
	}
	if compared == 0 && !s.Holder {
		// A Holder's units come back only by Release or Refund, so X, a
		// Window after P took them all, is denied: nothing to compare.
		t.Fatalf("X was denied in every case: the check compared nothing")
	}
}
