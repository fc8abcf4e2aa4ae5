package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestRefundLongerWindowSlidingLog: a sliding log key, Limit 5, Window 1s,
// takes 5 at S; X, a Take at S+1s (1 unit, or 5), moves its clock past
// them, so they go to the archive (expired under 1s), and X is refunded;
// then Window 3s. A twin that never took X (its 5 still live) admits 0 at
// S-1s ... S+2s, and so does slidingwindow.Log, key or twin, reconfigured
// the same way. The key had not let go of the 5 (its sorted set still
// holds them), but its cut was read as the clock less the call's Window:
// under 3s the archived entries were after the cut (not read by the
// archive) but not in the live total, counted by neither, and the key
// admitted 5 at every such instant (X of 5: at S+1s and S+2s). The key
// now keeps the Window its archive was cut under ("!w").
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
