package conformance

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ratekit/ratekit"
)

// This file holds the checks of Reconfigure: units taken stay counted
// whatever limits Reconfigure sets and unsets (the ratekit package
// documentation). Lowering a limit below what was taken leaves the limiter
// full (or over-full) until those units expire or are released; raising it
// again must not give them back.

// reconfigureChecks runs the checks of this file as subtests.
func (s Subject) reconfigureChecks(t *testing.T) {
	if !s.reconfigureCheck(t) {
		return
	}
	t.Run("DownUpAtOneInstant", s.reconfigureDownUp)
	t.Run("ConcurrentWithTakes", s.reconfigureConcurrent)
}

// reconfigure changes l's capacity to limit with s.Reconfigure, failing t on
// an error.
func (s Subject) reconfigure(t *testing.T, l ratekit.Limiter, limit int) {
	t.Helper()
	if err := s.Reconfigure(l, limit); err != nil {
		t.Fatalf("Reconfigure(limit %d): %v", limit, err)
	}
}

// reconfigureCheck reports whether the reconfiguration checks can run: a
// Subject without Reconfigure fails unless NoReconfigure says why it has
// none, in which case the checks are skipped with that reason.
func (s Subject) reconfigureCheck(t *testing.T) bool {
	t.Helper()
	if s.Reconfigure != nil {
		return true
	}
	if s.NoReconfigure == "" {
		t.Fatalf("Subject has no Reconfigure: set it, or say in NoReconfigure why the limiter cannot be reconfigured")
	}
	t.Skipf("not reconfigurable: %s", s.NoReconfigure)
	return false
}

// reconfigureDownUp takes some units at one instant, then cycles the limit
// down (below what was taken, to 1, to half) and back up many times,
// trying a Take at every level. Nothing passes time, so a limiter that was
// never reconfigured would admit Capacity in all: the total admitted must
// never exceed the highest limit set, and, the limit back at Capacity, a
// drain must bring the total to exactly Capacity. Then the limit goes up to
// 2·Capacity: the total may reach it but never pass it.
func (s Subject) reconfigureDownUp(t *testing.T) {
	c := s.Capacity
	for _, first := range []int{1, c / 2, c} {
		l := s.New(t)
		now := s.Start
		if d := l.Take(now, first); !d.Allowed {
			t.Fatalf("first Take(%d) on a fresh limiter = %v", first, d)
		}
		admitted := first
		take := func(limit, highest int, what string) {
			t.Helper()
			if l.Take(now, 1).Allowed {
				admitted++
			}
			if admitted > highest {
				t.Fatalf("took %d, then %s: %d admitted at one instant with no limit above %d set",
					first, what, admitted, highest)
			}
		}
		levels := []int{max(first-1, 1), 1, max(c/2, 1), c}
		for cycle := 0; cycle < 20; cycle++ {
			for _, limit := range levels {
				s.reconfigure(t, l, limit)
				take(limit, c, "cycling the limit down and up")
			}
		}
		s.reconfigure(t, l, c)
		admitted += drain(l, now, c)
		if admitted != c {
			t.Fatalf("took %d, cycled the limit down and back to %d: %d admitted at one instant; "+
				"a limiter never reconfigured admits exactly %d", first, c, admitted, c)
		}
		// Higher than ever: up to 2c in all, never more.
		for cycle := 0; cycle < 10; cycle++ {
			s.reconfigure(t, l, 2*c)
			take(2*c, 2*c, "raising the limit to 2·capacity")
			s.reconfigure(t, l, 1)
			take(1, 2*c, "lowering it to 1")
		}
		s.reconfigure(t, l, 2*c)
		admitted += drain(l, now, 2*c)
		if admitted > 2*c {
			t.Fatalf("took %d, raised the limit to %d: %d admitted at one instant", first, 2*c, admitted)
		}
	}
}

// reconfigureConcurrent races Takes at one instant against Reconfigures
// cycling the limit between Capacity, half of it and 1: a Take admitted
// under any of them counts under all, so the total admitted, plus what a
// drain admits once the limit is back at Capacity, is exactly Capacity.
func (s Subject) reconfigureConcurrent(t *testing.T) {
	c := s.Capacity
	for rep := 0; rep < 5; rep++ {
		l := s.New(t)
		var admitted atomic.Int64
		var done atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load() || i < 50; i++ {
				if err := s.Reconfigure(l, []int{c / 2, 1, c, max(c-1, 1)}[i%4]); err != nil {
					errs <- err
					return
				}
			}
		}()
		var takers sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			takers.Add(1)
			go func() {
				defer takers.Done()
				// Together the takers ask for 2·Capacity+400 units, so
				// the limit is always reached whatever the interleaving.
				for i := 0; i < (2*c)/goroutines+50; i++ {
					if l.Take(s.Start, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		takers.Wait()
		done.Store(true)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatalf("Reconfigure: %v", err)
		default:
		}
		if got := admitted.Load(); got > int64(c) {
			t.Fatalf("rep %d: %d goroutines at one instant, the limit cycling through %d, %d and 1: admitted %d; want at most %d",
				rep, goroutines, c, c/2, got, c)
		}
		s.reconfigure(t, l, c)
		rest := drain(l, s.Start, c)
		if got := admitted.Load() + int64(rest); got != int64(c) {
			t.Fatalf("rep %d: admitted %d while reconfiguring and %d after, back at %d; want exactly %d in all",
				rep, admitted.Load(), rest, c, c)
		}
	}
}
