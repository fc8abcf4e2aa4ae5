package conformance

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// This file holds the check that a Decision is of one configuration: under
// Reconfigure racing Takes, Peeks and Refunds, every Decision describes the
// configuration before the change or the one after, never a mix (a Limit
// of one with the Window of the other, a Remaining above its Limit, a
// RetryAfter of Never for n <= its Limit or a finite one for n > it).
// internal/lincheck checks whole histories against a model for the
// word-state algorithms; this check runs for every algorithm.

// shape is the part of a Decision that a configuration alone fixes.
type shape struct {
	limit  int
	window time.Duration
	policy string
}

func shapeOf(d ratekit.Decision) shape { return shape{d.Limit, d.Window, d.Policy} }

func (s shape) String() string {
	return fmt.Sprintf("limit=%d window=%v policy=%q", s.limit, s.window, s.policy)
}

// reconfigureUntorn races takers against a Reconfigure that alternates
// the capacity between Capacity and half of it, and checks every Decision
// against the shapes a quiet limiter reports under each.
func (s Subject) reconfigureUntorn(t *testing.T) {
	if !s.reconfigureCheck(t) {
		return
	}
	hi, lo := s.Capacity, max(s.Capacity/2, 1)
	// The shapes of the two configurations, from a quiet limiter.
	shapes := map[shape]bool{}
	q := s.New(t)
	shapes[shapeOf(q.Peek(s.Start, 0))] = true
	for _, c := range []int{lo, hi} {
		s.reconfigure(t, q, c)
		shapes[shapeOf(q.Peek(s.Start, 0))] = true
	}
	for rep := 0; rep < 3; rep++ {
		l := s.New(t)
		var done atomic.Bool
		errs := make(chan error, 1)
		var reconf sync.WaitGroup
		reconf.Add(1)
		go func() {
			defer reconf.Done()
			for i := 0; !done.Load() || i < 20; i++ {
				if err := s.Reconfigure(l, []int{lo, hi}[i%2]); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
		var takers sync.WaitGroup
		bad := make(chan string, goroutines)
		for g := 0; g < goroutines; g++ {
			takers.Add(1)
			go func() {
				defer takers.Done()
				now := s.Start
				for i := 0; i < 500; i++ {
					// Times advance slowly and n sweeps past both limits,
					// so that allowed, denied and impossible requests all
					// meet both configurations.
					now = now.Add(time.Duration(i%7) * time.Millisecond)
					n := 1 + (i*7+g)%(hi+2)
					var d ratekit.Decision
					if i%3 == 0 {
						d = l.Peek(now, n)
					} else if d = l.Take(now, n); d.Allowed && i%5 == 0 {
						l.Refund(now, n)
					}
					if msg := untorn(d, n, shapes); msg != "" {
						select {
						case bad <- fmt.Sprintf("goroutine %d, call %d, n=%d at +%v: %v: %s", g, i, n, now.Sub(s.Start), d, msg):
						default:
						}
						return
					}
				}
			}()
		}
		takers.Wait()
		done.Store(true)
		reconf.Wait()
		select {
		case err := <-errs:
			t.Fatalf("Reconfigure: %v", err)
		default:
		}
		select {
		case msg := <-bad:
			t.Fatalf("rep %d, capacity alternating between %d and %d: a Decision of no one configuration: %s", rep, hi, lo, msg)
		default:
		}
	}
}

// untorn returns what is wrong with d, a decision for n units, if it is not
// of one of the configurations whose shapes are given; "" if nothing.
func untorn(d ratekit.Decision, n int, shapes map[shape]bool) string {
	sh := shapeOf(d)
	switch {
	case !shapes[sh]:
		want := ""
		for s := range shapes {
			want += " {" + s.String() + "}"
		}
		return "its " + sh.String() + " is none of the configurations':" + want
	case d.Remaining < 0 || d.Remaining > d.Limit:
		return fmt.Sprintf("Remaining %d is outside [0, its Limit %d]", d.Remaining, d.Limit)
	case d.Allowed && (n > d.Limit || d.RetryAfter != 0):
		return fmt.Sprintf("allowed %d units with Limit %d and RetryAfter %v", n, d.Limit, d.RetryAfter)
	case !d.Allowed && n > d.Limit && d.RetryAfter != ratekit.Never:
		return fmt.Sprintf("denied %d units over its Limit %d with a finite RetryAfter", n, d.Limit)
	case !d.Allowed && n <= d.Limit && (d.RetryAfter <= 0 || d.RetryAfter == ratekit.Never):
		return fmt.Sprintf("denied %d units within its Limit %d with RetryAfter %v", n, d.Limit, d.RetryAfter)
	}
	return ""
}
