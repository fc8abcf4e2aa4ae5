package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// zeroUnitsOverFull checks that n == 0 is allowed, taking nothing, on a
// limiter over-full because Reconfigure lowered its capacity below what was
// taken: the Limiter contract allows n == 0 always, and a composite or a
// header read that asks for 0 units must not be refused by a member whose
// state it does not change. Wait for 0 units returns at once there too.
func (s Subject) zeroUnitsOverFull(t *testing.T) {
	if !s.reconfigureCheck(t) {
		return
	}
	l := s.New(t)
	if got := drain(l, s.Start, s.Capacity); got != s.Capacity {
		t.Fatalf("drained %d units; want %d", got, s.Capacity)
	}
	s.reconfigure(t, l, 1)
	before := l.Peek(s.Start, 1)
	if d := l.Peek(s.Start, 0); !d.Allowed || d.RetryAfter != 0 || d.Remaining != 0 {
		t.Errorf("Peek(n=0), %d taken and capacity lowered to 1 = %v; want allowed, RetryAfter 0, Remaining 0", s.Capacity, d)
	}
	if d := l.Take(s.Start, 0); !d.Allowed || d.RetryAfter != 0 || d.Remaining != 0 {
		t.Errorf("Take(n=0), %d taken and capacity lowered to 1 = %v; want allowed, RetryAfter 0, Remaining 0", s.Capacity, d)
	}
	// The mock clock never moves: a Wait that sleeps would block until the
	// guard's timeout, which is no timing assertion but a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	clk := clock.NewMock()
	clk.Set(s.Start)
	if d, err := ratekit.Wait(ctx, clk, l, 0); err != nil || !d.Allowed {
		t.Errorf("Wait(n=0), %d taken and capacity lowered to 1 = %v, %v; want allowed at once", s.Capacity, d, err)
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Errorf("Take(n=0) changed state: Peek before %v, after %v", before, after)
	}
}
