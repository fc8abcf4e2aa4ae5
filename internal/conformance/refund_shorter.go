package conformance

import (
	"encoding"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// refundThenShorterWindow holds the refund contract across a change to a
// SHORTER Window: under the Config in force a refund gives back no more
// than the refunded Take took, and a shorter Window keeps counting what was
// taken (the ratekit package documentation, Reconfiguration), so a limiter
// that took and refunded a Take X must, after the change, admit no more at
// any instant, stale ones included, than a twin that saw every call but X
// and the same change. (A LONGER Window may let go of what a refunded Take
// moved the state past: that is decided, and not checked here.)
//
// A Take X stamped after the others moves a window limiter's state ahead,
// past windows it then judges at stale times by what they may have held; a
// change of Window that puts more than one old window's units into one new
// window must count that window so when X moves past it. Each history
// takes some units, then X (admitted) a window or more later, and refunds
// it at its stamp, either before the change or after it (under the new
// Window); the change is either Subject.ReconfigureWindow (read at the
// latest stamp before it) or a MarshalBinary of the state restored by
// UnmarshalBinary into a fresh limiter of the shorter Window (limiter and
// twin alike). For an Anchored limiter (rolling), only instants from X's
// stamp on are compared (see Subject.Anchored). The seed is logged and
// read back from SeedEnv.
func (s Subject) refundThenShorterWindow(t *testing.T) {
	if s.ReconfigureWindow == nil {
		t.Skip("Subject has no ReconfigureWindow (a limiter without a Window, or a view)")
	}
	w, c := s.window(t), s.Capacity
	if w < 16 {
		t.Skipf("a Window of %v has no shorter one to test", w)
	}
	third := max(c/3, 1)
	// A: the first instant after Start on the Unix grid of w, where window
	// limiters aligned to Unix time start a window.
	a := s.Start.UnixNano()
	A := time.Unix(0, (a/int64(w)+1)*int64(w)).Sub(s.Start)
	var hs []srHistory
	// The redisstore script's scenario, scaled (Limit 5, 3s -> 1s): c at
	// A and c-1 at A+2w-1ns, then the Window w/3: both old windows' units
	// in the new window b holding A+2w-1ns. X at b+2·w/3 moves past b;
	// refunded, the window after b must count b's units as the twin does.
	nw := w / 3
	b := (a + int64(A+2*w-1)) / int64(nw) * int64(nw) // Unix ns of b's start
	bs := time.Duration(b - a)
	hs = append(hs, srHistory{
		before: []srTake{{A, c}, {A + 2*w - 1, c - 1}},
		x:      srTake{bs + 2*nw, 1}, after: true, window: nw,
		queries: []time.Duration{bs + nw, bs + nw + nw/4, bs + nw + nw/2, bs + nw + 3*nw/4, bs + 2*nw - 1},
	})
	// RefundAcrossWindowChange's histories with a shorter Window, X
	// refunded before the change and after it.
	for _, after := range []bool{false, true} {
		hs = append(hs,
			srHistory{before: []srTake{{w * 2 / 3, third}}, x: srTake{2*w + w*3/4, 1}, after: after, window: w / 2},
			srHistory{before: []srTake{{0, c}}, x: srTake{2 * w, 1}, after: after, window: w / 3},
			srHistory{before: []srTake{{w / 2, third}, {w, third}}, x: srTake{3 * w, third}, after: after, window: 2 * w / 3},
			srHistory{before: []srTake{{w / 3, c}}, x: srTake{w + w/2, 1}, after: after, window: w / 3},
			srHistory{before: []srTake{{A, c}, {A + 2*w - 1, c - 1}}, x: srTake{A + 2*w + w/3, 1}, after: after, window: w / 3},
		)
	}
	rng := rand.New(rand.NewPCG(seed(t), 0x5407))
	rounds := 40
	if testing.Short() {
		rounds = 15
	}
	for range rounds {
		var h srHistory
		for range 1 + rng.IntN(3) {
			h.before = append(h.before, srTake{time.Duration(rng.Int64N(int64(3 * w))), 1 + rng.IntN(c)})
		}
		h.x = srTake{w + time.Duration(rng.Int64N(int64(3*w))), 1 + rng.IntN(third)}
		h.after = rng.IntN(2) == 0
		h.window = 1 + time.Duration(rng.Int64N(int64(w-1))) // in [1ns, w)
		if rng.IntN(2) == 0 {
			h.window = w / time.Duration(2+rng.IntN(4))
		}
		hs = append(hs, h)
	}
	marshal, restore := s.optionalSaver(t)
	for _, h := range hs {
		s.runRefundShorter(t, h, nil, nil)
		if marshal != nil {
			s.runRefundShorter(t, h, marshal, restore)
		}
	}
}

type srTake struct {
	at time.Duration // from Start
	n  int
}

// srHistory is one history of refundThenShorterWindow.
type srHistory struct {
	before  []srTake
	x       srTake
	after   bool          // X is taken and refunded after the change
	window  time.Duration // the shorter Window
	queries []time.Duration
}

// runRefundShorter runs h on a limiter and its twin, changing the Window
// by ReconfigureWindow, or, with marshal set, by restoring each one's
// state into a fresh limiter of the shorter Window.
func (s Subject) runRefundShorter(t *testing.T, h srHistory, marshal func(ratekit.Limiter) []byte, restore func(ratekit.Limiter, []byte)) {
	t.Helper()
	w := s.window(t)
	how := "Reconfigure"
	if marshal != nil {
		how = "a restore"
	}
	when := "before"
	if h.after {
		when = "after"
	}
	desc := fmt.Sprintf("Takes (at Start+, n) %v, X %v refunded at its stamp %s %s to the Window %v", h.before, h.x, when, how, h.window)
	l, twin := s.New(t), s.New(t)
	last := time.Duration(-1 << 63)
	taken := 0 // units the twin admitted
	for _, tk := range h.before {
		at := s.Start.Add(tk.at)
		ok := l.Take(at, tk.n).Allowed
		if ok != twin.Take(at, tk.n).Allowed {
			t.Fatalf("%s: a limiter and its twin decided a Take of %d at Start%s apart", desc, tk.n, signed(tk.at))
		}
		if ok {
			taken += tk.n
		}
		last = max(last, tk.at)
	}
	xAt := s.Start.Add(h.x.at)
	takeX := func(l ratekit.Limiter) bool {
		if !l.Take(xAt, h.x.n).Allowed {
			return false
		}
		l.Refund(xAt, h.x.n)
		return true
	}
	if !h.after {
		if !takeX(l) {
			return // X denied: the twin is the same history
		}
		last = max(last, h.x.at)
	}
	now := s.Start.Add(last)
	if !h.after && s.Capacity-twin.Peek(now, 0).Remaining != taken {
		// The twin has let go of some unit by the instant of the change:
		// a shorter Window need not count it again (doc.go counts what
		// the limiter still counted at the change), and the twin's carry
		// may, where X moved the limiter past it.
		return
	}
	for i, x := range []ratekit.Limiter{l, twin} {
		if marshal != nil {
			saved := marshal(x)
			x = s.New(t)
			if err := s.ReconfigureWindow(x, h.window, 0, now); err != nil {
				t.Fatalf("%s: ReconfigureWindow of a fresh limiter: %v", desc, err)
			}
			restore(x, saved)
			if i == 0 {
				l = x
			} else {
				twin = x
			}
			continue
		}
		if err := s.ReconfigureWindow(x, h.window, 0, now); err != nil {
			t.Fatalf("%s: ReconfigureWindow: %v", desc, err)
		}
	}
	if h.after && !takeX(l) {
		return
	}
	queries := h.queries
	for q := -w; q <= 5*w; q += w / 16 {
		queries = append(queries, q)
	}
	for q := h.x.at - 3*h.window; q <= h.x.at+h.window; q += max(h.window/4, 1) {
		queries = append(queries, q)
	}
	for _, q := range queries {
		if s.Anchored && q < h.x.at {
			continue
		}
		at := s.Start.Add(q)
		if got, want := s.capacity(l, at), s.capacity(twin, at); got > want {
			t.Fatalf("%s: at Start%s the limiter admits %d; a twin that never saw X, %d", desc, signed(q), got, want)
		}
	}
}

// optionalSaver is saver without the skip: nil functions for a limiter
// with no state to restore.
func (s Subject) optionalSaver(t *testing.T) (marshal func(ratekit.Limiter) []byte, restore func(ratekit.Limiter, []byte)) {
	t.Helper()
	probe := s.New(t)
	_, mok := probe.(encoding.BinaryMarshaler)
	_, uok := probe.(encoding.BinaryUnmarshaler)
	if !mok || !uok || s.Holder {
		return nil, nil
	}
	return s.saver(t)
}
