package conformance

import (
	"encoding"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// refundRestore holds the refund contract of ratekit.Limiter across a
// restore: a limiter takes at several instants, its state is replaced by
// UnmarshalBinary, and the Takes made before the restore are refunded.
// Some are refunded before the restore instead, so that it may find no
// window open (all refunded to zero) though Takes remain to be refunded:
// a restore must treat such a limiter as one that took, not as a fresh
// one.
// The units they took were counted in a state that is gone; what the
// limiter counts now is the restored state. So at every later query instant
// the limiter must admit, in one Take, no more than a twin of the same
// Config restored from the same bytes and never refunded. (A refund that
// gives back less is allowed, never more.)
//
// The restored state is that of a twin drained at Start, a fresh one, or
// the limiter's own, marshalled just before the restore; and, under
// -race, a drained twin's restored concurrently with Takes at Start, all
// of whose admitted units are then refunded: a Take admitted after the
// restore would find the drained state, so every admitted Take was made
// before it. Limiters without MarshalBinary and UnmarshalBinary, and
// Holders (whose held units are not part of their saved state), are
// skipped.
func (s Subject) refundRestore(t *testing.T) {
	marshal, restore := s.saver(t)
	w := s.window(t)
	drained := s.New(t)
	drain(drained, s.Start, s.Capacity)
	drainedState, freshState := marshal(drained), marshal(s.New(t))

	// Takes before the restore, as offsets from Start, some of them (pre)
	// refunded before it, so that the limiter may have no window open when
	// it is restored (its later window refunded to zero), or an earlier
	// window refunded to zero; the others are refunded after it. Then the
	// query instants.
	type step struct {
		at  time.Duration
		pre bool // refunded before the restore
	}
	type history struct {
		before []step
		after  []time.Duration // Takes after the restore, on both
	}
	histories := []history{
		// Takes after the restore, which a refund of an older Take must
		// not give back.
		{[]step{{0, false}}, []time.Duration{0, w / 4}},
		{[]step{{0, false}, {3 * w / 4, false}, {w + w/3, true}}, []time.Duration{3 * w / 4}},
		{[]step{{0, false}, {3 * w / 4, false}, {w + w/3, true}, {-w / 2, false}}, []time.Duration{3 * w / 4}},
	}
	for _, h := range [][]step{
		{{0, false}},
		{{0, false}, {0, false}, {w / 3, false}},
		{{-w / 2, false}, {0, false}, {w / 4, false}, {w + w/3, false}},
		{{2 * w, false}, {2 * w, false}},
		// No window open at the restore: the later window refunded to zero.
		{{0, false}, {w + w/3, true}},
		{{0, false}, {w / 4, false}, {w + w/3, true}},
		{{0, false}, {w / 4, true}, {w + w/3, true}},
		// An earlier window refunded to zero, a later one open.
		{{0, true}, {w / 4, false}},
		{{0, false}, {w + w/3, true}, {2 * w, false}},
	} {
		histories = append(histories, history{before: h})
	}
	queries := []time.Duration{-w, -w / 2, 0, w / 4, w / 3, w / 2, 3 * w / 4, w, w + w/3, 3 * w / 2, 2 * w, 2*w + w/2, 3 * w, 10 * w}
	sources := []struct {
		name  string
		state func(l ratekit.Limiter) []byte
	}{
		{"Drained", func(ratekit.Limiter) []byte { return drainedState }},
		{"Fresh", func(ratekit.Limiter) []byte { return freshState }},
		{"Own", marshal},
	}
	for _, src := range sources {
		for hi, h := range histories {
			for _, n := range []int{1, s.Capacity / 2} {
				l := s.New(t)
				var taken []time.Duration // admitted, not refunded before the restore
				for _, st := range h.before {
					if !l.Take(s.Start.Add(st.at), n).Allowed {
						continue
					}
					if st.pre {
						l.Refund(s.Start.Add(st.at), n)
					} else {
						taken = append(taken, st.at)
					}
				}
				state := src.state(l)
				restore(l, state)
				twin := s.New(t)
				restore(twin, state)
				for _, at := range h.after {
					if got, want := l.Take(s.Start.Add(at), n).Allowed, twin.Take(s.Start.Add(at), n).Allowed; got != want {
						t.Fatalf("%s state, history %d: Take(Start%s, %d) after the restore: %v; its twin's %v", src.name, hi, signed(at), n, got, want)
					}
				}
				for _, at := range taken {
					l.Refund(s.Start.Add(at), n)
				}
				for _, q := range queries {
					at := s.Start.Add(q)
					if got, want, more := s.admitsMore(l, twin, at); more {
						t.Fatalf("%s state, history %d (takes of %d at %v, pre: refunded before the restore; admitted and kept %v): "+
							"after the restore and the refunds, the limiter admits %d at Start%s; its twin, restored alike and never refunded, %d",
							src.name, hi, n, h.before, taken, got, signed(q), want)
					}
				}
			}
		}
	}

	// Concurrently: Takes at Start race a restore of the drained state.
	for rep := range 5 {
		l := s.New(t)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range s.Capacity {
					if l.Take(s.Start, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := l.(encoding.BinaryUnmarshaler).UnmarshalBinary(drainedState); err != nil {
				t.Errorf("UnmarshalBinary: %v", err)
			}
		}()
		close(start)
		wg.Wait()
		for range admitted.Load() {
			l.Refund(s.Start, 1)
		}
		if got := drain(l, s.Start, s.Capacity); got != 0 {
			t.Fatalf("rep %d: %d Takes admitted around a restore of a drained state, all refunded: "+
				"the limiter then admits %d at Start; a Take after the restore finds it drained, so want 0",
				rep, admitted.Load(), got)
		}
	}
}

// saver returns MarshalBinary and UnmarshalBinary on s's limiters, each
// failing the test on an error. It skips the calling check for limiters
// with no saved state: those that are not both a BinaryMarshaler and a
// BinaryUnmarshaler, and Holders, whose held units are not part of what
// they save.
func (s Subject) saver(t *testing.T) (marshal func(ratekit.Limiter) []byte, restore func(ratekit.Limiter, []byte)) {
	t.Helper()
	probe := s.New(t)
	_, mok := probe.(encoding.BinaryMarshaler)
	_, uok := probe.(encoding.BinaryUnmarshaler)
	if !mok || !uok || s.Holder {
		t.Skip("no saved state to restore (not a BinaryMarshaler and BinaryUnmarshaler, or a Holder)")
	}
	marshal = func(l ratekit.Limiter) []byte {
		t.Helper()
		b, err := l.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		return b
	}
	restore = func(l ratekit.Limiter, b []byte) {
		t.Helper()
		if err := l.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
	}
	return marshal, restore
}
