package ratekit_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestPeekAllSnapshot: PeekAll over members decided together reads them at
// one instant. Two one-unit buckets a and b go round (a, b) = (free, free)
// -> (taken, free) -> (taken, taken) -> (taken, free) -> (free, free): a is
// taken first and given back last, so b is never taken while a is free. A
// PeekAll of one unit that reports b alone as refusing (its Policy, with a
// admitting: a tie of two refusals binds the first, a) therefore read a
// before a round and b during the next, a state that never was. Peek by
// Peek, one in about every few thousand PeekAlls does on two cores; under
// the members' locks none can.
func TestPeekAllSnapshot(t *testing.T) {
	bucket := func(name string) *tokenbucket.Limiter {
		l, err := tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1, Name: name})
		require.NoError(t, err)
		return l
	}
	a, b := bucket("a"), bucket("b")
	composites := []struct {
		name string
		peek func() ratekit.Decision
	}{
		{"PeekAll", func() ratekit.Decision { return ratekit.PeekAll(t0, 1, a, b) }},
		{"AllOf.Peek", func() ratekit.Decision { return ratekit.AllOf(a, b).Peek(t0, 1) }},
	}
	for _, c := range composites {
		t.Run(c.name, func(t *testing.T) {
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					// The times are all t0, so each Refund gives back
					// exactly what its Take took.
					a.Take(t0, 1)
					b.Take(t0, 1)
					b.Refund(t0, 1)
					a.Refund(t0, 1)
				}
			}()
			torn := 0
			for range 200_000 {
				if d := c.peek(); !d.Allowed && d.Policy == "b" {
					torn++
				}
			}
			stop.Store(true)
			wg.Wait()
			require.Zero(t, torn, "PeekAlls that saw b taken with a free, which no instant had")
		})
	}
}
