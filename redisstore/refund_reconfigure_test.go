package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestRefundAcrossReconfigureTwin is internal/conformance's
// RefundAcrossReconfigure against the script, for every algorithm: a Take
// X is admitted under one policy, the policy changes (a Limiter of the
// same Algorithm and Name with another Limit; for the token bucket also
// another Window or Burst), other Takes may follow under the new one, and X is
// refunded under the new policy (or under the first again, after the
// other). A twin key sees every call but X. At every query instant, stale
// ones included, under either policy, the key must admit in one Take no
// more than its twin: a refund gives back at most what its Take took,
// whatever policies came between.
//
// The token bucket gave back X's n emission intervals at the refund's
// rate: after the rate was halved, twice the time X had taken (Limit 10/s,
// Burst 10: Takes of 5 and 5 (X) at start, Limit 5/s, X refunded: 10
// admitted at start where the twin admits 7). The sliding counter, at a
// stale time, counted the window its key had forgotten as full at the
// lowered Limit, though it held the old one (adversary2's case for
// slidingwindow.Counter: sc 5 -> 2, 1 admitted at start+250ms where the
// twin admits 0).
func TestRefundAcrossReconfigureTwin(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	type step struct {
		at     time.Duration // from start
		policy int           // 0: the first, 1: the changed one
		x      bool          // the Take refunded (the key only)
		refund bool          // X's refund (its stamp), under policy
		full   bool          // takes the whole capacity, not n
	}
	for _, cfg := range refundTwinConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			w, c := cfg.Window, cfg.Limit
			if cfg.Burst > 0 {
				c = cfg.Burst
			}
			// The policy changes: the Limit down and up; for the token
			// bucket also the Window (its rate is Limit per Window) longer
			// and shorter, and the Burst alone. (A window algorithm's
			// Window change reinterprets which window a unit is in, a
			// question apart from refunds; not held here.)
			changes := []func(redisstore.Config) redisstore.Config{
				func(k redisstore.Config) redisstore.Config { k.Limit = max(k.Limit/2, 1); return k },
				func(k redisstore.Config) redisstore.Config { k.Limit *= 2; return k },
			}
			if cfg.Burst > 0 {
				changes = append(changes,
					func(k redisstore.Config) redisstore.Config { k.Window *= 3; return k },
					func(k redisstore.Config) redisstore.Config {
						k.Window = (k.Window * 2 / 3).Truncate(time.Microsecond)
						return k
					},
					func(k redisstore.Config) redisstore.Config { k.Burst = max(k.Burst/2, 1); return k },
					func(k redisstore.Config) redisstore.Config { k.Burst *= 2; return k })
			}
			histories := [][]step{
				{{at: 0}, {at: 0, x: true}, {at: 0, policy: 1, refund: true}},
				{{at: 0}, {at: w / 4, x: true}, {at: w / 4, policy: 1, refund: true}},
				{{at: 0, x: true}, {at: w / 4}, {at: w / 2, policy: 1}, {at: 0, policy: 1, refund: true}},
				{{at: 0}, {at: 0, x: true}, {at: w / 3, policy: 1}, {at: 0, policy: 0, refund: true}},
				{{at: w / 2, x: true}, {at: w + w/4}, {at: w, policy: 1}, {at: w / 2, policy: 1, refund: true}},
				{{at: 0, x: true}, {at: -w / 2, policy: 1}, {at: 0, policy: 1, refund: true}},
				// adversary2's sliding Counter case: a full window, X a
				// window on (a Counter moves past the full one and forgets
				// it), refunded after the Limit went down; stale times must
				// count the forgotten window as what it held.
				{{at: -3 * w / 4, full: true}, {at: w, x: true, full: true}, {at: w, policy: 1, refund: true, full: true}},
				{{at: -3 * w / 4, full: true}, {at: w, x: true, full: true}, {at: 2 * w, policy: 1}, {at: w, policy: 1, refund: true, full: true}},
			}
			if cfg.Algorithm == redisstore.Rolling {
				// Open: the rolling window fails these without any policy
				// change. X opens a window at w (the full one closed at
				// w/4), the refund leaves it spent, and a stale Take before
				// w then opens its window at w (win.decide): 4 admitted at
				// start-w where the twin, whose full window is still open
				// there, admits 0. Left to a change that also covers the
				// embedded rolling.Limiter, which TestMatchesEmbedded
				// holds the script to.
				histories = histories[:len(histories)-2]
			}
			queries := []time.Duration{-w, -w / 2, 0, w / 4, w / 2, 3 * w / 4, w - time.Microsecond, w, w + w/3, 3 * w / 2, 2 * w, 3 * w, 4 * w}
			compared := 0
			for ci, change := range changes {
				pol := [2]*redisstore.Limiter{mustLimiter(t, s, cfg), mustLimiter(t, s, change(cfg))}
				caps := [2]int{c, max(pol[1].Config().Limit, pol[1].Config().Burst)}
				for hi, h := range histories {
					for _, n := range []int{1, max(c/2, 1)} {
						key, twin := fmt.Sprintf("rc-%d-%d-%d", ci, hi, n), fmt.Sprintf("rc-twin-%d-%d-%d", ci, hi, n)
						alike := true
						// The reference model follows the key: it reads a
						// tat written under another Limit rounded up to
						// the new Limit's 1/Limit µs, as the script does
						// (tbModel.read).
						var m *tbModel
						if cfg.Name == "tb" {
							m = newModel(cfg).(*tbModel)
						}
						setRate := func(l *redisstore.Limiter) {
							if m != nil {
								k := l.Config()
								m.setRate(int64(k.Limit), k.Window, int64(k.Burst))
							}
						}
						for i, st := range h {
							at := start.Add(st.at.Truncate(time.Microsecond))
							l := pol[st.policy]
							n := n
							if st.full {
								n = c
							}
							setRate(l)
							switch {
							case st.refund:
								if err := l.RefundAt(ctx, key, at, n); err != nil {
									t.Fatal(err)
								}
								if m != nil {
									m.refund(scriptMicros(at), n)
								}
							default:
								got, err := l.TakeAt(ctx, key, at, n)
								if m != nil {
									check(t, 0, hi, i, "Take", n, at, got, m.decide(scriptMicros(at), n, true), err)
								} else if err != nil {
									t.Fatal(err)
								}
								if st.x {
									alike = alike && got.Allowed
								} else {
									alike = alike && got.Allowed == takeAt(t, l, twin, at, n)
								}
							}
						}
						if !alike {
							continue
						}
						compared++
						for p, l := range pol {
							setRate(l)
							for _, q := range queries {
								at := start.Add(q)
								if m != nil {
									got, err := l.PeekAt(ctx, key, at, 1)
									check(t, 0, hi, -1, "Peek", 1, at, got, m.decide(scriptMicros(at), 1, false), err)
								}
								if got, want := capacityAt(t, l, key, at, caps[p]), capacityAt(t, l, twin, at, caps[p]); got > want {
									t.Fatalf("policy %+v, then %+v; history %d (%+v), Takes of %d, X refunded: under policy %d the key admits %d at start%s; a twin that never saw X, %d",
										pol[0].Config(), pol[1].Config(), hi, h, n, p, got, signedDur(q), want)
								}
							}
						}
					}
				}
			}
			if compared == 0 {
				t.Fatal("no history was decided alike with and without X: the test compared nothing")
			}
		})
	}
}
