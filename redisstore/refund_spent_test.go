package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRefundAfterSpentTwin is internal/conformance's RefundAfterSpent
// against the script, for every algorithm: a Take X is admitted, another
// caller's Take after it is admitted and refunded in full (so the key may
// hold as little as a fresh one), Takes follow at X's instant or before it,
// then X is refunded. At every query instant the key must admit, in one
// Take, no more than a twin key that saw every other Take and refund but
// not X. The rolling window once deleted a key refunded to zero, so the
// Take at X's instant opened a window there and X's refund gave back that
// Take's units (10 admitted where the twin admits 7).
func TestRefundAfterSpentTwin(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	type step struct {
		at      time.Duration // from start
		x, undo bool
	}
	for _, cfg := range refundTwinConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			l := mustLimiter(t, s, cfg)
			w := cfg.Window
			c := cfg.Limit
			if cfg.Burst > 0 {
				c = cfg.Burst
			}
			histories := [][]step{
				{{0, false, false}, {3 * w / 4, true, false}, {w + w/3, false, true}, {3 * w / 4, false, false}},
				{{0, false, false}, {3 * w / 4, true, false}, {w + w/3, false, true}, {-w / 2, false, false}, {3 * w / 4, false, false}},
				{{0, true, false}, {w, false, true}, {0, false, false}},
				{{0, false, false}, {w / 4, true, false}, {w + w/3, false, true}, {w / 4, false, false}},
				{{0, true, false}, {w / 2, false, true}, {0, false, false}},
			}
			queries := []time.Duration{-w, -w / 2, 0, w / 4, w / 2, 3 * w / 4, w - time.Microsecond, w, w + w/3, 3 * w / 2, 2 * w, 2*w + w/2, 3 * w}
			compared := 0
			for hi, h := range histories {
				// Three Takes of n fit in one window, so that X leaves the
				// others' decisions as they are in the twin.
				for _, n := range []int{1, c / 3} {
					if n == 0 {
						continue
					}
					key, twin := fmt.Sprintf("spent-%d-%d", hi, n), fmt.Sprintf("spent-twin-%d-%d", hi, n)
					var xAt time.Duration
					alike := true
					for _, st := range h {
						at := start.Add(st.at.Truncate(time.Microsecond))
						if st.x {
							xAt = st.at.Truncate(time.Microsecond)
							alike = alike && takeAt(t, l, key, at, n)
							continue
						}
						got, want := takeAt(t, l, key, at, n), takeAt(t, l, twin, at, n)
						alike = alike && got == want
						if st.undo && got && want {
							for _, k := range []string{key, twin} {
								if err := l.RefundAt(ctx, k, at, n); err != nil {
									t.Fatal(err)
								}
							}
						}
					}
					if !alike {
						continue
					}
					compared++
					if err := l.RefundAt(ctx, key, start.Add(xAt), n); err != nil {
						t.Fatal(err)
					}
					for _, q := range queries {
						at := start.Add(q)
						if got, want := capacityAt(t, l, key, at, c), capacityAt(t, l, twin, at, c); got > want {
							t.Fatalf("history %d (Takes of %d: %v), X refunded: the key admits %d at start%s; a twin that never saw X, %d",
								hi, n, fmt.Sprint(h), got, signedDur(q), want)
						}
					}
				}
			}
			if compared == 0 {
				t.Fatal("no history had the other Takes decided alike with and without X: the test compared nothing")
			}
		})
	}
}
