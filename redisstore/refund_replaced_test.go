package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestRefundReplacedWindowTwin is internal/conformance's
// RefundReplacedWindow against the script, for every algorithm: a Take P
// fills the key at start-3W/4, X (at start+W, when P's window has closed)
// is admitted and refunded in full at its own instant. At every query
// instant, stale ones before X included, the key must admit, in one Take,
// no more than a twin key that saw P but not X. The rolling window once
// opened a stale Take's window at the spent window's start: it admitted
// the whole Limit at start-1µs, where the twin, its window from P still
// full there, admits 0.
func TestRefundReplacedWindowTwin(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, cfg := range refundTwinConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			l := mustLimiter(t, s, cfg)
			w := cfg.Window
			c := cfg.Limit
			if cfg.Burst > 0 {
				c = cfg.Burst
			}
			queries := []time.Duration{-w, -3 * w / 4, -w / 2, -time.Microsecond, 0, w / 4, w / 2, w - time.Microsecond, w, w + w/2, 2 * w, 3 * w}
			compared := 0
			for i, n := range []int{c, c / 2, 1} {
				if n == 0 {
					continue
				}
				key, twin := fmt.Sprintf("replaced-%d", i), fmt.Sprintf("replaced-twin-%d", i)
				p := start.Add((-3 * w / 4).Truncate(time.Microsecond))
				if !takeAt(t, l, key, p, c) || !takeAt(t, l, twin, p, c) {
					t.Fatalf("a fresh key denied a Take of its capacity %d", c)
				}
				x := start.Add(w)
				if !takeAt(t, l, key, x, n) {
					continue
				}
				compared++
				if err := l.RefundAt(ctx, key, x, n); err != nil {
					t.Fatal(err)
				}
				for _, q := range queries {
					at := start.Add(q)
					if got, want := capacityAt(t, l, key, at, c), capacityAt(t, l, twin, at, c); got > want {
						t.Fatalf("P of %d at start-3W/4, X of %d at start+W refunded: the key admits %d at start%s; a twin that never saw X, %d",
							c, n, got, signedDur(q), want)
					}
				}
			}
			if compared == 0 {
				t.Fatal("X was denied in every case: the test compared nothing")
			}
		})
	}
}
