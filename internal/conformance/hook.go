package conformance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// This file holds the check of OnLimitReached, for every algorithm that has
// it (fixedwindow, rolling, slidingwindow's Log and Counter): the hook is
// called once per window, by the first Take denied because the limit is
// reached, with that Take's denial. A window is the algorithm's own (a
// fixed window, a rolling window) or, for a sliding window, the run of
// denials that stands for one; what the check relies on holds for all: a
// limiter drained from full capacity and then denied calls the hook
// exactly once however many Takes it denies at that instant, however many
// goroutines race to be first; Peek, a Take of n < 0 or n > Limit and an
// admitted Take never call it; and once the limiter is back at full
// capacity (Peek's ResetAfter later) the next drain and denial call it
// again, once.

// hookRecorder counts a limiter's OnLimitReached calls and keeps the last
// Decision it was given.
type hookRecorder struct {
	calls atomic.Int64
	mu    sync.Mutex
	last  ratekit.Decision
	l     atomic.Pointer[ratekit.Limiter] // for the hook to call back into
	at    time.Time                       // when it does
}

func (h *hookRecorder) hook(d ratekit.Decision) {
	// The hook may call the limiter: it runs with no lock held.
	if l := h.l.Load(); l != nil {
		(*l).Peek(h.at, 1)
	}
	h.mu.Lock()
	h.last = d
	h.mu.Unlock()
	h.calls.Add(1)
}

func (h *hookRecorder) lastDecision() ratekit.Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// newHooked returns a fresh limiter of s whose OnLimitReached is a
// recorder's.
func (s Subject) newHooked(t *testing.T) (ratekit.Limiter, *hookRecorder) {
	h := &hookRecorder{at: s.Start}
	l := s.NewWithHook(t, h.hook)
	h.l.Store(&l)
	return l, h
}

// onLimitReached runs the checks of this file as subtests.
func (s Subject) onLimitReached(t *testing.T) {
	if s.NewWithHook == nil {
		t.Skip("no OnLimitReached")
	}
	t.Run("OncePerWindow", s.hookOncePerWindow)
	t.Run("OnceUnderContention", s.hookOnceConcurrent)
}

// hookOncePerWindow drives one limiter through three windows, each from
// full capacity: take it all, one unit at a time, then deny many times,
// counting the hook's calls.
func (s Subject) hookOncePerWindow(t *testing.T) {
	l, h := s.newHooked(t)
	now := s.Start
	for window := 1; window <= 3; window++ {
		want := int64(window - 1)
		// Nothing that is not a denial because the limit is reached calls
		// it: Takes of nothing, of too much, of a negative count, Peeks,
		// admissions.
		l.Take(now, 0)
		l.Take(now, s.Capacity+1)
		l.Take(now, -1)
		l.Peek(now, s.Capacity+1)
		for i := range s.Capacity {
			if d := l.Take(now, 1); !d.Allowed {
				t.Fatalf("window %d at %v: Take %d of %d from full capacity = %v; want allowed", window, now, i, s.Capacity, d)
			}
		}
		l.Peek(now, 1)
		l.Take(now, s.Capacity+1)
		if got := h.calls.Load(); got != want {
			t.Fatalf("window %d: OnLimitReached called %d times before any denial of the window; want %d", window, got, want)
		}
		d := l.Take(now, 1)
		if d.Allowed {
			t.Fatalf("window %d: Take(1) after the drain = %v; want denied", window, d)
		}
		if got := h.calls.Load(); got != want+1 {
			t.Fatalf("window %d: the first denial called OnLimitReached %d times in all; want %d", window, got, want+1)
		}
		if got := h.lastDecision(); got != d {
			t.Fatalf("window %d: OnLimitReached got %v; the denied Take returned %v", window, got, d)
		}
		if d.RetryAfter <= 0 || d.RetryAfter == ratekit.Never || d.Limit != s.Limit || d.Policy != s.Policy {
			t.Fatalf("window %d: OnLimitReached's denial %v; want a finite wait, Limit %d, Policy %q", window, d, s.Limit, s.Policy)
		}
		// More denials in the same window, of one unit and of all, at the
		// same instant and a little later: no more calls.
		for i := range 10 {
			at := now.Add(time.Duration(i) * d.RetryAfter / 20)
			l.Take(at, 1)
			l.Take(at, s.Capacity)
		}
		if got := h.calls.Load(); got != want+1 {
			t.Fatalf("window %d: further denials called OnLimitReached; %d calls in all, want %d", window, got, want+1)
		}
		// Full capacity again: the next window. (ResetAfter is measured
		// from now; the denials a little later changed nothing.)
		reset := l.Peek(now, 0).ResetAfter
		if reset <= 0 || reset == ratekit.Never {
			t.Fatalf("window %d: Peek(0).ResetAfter = %v after a drain; want a finite wait", window, reset)
		}
		now = now.Add(reset)
	}
}

// hookOnceConcurrent: goroutines racing denied Takes at one instant call
// the hook once in all.
func (s Subject) hookOnceConcurrent(t *testing.T) {
	for rep := 0; rep < 5; rep++ {
		l, h := s.newHooked(t)
		if got := drain(l, s.Start, s.Capacity); got != s.Capacity {
			t.Fatalf("drained %d units; want %d", got, s.Capacity)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 50; i++ {
					l.Take(s.Start, 1+i%s.Capacity)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := h.calls.Load(); got != 1 {
			t.Fatalf("rep %d: %d goroutines denied at one instant: OnLimitReached called %d times; want 1", rep, goroutines, got)
		}
	}
}
