package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
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

// TestRollingRefundAcrossOldKey is internal/conformance's
// RefundAcrossOwnRestore where redisstore has something like a restore: a
// key written by an older script, without the third word (whether a unit
// was taken after the start), which reads as 1. X opens a window, the key
// is rewritten so, a Take 45s later joins the window, and X is refunded:
// the window must not stay anchored at X (closing at 1m, admitting 10
// where a twin that never saw X admits 9; its window opened at 45s). The
// script has no restore mark, so the refund moves the start as for any key.
func TestRollingRefundAcrossOldKey(t *testing.T) {
	s, c := newStore(t)
	ctx := context.Background()
	w := time.Minute
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "old", Limit: 10, Window: w})
	oldFormat := func(key string) {
		v, err := c.Get(ctx, l.Key(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(v)
		if len(f) != 4 {
			t.Fatalf("rolling key %q: want four words", v)
		}
		if err := c.Set(ctx, l.Key(key), f[0]+" "+f[1], redis.KeepTTL).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if !takeAt(t, l, "k", start, 1) {
		t.Fatal("X denied")
	}
	oldFormat("k")
	if !takeAt(t, l, "k", start.Add(45*time.Second), 1) || !takeAt(t, l, "twin", start.Add(45*time.Second), 1) {
		t.Fatal("Take at +45s denied")
	}
	oldFormat("twin")
	if err := l.RefundAt(ctx, "k", start, 1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []time.Duration{0, 45 * time.Second, w - time.Microsecond, w, w + 30*time.Second, w + 45*time.Second - time.Microsecond, w + 45*time.Second, 2 * w, 3 * w} {
		if got, want := capacityAt(t, l, "k", start.Add(q), 10), capacityAt(t, l, "twin", start.Add(q), 10); got > want {
			t.Fatalf("X refunded after the key was rewritten without its third word: it admits %d at start%s; a twin that never saw X, %d", got, signedDur(q), want)
		}
	}
}
