package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestRefundLongerWindowSlidingLog (OPEN, fails on redissc ce67f4d): a
// sliding log key, Limit 5, Window 1s, takes 5 at S; X, a Take at S+1s
// (1 unit, or 5), moves its clock past them, so they go to the archive
// (expired under 1s), and X is refunded; then Window 3s. The key admits 5
// at S-1s ... S+2s, where a twin that never took X (its 5 still live)
// admits 0, and so does slidingwindow.Log, key or twin, reconfigured the
// same way. With X of 1 unit the key has let go of nothing (the sorted
// set still holds the 5, "#A:5"): slcount's cut is clock - W under the
// call's Window, so under 3s the archived entries are inside the cut
// (not read by slarchived) but outside the live total: counted by neither.
// Fixing it needs the cut (or the Window) the archive was made under kept
// in the key (a change of the sorted set's marker, see the deploy rule),
// and logModel to learn Window changes.
func TestRefundLongerWindowSlidingLog(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	sec := time.Second
	for _, nx := range []int{1, 5} {
		cfg := redisstore.Config{Algorithm: redisstore.SlidingLog, Name: fmt.Sprint("sl-rewin-", nx), Limit: 5, Window: sec}
		old := mustLimiter(t, s, cfg)
		cfg.Window = 3 * sec
		nw := mustLimiter(t, s, cfg)
		at := func(d time.Duration) time.Time { return start.Add(d) }
		for _, k := range []string{"key", "twin"} {
			if !takeAt(t, old, k, at(0), 5) {
				t.Fatal("5 at S denied")
			}
			if k == "key" {
				if !takeAt(t, old, k, at(sec), nx) {
					t.Fatal("X denied")
				}
				if err := old.RefundAt(ctx, k, at(sec), nx); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, q := range []time.Duration{-sec, 0, sec / 2, sec, 2 * sec} {
			if got, want := capacityAt(t, nw, "key", at(q), 5), capacityAt(t, nw, "twin", at(q), 5); got > want {
				t.Errorf("X of %d: at S+%v under 3s the key admits %d; the twin, %d", nx, q, got, want)
			}
		}
	}
}
