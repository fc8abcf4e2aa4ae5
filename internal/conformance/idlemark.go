package conformance

import (
	"encoding"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// idleMark holds Idle to what ratekit.Keyed.Sweep relies on, across a
// restore: Idle(now) may be true only if a fresh limiter put in the
// limiter's place at now would decide every later history, refunds of
// Takes stamped before now included, no more generously than the limiter
// itself. A restore into a limiter that has taken marks its Takes, so that
// refunding them gives nothing back into the restored state; a fresh
// limiter has no mark. If Idle ignores the mark, Sweep drops the limiter,
// the key's next limiter takes, a refund of a Take from before the restore
// gives units back into what the key took since, and the key admits more
// than Capacity at one instant.
//
// A limiter takes n at a few instants (the history), then is restored from
// a fresh limiter's state or its own; at each query instant q where it
// says it is Idle, it and a fresh limiter each drain at q, have every Take
// of the history refunded, and the fresh one must then admit, at q and
// later instants, no more in one Take than the limiter does. At 10
// Windows past every stamp, where no mark can matter any more, the
// restored limiter must be Idle, so that a mark does not pin a key for
// ever. Limiters without MarshalBinary and UnmarshalBinary, and Holders,
// are skipped.
func (s Subject) idleMark(t *testing.T) {
	probe := s.New(t)
	_, mok := probe.(encoding.BinaryMarshaler)
	_, uok := probe.(encoding.BinaryUnmarshaler)
	if !mok || !uok || s.Holder {
		t.Skip("no saved state to restore (not a BinaryMarshaler and BinaryUnmarshaler, or a Holder)")
	}
	if _, ok := probe.(Idler); !ok {
		t.Fatalf("%T has no Idle(time.Time) bool method", probe)
	}
	w := s.window(t)
	marshal := func(l ratekit.Limiter) []byte {
		t.Helper()
		b, err := l.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		return b
	}
	freshState := marshal(s.New(t))
	histories := [][]time.Duration{
		{0},
		{0, w / 3},
		{-w / 2, 0, w / 4},
		{0, w + w/3},
	}
	queries := []time.Duration{0, w / 4, w / 3, w / 2, 3 * w / 4, w - 1, w, w + w/3, 3 * w / 2, 2*w - 1, 2 * w, 2*w + w/2, 3 * w}
	later := []time.Duration{0, 1, w / 4, w / 2, w - 1, w, 3 * w / 2}
	sources := []string{"Fresh", "Own"}
	for _, src := range sources {
		for _, h := range histories {
			for _, n := range []int{1, s.Capacity / 2} {
				// build makes the limiter under test anew: the history, then
				// the restore. Its admitted stamps are the Takes to refund.
				build := func() (ratekit.Limiter, []time.Duration) {
					l := s.New(t)
					var taken []time.Duration
					for _, at := range h {
						if l.Take(s.Start.Add(at), n).Allowed {
							taken = append(taken, at)
						}
					}
					state := freshState
					if src == "Own" {
						state = marshal(l)
					}
					if err := l.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
						t.Fatalf("UnmarshalBinary: %v", err)
					}
					return l, taken
				}
				for _, q := range queries {
					l, taken := build()
					now := s.Start.Add(q)
					if !l.(Idler).Idle(now) {
						continue
					}
					f := s.New(t) // a fresh limiter in l's place
					gotL, gotF := drain(l, now, s.Capacity), drain(f, now, s.Capacity)
					for _, at := range taken {
						l.Refund(s.Start.Add(at), n)
						f.Refund(s.Start.Add(at), n)
					}
					for _, d := range later {
						at := now.Add(d)
						if got, want := s.capacity(f, at), s.capacity(l, at); got > want {
							t.Fatalf("%s state, takes of %d at %v (admitted %v), restored: Idle at Start%s; "+
								"drained there (the limiter admitted %d, a fresh one %d) and the takes refunded, "+
								"a fresh limiter in its place admits %d at Start%s, the limiter itself %d",
								src, n, h, taken, signed(q), gotL, gotF, got, signed(q+d), want)
						}
					}
				}
				l, _ := build()
				last := h[len(h)-1]
				if at := s.Start.Add(last + 10*w); !l.(Idler).Idle(at) {
					t.Fatalf("%s state, takes of %d at %v, restored: not Idle at Start%s, 10 Windows after the last stamp", src, n, h, signed(last+10*w))
				}
			}
		}
	}
}
