package conformance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// This file holds the check that the convenience forms, Allow and AllowN,
// read the limiter's clock once per call (issue #17 item 5): a call reads
// the time, then decides on it however many times its compare-and-swap is
// retried, and whichever path (a fast path, a fallback to Take, a rebase)
// it takes. A retry loop that re-reads the clock doubles the cost of a call
// under contention, and a fallback that reads it again decides on a later
// time than the one the fast path judged.

// allower is the convenience API of an algorithm's limiter.
type allower interface {
	Allow() bool
	AllowN(n int) bool
}

// countingClock is a clock.Mock that counts its Now calls.
type countingClock struct {
	*clock.Mock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.Mock.Now()
}

// allowReadsClockOnce checks Allow and AllowN, on a limiter of s.WithClock
// reading a counting clock at s.Start: one read per call for every n (the
// ones a fast path hands to a fallback included) and after time jumps (an
// hour, 400 days), and one per call from goroutines contending for the
// limiter's word, which admit and give back so that their CASes collide.
func (s Subject) allowReadsClockOnce(t *testing.T) {
	if s.WithClock == nil {
		if _, ok := s.New(t).(allower); ok {
			t.Fatal("the limiter has Allow and AllowN: set Subject.WithClock")
		}
		t.Skip("no Allow or AllowN: the limiter reads no clock of its own")
	}
	clk := &countingClock{Mock: clock.NewMock()}
	clk.Set(s.Start)
	l, ok := s.WithClock(t, clk).(allower)
	if !ok {
		t.Fatal("Subject.WithClock's limiter has no Allow and AllowN")
	}
	// Refund at the instant of the Take gives its units back (a Holder's
	// Refund is its Release); it reads no clock.
	giveBack := func(n int) { l.(ratekit.Limiter).Refund(clk.Mock.Now(), n) }
	call := func(name string, f func() bool) bool {
		t.Helper()
		before := clk.reads.Load()
		ok := f()
		if got := clk.reads.Load() - before; got != 1 {
			t.Errorf("%s at %v read the clock %d times, want 1", name, clk.Mock.Now().Sub(s.Start), got)
		}
		return ok
	}
	for _, jump := range []time.Duration{0, time.Hour, 400 * 24 * time.Hour} {
		clk.Add(jump)
		for _, n := range []int{0, -1, s.Capacity + 1, 1, s.Capacity} {
			if call("AllowN", func() bool { return l.AllowN(n) }) && n > 0 {
				giveBack(n)
			}
		}
		if call("Allow", l.Allow) {
			giveBack(1)
		}
	}

	// Contention: every goroutine admits one unit and gives it back, so the
	// word changes under the others' feet and their CASes fail and retry.
	const goroutines, rounds = 4, 1000
	before := clk.reads.Load()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				var ok bool
				if (g+i)%2 == 0 {
					ok = l.Allow()
				} else {
					ok = l.AllowN(1)
				}
				if ok {
					giveBack(1)
				}
			}
		})
	}
	wg.Wait()
	if got := clk.reads.Load() - before; got != goroutines*rounds {
		t.Errorf("%d contending Allow and AllowN calls read the clock %d times, want %d", goroutines*rounds, got, goroutines*rounds)
	}
}
