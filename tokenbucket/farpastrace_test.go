package tokenbucket_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFarPastSeenWhileMoving races Peeks at t0 against a Take or a Wait
// that moves the epoch of a bucket drained at t0 (fineCfg, full at t0 + 50
// ns): a Take at t0 + 10 s moves it forward (rebase), and a Wait whose
// clock reads t0 + 8 s, after a Reconfigure at t0 + 10 s moved it there,
// moves it back (moveBack). Either leaves the drained TAT before the new
// fast range, kept in past, until it stores; at t0 the bucket is empty
// before and after, so every Peek(t0, 1) must deny. (With rebase's past
// dropped, the Peeks in that window found the bucket full since forever,
// 14 to 2795 times a run under -race, 3 runs of 3; with movedTo's dropped,
// 124 to 353. Without -race the window is narrower: 1 run of 3 and 3 of 3.)
func TestFarPastSeenWhileMoving(t *testing.T) {
	for _, tc := range []struct {
		name string
		move func(f *farTwin)
	}{
		{"rebase", func(f *farTwin) { f.l.Take(t0.Add(10*time.Second), 1) }},
		{"moveBack", func(f *farTwin) {
			f.clk.Set(t0.Add(8 * time.Second))
			if _, err := f.l.Wait(context.Background(), 1); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var admitted atomic.Int64
			for range 500 {
				f := newFarTwin(t, t0)
				if !f.l.Take(t0, 50).Allowed {
					t.Fatal("a new limiter did not admit its Burst")
				}
				if tc.name == "moveBack" {
					f.clk.Set(t0.Add(10 * time.Second))
					if err := f.l.Reconfigure(fineCfg(f.clk)); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				var done atomic.Bool
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !done.Load() {
						if f.l.Peek(t0, 1).Allowed {
							admitted.Add(1)
						}
					}
				}()
				tc.move(f)
				done.Store(true)
				wg.Wait()
				if f.l.Peek(t0, 1).Allowed {
					t.Fatal("Peek(t0, 1) admitted after the move")
				}
			}
			if n := admitted.Load(); n > 0 {
				t.Fatalf("Peek(t0, 1) admitted %d times while the epoch moved", n)
			}
		})
	}
}
