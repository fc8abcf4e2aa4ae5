package tokenbucket_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/tokenbucket"
)

// TestRefundAcrossRateChange: a Reconfigure reads the bucket at its
// instant and carries the empty part as units, so a Take whose units had
// partly refilled by then carries over only that part, stretched to the
// new rate's time. A refund after it must give back no more than that:
// with the rate halved, Burst 10 at 10/s, 6 taken at t0-0.5s (0.1s of them
// still empty at t0, 1 unit), the twin that never took them and the
// refunded limiter must admit alike at every instant. (conformance's
// RefundAcrossReconfigure changes only the Burst; this changes the rate.)
func TestRefundAcrossRateChange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to tokenbucket.Config
		at       time.Duration // the refunded Take's stamp, from t0
		n        int
	}{
		{"RateHalved", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 5, Window: time.Second, Burst: 10}, -500 * time.Millisecond, 6},
		{"RateTenth", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 10}, -900 * time.Millisecond, 10},
		{"RateDoubled", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 20, Window: time.Second, Burst: 10}, -500 * time.Millisecond, 6},
		{"BurstOnly", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, -time.Second, 5},
		{"SlowerAndSmaller", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 3, Window: time.Second, Burst: 4}, -200 * time.Millisecond, 4},
		{"FutureStamp", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 2, Window: time.Second, Burst: 10}, 300 * time.Millisecond, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to := tc.from, tc.to
			from.Clock, to.Clock = atT0(), atT0()
			l, twin := mustNew(t, from), mustNew(t, from)
			if !l.Take(t0.Add(tc.at), tc.n).Allowed {
				t.Fatalf("Take(t0%v, %d) denied on a fresh bucket", tc.at, tc.n)
			}
			for _, x := range []*tokenbucket.Limiter{l, twin} {
				if err := x.Reconfigure(to); err != nil {
					t.Fatal(err)
				}
			}
			l.Refund(t0.Add(tc.at), tc.n)
			worst, wq, wgot, wwant := 0, time.Duration(0), 0, 0
			for q := -3 * time.Second; q <= 3*time.Second; q += 50 * time.Millisecond {
				at := t0.Add(q)
				if got, want := admits(l, at, to.Burst), admits(twin, at, to.Burst); got-want > worst {
					worst, wq, wgot, wwant = got-want, q, got, want
				}
			}
			if worst > 0 {
				t.Fatalf("at t0%+v the refunded bucket admits %d, the twin that never took %d", wq, wgot, wwant)
			}
		})
	}
}

// admits is how many units l would admit at now in one Take, up to most.
func admits(l *tokenbucket.Limiter, now time.Time, most int) int {
	n := 0
	for n < most && l.Peek(now, n+1).Allowed {
		n++
	}
	return n
}
