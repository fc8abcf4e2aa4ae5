package conformance

import (
	"encoding"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// refundForeignRestore holds the refund contract of ratekit.Limiter across
// a restore of another limiter's state: RefundAcrossRestore restores a
// drained, a fresh or the limiter's own state and refunds at once; here the
// restored state is one the refunded Takes were never counted in and that
// still has room (a twin with some units taken, a fresh limiter, a twin
// drained long ago), and other callers may take between the restore and
// the refunds. What the limiter counts after the restore is the restored
// state and the Takes made since; a Take made before the restore is in
// neither, so its refund must give nothing back that they counted: at every
// query instant the limiter must admit, in one Take, no more than a twin
// restored from the same bytes that saw the same Takes after the restore
// and no refund.
//
// A refund that computes what it gives back from the restored state alone
// (the time at which the restored state is full, say) gives back units into
// a state that never held them: restore a twin's state with 3 of 10 taken
// into a limiter that took 5, refund those 5, and 9 are admitted where the
// twin admits 7.
func (s Subject) refundForeignRestore(t *testing.T) {
	marshal, restore := s.saver(t)
	w := s.window(t)
	taken := func(ts ...take) []byte {
		l := s.New(t)
		for _, tk := range ts {
			l.Take(s.Start.Add(tk.at), tk.n)
		}
		return marshal(l)
	}
	half := max(1, s.Capacity/2)
	sources := []struct {
		name  string
		state []byte
	}{
		{"OneTaken", taken(take{0, 1})},
		{"OneTakenEarlier", taken(take{-w / 2, 1})},
		{"HalfTaken", taken(take{0, half})},
		{"Fresh", taken()},
		{"DrainedLongAgo", taken(take{-10 * w, s.Capacity})},
	}
	befores := [][]take{
		{{0, 1}},
		{{0, half}},
		{{0, s.Capacity}},
		{{-w / 2, half}, {0, 1}},
	}
	afters := [][]take{
		nil,
		{{0, 1}},
		{{0, s.Capacity}},
		{{w / 4, half}},
	}
	queries := []time.Duration{-w / 2, 0, w / 4, w / 2, w, 3 * w / 2, 2 * w}
	// Limits both are reconfigured to after the restore (0: none): the
	// restore's mark must survive a new configuration.
	reconfs := []int{0}
	if s.Reconfigure != nil {
		reconfs = append(reconfs, 2*s.Capacity, 1)
	}
	for _, src := range sources {
		for bi, before := range befores {
			for ai, after := range afters {
				for _, rc := range reconfs {
					s.foreignRestoreCase(t, src.name, src.state, before, after, rc, bi, ai, queries, restore)
				}
			}
		}
	}

	// Concurrently: Takes at Start race a restore of a state with one unit
	// taken, and every admitted Take is then refunded. Those admitted
	// before the restore are not counted in it, and those after it are:
	// either way, refunded, the limiter admits at most what the restored
	// state does.
	state := sources[0].state
	twin := s.New(t)
	restore(twin, state)
	want := s.capacity(twin, s.Start)
	for rep := range 5 {
		l := s.New(t)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				for range s.Capacity {
					if l.Take(s.Start, 1).Allowed {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			if err := l.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
				t.Errorf("UnmarshalBinary: %v", err)
			}
		})
		close(start)
		wg.Wait()
		for range admitted.Load() {
			l.Refund(s.Start, 1)
		}
		if got := drain(l, s.Start, s.Capacity); got > want {
			t.Fatalf("rep %d: %d Takes admitted around a restore of a state with one unit taken, all refunded: "+
				"the limiter then admits %d at Start; the restored state admits %d", rep, admitted.Load(), got, want)
		}
	}
}

type take struct {
	at time.Duration // from Start
	n  int
}

// foreignRestoreCase is one case of refundForeignRestore: Takes before,
// the restore of state, a Reconfigure to limit rc (unless 0), Takes
// after, then the refunds, checked at queries against a twin.
func (s Subject) foreignRestoreCase(t *testing.T, name string, state []byte, before, after []take, rc, bi, ai int,
	queries []time.Duration, restore func(ratekit.Limiter, []byte)) {
	t.Helper()
	l, twin := s.New(t), s.New(t)
	var admitted []take
	for _, tk := range before {
		if l.Take(s.Start.Add(tk.at), tk.n).Allowed {
			admitted = append(admitted, tk)
		}
	}
	restore(l, state)
	restore(twin, state)
	if rc != 0 {
		s.reconfigure(t, l, rc)
		s.reconfigure(t, twin, rc)
	}
	for _, tk := range after {
		at := s.Start.Add(tk.at)
		if got, want := l.Take(at, tk.n).Allowed, twin.Take(at, tk.n).Allowed; got != want {
			t.Fatalf("%s state: after the restore, Take(Start%s, %d) = %v; its twin, restored alike, %v",
				name, signed(tk.at), tk.n, got, want)
		}
	}
	for _, tk := range admitted {
		l.Refund(s.Start.Add(tk.at), tk.n)
	}
	for _, q := range queries {
		at := s.Start.Add(q)
		if got, want, more := s.admitsMore(l, twin, at); more {
			t.Fatalf("%s state restored over takes %v (admitted %v), reconfigured to %d (0: not), then takes %v "+
				"(before %d, after %d), then the admitted takes from before the restore refunded: the limiter "+
				"admits %d at Start%s; its twin, restored alike, with the same takes after and no refund, %d",
				name, before, admitted, rc, after, bi, ai, got, signed(q), want)
		}
	}
}
