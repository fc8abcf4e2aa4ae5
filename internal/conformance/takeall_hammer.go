package conformance

import (
	"encoding"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ratekit/ratekit"
)

// takeAllHammer holds TakeAll's all or none under contention from every
// side at once: TakeAlls over three limiters, listed in different orders
// (so that a composite which locks its members must lock them in one
// order, or deadlock), race direct Takes on two of them and, in turn, a
// Reconfigure that keeps the capacity and an UnmarshalBinary, on the third.
// Every call is at one instant, where nothing refills, so the count is
// exact: each limiter must have admitted, via TakeAll and directly, no
// more than its capacity, and then admit exactly the rest. A TakeAll that
// stored part of a denial (a lock that is not all or none) leaves a member
// short; one that overwrote a racing Take's word (a lock that does not
// exclude) leaves it over. With UnmarshalBinary of a drained twin's state,
// the third limiter admits nothing after the restore, so what it admitted
// in all must be within its capacity and nothing may remain, even when a
// TakeAll's general path, Take by Take, rolls back a Take it made on the
// third limiter before the restore (see refundrestore.go). (Not for
// Holders, whose held units are not part of their saved state.)
func (s Subject) takeAllHammer(t *testing.T) {
	type mode int
	const (
		plain mode = iota
		reconfigure
		unmarshal
	)
	rounds := 12
	if testing.Short() {
		rounds = 6
	}
	for r := range rounds {
		m := mode(r % 3)
		switch {
		case m == reconfigure && s.Reconfigure == nil:
			m = plain
		case m == unmarshal:
			if _, ok := s.New(t).(encoding.BinaryUnmarshaler); !ok || s.Holder {
				m = plain
			}
		}
		orders := [][3]int{{0, 1, 2}, {2, 0, 1}, {1, 2, 0}}
		ls := [3]ratekit.Limiter{s.New(t), s.New(t), s.New(t)}
		var via [3]atomic.Int64 // units admitted by TakeAll and directly, per limiter
		ops := s.Capacity + 2
		halfway := make(chan struct{}) // closed by the first TakeAll goroutine half way through
		var wg sync.WaitGroup
		run := func(f func()) {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
		for g, order := range orders {
			run(func() {
				for i := range ops {
					if g == 0 && i == ops/2 {
						close(halfway)
					}
					if ratekit.TakeAll(s.Start, 1, ls[order[0]], ls[order[1]], ls[order[2]]).Allowed {
						for k := range via {
							via[k].Add(1)
						}
					}
				}
			})
		}
		for _, k := range []int{0, 1} {
			run(func() {
				for range ops {
					if ls[k].Take(s.Start, 1).Allowed {
						via[k].Add(1)
					}
				}
			})
		}
		switch m {
		case reconfigure:
			run(func() {
				for range ops / 2 {
					if err := s.Reconfigure(ls[2], s.Capacity); err != nil {
						t.Errorf("round %d: Reconfigure to the same capacity: %v", r, err)
						return
					}
				}
			})
		case unmarshal:
			twin := s.New(t)
			drain(twin, s.Start, s.Capacity)
			state, err := twin.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			run(func() {
				<-halfway
				if err := ls[2].(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
					t.Errorf("round %d: UnmarshalBinary of a drained twin: %v", r, err)
				}
			})
		}
		wg.Wait()
		for k, l := range ls {
			used, rest := int(via[k].Load()), drain(l, s.Start, s.Capacity)
			switch {
			case used > s.Capacity:
				t.Fatalf("round %d (mode %d): limiter %d admitted %d units at one instant; capacity %d", r, m, k, used, s.Capacity)
			case k == 2 && m == unmarshal:
				if rest != 0 {
					t.Fatalf("round %d: restored to a drained state, limiter 2 then admits %d more; want 0", r, rest)
				}
			case used+rest != s.Capacity:
				t.Fatalf("round %d (mode %d): limiter %d admitted %d units under contention and %d after; want %d in all",
					r, m, k, used, rest, s.Capacity)
			}
		}
	}
}
