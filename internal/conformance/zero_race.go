package conformance

import (
	"encoding"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// This file holds the check that a zero limiter's first Reconfigure is
// safe against every other method at once, not only Take (ZeroValue races
// those two): the zero value's rule says that from its first Reconfigure
// on it is the limiter New would have made, "safely under concurrent use".
// Under -race a method that reads what the first Reconfigure writes
// without ordering it (an epoch, a first state written in place) is
// reported; without it, the check holds the decisions: no Take admitted
// twice or lost, an UnmarshalBinary either refused (no configuration yet)
// or restoring a fresh state.

// zeroRace races two first Reconfigures of a zero limiter with Take, Peek,
// Idle, MarshalBinary, Config and TakeAll (beside another limiter of the
// Subject), then drains it: what the Takes and TakeAlls admitted and the
// drain together is Capacity. Every other round adds Refunds and an
// UnmarshalBinary of a fresh state, which give units back, so that only
// -race, a panic or a hang, and a drain above Capacity, fail it there.
func (s Subject) zeroRace(t *testing.T) {
	if s.Zero == nil || s.Reconfigure == nil {
		t.Skip("no Zero or no Reconfigure: a composite or a view")
	}
	now := s.Start
	var fresh []byte
	if m, ok := s.New(t).(encoding.BinaryMarshaler); ok {
		var err error
		if fresh, err = m.MarshalBinary(); err != nil {
			t.Fatalf("MarshalBinary of a fresh limiter: %v", err)
		}
	}
	// Up to 100 operations of each kind a round: enough to overlap the
	// Reconfigures, cheap under -race for a Capacity of thousands.
	ops := min(s.Capacity, 100)
	for round := range 10 {
		z := s.Zero()
		other := s.New(t)
		var wg sync.WaitGroup
		full := round%2 == 1
		var taken, takenAll int
		// Every goroutine starts at the close of go, so that the first
		// Reconfigures overlap each other and the rest.
		start := make(chan struct{})
		run := func(f func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				f()
			}()
		}
		for range 2 {
			run(func() {
				if err := s.Reconfigure(z, s.Capacity); err != nil {
					t.Errorf("concurrent first Reconfigure: %v", err)
				}
			})
		}
		run(func() {
			for range ops {
				if z.Take(now, 1).Allowed {
					taken++
				}
			}
		})
		run(func() {
			for range ops {
				if d := z.Peek(now, 1); d.Allowed && d.Remaining > s.Capacity-1 {
					t.Errorf("Peek(1) racing the first Reconfigure = %v: more remaining than Capacity %d allows", d, s.Capacity)
				}
				if full {
					z.Refund(now, 1)
				}
			}
		})
		run(func() {
			for range ops {
				if ratekit.TakeAll(now, 1, other, z).Allowed {
					takenAll++
				}
			}
		})
		run(func() {
			for range 8 {
				if il, ok := z.(interface{ Idle(time.Time) bool }); ok {
					il.Idle(now)
				}
				if m, ok := z.(encoding.BinaryMarshaler); ok {
					if _, err := m.MarshalBinary(); err != nil {
						t.Errorf("MarshalBinary racing the first Reconfigure: %v", err)
					}
				}
				if c := reflect.ValueOf(z).MethodByName("Config"); c.IsValid() && c.Type().NumIn() == 0 {
					c.Call(nil)
				}
			}
		})
		if u, ok := z.(encoding.BinaryUnmarshaler); ok && fresh != nil && full {
			run(func() {
				// Refused (no configuration yet) or restored: a fresh
				// state either way, which races Takes as a restore may.
				_ = u.UnmarshalBinary(fresh)
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		left := drain(z, now, s.Capacity)
		if full {
			// The Refunds gave back units of the Takes, as a Refund may,
			// and the restore may have put a fresh state over them.
			if left > s.Capacity {
				t.Fatalf("round %d: after the race, a drain admitted %d; Capacity is %d", round, left, s.Capacity)
			}
			continue
		}
		if got := taken + takenAll + left; got != s.Capacity {
			t.Fatalf("round %d: Takes %d and TakeAlls %d racing the first Reconfigure, then a drain %d: %d in all; want Capacity %d",
				round, taken, takenAll, left, got, s.Capacity)
		}
	}
}
