package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestScriptMatchesModelAtClampEdges holds the script and the reference
// model to the same Decisions at injected times past both ends of the
// script's clock, which TakeAt, PeekAt and RefundAt clamp to [1970, 2112]
// (2^52 µs): a model fed the raw time decides at another instant. The
// FuzzScript input tb-max-before-1970 found it: tb-max's Window steps of
// 400 days walk before 1970 (or past 2112) within a few hundred calls, and
// a Peek there had the script's ResetAfter 67 hours (the time before 1970)
// short of the unclamped model's.
//
// The clamp changes admissions, not only ResetAfter: below, the bucket
// that "tb" empties at 1970-5s is still empty at 1970-2s (both are 1970 to
// the script), where the unclamped model has it refilled; and a stale
// Take at 1970-5s, after one at 1970, is admitted as at 1970, where the
// unclamped model denies it (stale by 5s). Both are the key's Decisions at
// the clamped instants, and the clamp never moves two times further apart,
// so no real interval sees more admitted than the Config allows.
func TestScriptMatchesModelAtClampEdges(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	epoch := time.UnixMicro(0).UTC()
	end := time.UnixMicro(1 << 52).UTC()
	type call struct {
		op string // "take", "peek", "refund"
		at time.Time
		n  int
	}
	scripts := []struct {
		name  string
		calls []call
	}{
		// Before 1970: empty at -5s, a Take at -2s (denied at 1970), a
		// Peek at -1s.
		{"before-1970", []call{{"take", epoch.Add(-5 * time.Second), -1}, {"take", epoch.Add(-2 * time.Second), 1},
			{"peek", epoch.Add(-time.Second), 1}, {"peek", epoch.Add(time.Second / 2), 1}}},
		// A stale Take before 1970 after one at 1970.
		{"stale-before-1970", []call{{"take", epoch, 1}, {"take", epoch.Add(-5 * time.Second), 2},
			{"peek", epoch.Add(-492800 * time.Hour), 1}, {"refund", epoch.Add(-time.Hour), 1}, {"peek", epoch, 1}}},
		// Past 2112: a Take just past it, Peeks and a Take later still
		// (all at 2112 to the script), a refund at the Take.
		{"after-2112", []call{{"take", end.Add(time.Second), -1}, {"peek", end.Add(3 * time.Second), 1},
			{"take", end.Add(400 * 24 * time.Hour), 1}, {"refund", end.Add(time.Second), 1}, {"peek", end.Add(time.Hour), 1}}},
	}
	for _, name := range []string{"tb", "tb-max", "sc-max", "sc", "fw", "rw", "sl"} {
		var cfg redisstore.Config
		for _, c := range modelConfigs {
			if c.Name == name {
				cfg = c
			}
		}
		capacity := cfg.Limit
		if cfg.Burst > 0 {
			capacity = cfg.Burst
		}
		l := mustLimiter(t, s, cfg)
		for _, sc := range scripts {
			t.Run(name+"/"+sc.name, func(t *testing.T) {
				key := fmt.Sprint("clamp-", name, "-", sc.name)
				m := newModel(cfg)
				for i, c := range sc.calls {
					n := c.n
					if n < 0 {
						n = capacity // the whole capacity
					}
					switch c.op {
					case "take":
						want := m.decide(scriptMicros(c.at), n, true)
						got, err := l.TakeAt(ctx, key, c.at, n)
						check(t, 0, 0, i, "Take", n, c.at, got, want, err)
					case "peek":
						want := m.decide(scriptMicros(c.at), n, false)
						got, err := l.PeekAt(ctx, key, c.at, n)
						check(t, 0, 0, i, "Peek", n, c.at, got, want, err)
					case "refund":
						m.refund(scriptMicros(c.at), n)
						if err := l.RefundAt(ctx, key, c.at, n); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
		}
	}
}
