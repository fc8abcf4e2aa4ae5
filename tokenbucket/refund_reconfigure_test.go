package tokenbucket_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit/internal/conformance"
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
		keep     time.Duration // if not 0, a Take of n stamped then, kept, on both
	}{
		{"RateHalved", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 5, Window: time.Second, Burst: 10}, -500 * time.Millisecond, 6, 0},
		{"RateTenth", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 10}, -900 * time.Millisecond, 10, 0},
		{"RateDoubled", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 20, Window: time.Second, Burst: 10}, -500 * time.Millisecond, 6, 0},
		{"BurstOnly", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, -time.Second, 5, 0},
		{"SlowerAndSmaller", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 3, Window: time.Second, Burst: 4}, -200 * time.Millisecond, 4, 0},
		{"FutureStamp", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 2, Window: time.Second, Burst: 10}, 300 * time.Millisecond, 5, 0},
		// Takes stamped after the change's instant: the carry stretches
		// the time between their stamps too.
		{"FutureStampsStretched", tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}, tokenbucket.Config{Limit: 5, Window: time.Second, Burst: 5}, 1500 * time.Millisecond, 3, 1776 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to := tc.from, tc.to
			from.Clock, to.Clock = atT0(), atT0()
			l, twin := mustNew(t, from), mustNew(t, from)
			if !l.Take(t0.Add(tc.at), tc.n).Allowed {
				t.Fatalf("Take(t0%v, %d) denied on a fresh bucket", tc.at, tc.n)
			}
			if tc.keep != 0 && (!l.Take(t0.Add(tc.keep), tc.n).Allowed || !twin.Take(t0.Add(tc.keep), tc.n).Allowed) {
				t.Fatalf("Take(t0%v, %d) denied", tc.keep, tc.n)
			}
			for _, x := range []*tokenbucket.Limiter{l, twin} {
				if err := x.Reconfigure(to); err != nil {
					t.Fatal(err)
				}
			}
			l.Refund(t0.Add(tc.at), tc.n)
			worst, wq, wgot, wwant := 0, time.Duration(0), 0, 0
			for q := -3 * time.Second; q <= 6*time.Second; q += 25 * time.Millisecond {
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

// TestRefundAcrossRateChangeRandom: random Takes before and after a
// Reconfigure that changes the rate and Burst, some refunded after it (or
// before), against a twin that never took the refunded ones; at every
// instant of a grid the refunded bucket admits no more than the twin.
func TestRefundAcrossRateChangeRandom(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 17))
	rates := []tokenbucket.Config{
		{Limit: 10, Window: time.Second, Burst: 10},
		{Limit: 5, Window: time.Second, Burst: 5},
		{Limit: 20, Window: time.Second, Burst: 10},
		{Limit: 3, Window: time.Second, Burst: 8},
		{Limit: 7, Window: 10 * time.Second, Burst: 4},
	}
	type take struct {
		at time.Duration
		n  int
	}
	for round := range 3000 {
		from, to := rates[rng.IntN(len(rates))], rates[rng.IntN(len(rates))]
		from.Clock, to.Clock = atT0(), atT0()
		l, twin := mustNew(t, from), mustNew(t, from)
		var hist []string
		var pending []take
		stamp := func() time.Duration {
			return time.Duration(rng.IntN(17)-6) * 250 * time.Millisecond
		}
		do := func(cfgBurst int) {
			at, n := stamp(), 1+rng.IntN(cfgBurst)
			ok := l.Take(t0.Add(at), n).Allowed
			refund := ok && rng.IntN(2) == 0
			if ok && !refund {
				twin.Take(t0.Add(at), n)
			}
			if refund {
				pending = append(pending, take{at, n})
			}
			hist = append(hist, fmt.Sprintf("Take(%v,%d)=%v refunded=%v", at, n, ok, refund))
		}
		for range rng.IntN(4) {
			do(from.Burst)
		}
		if len(pending) > 0 && rng.IntN(3) == 0 {
			p := pending[0]
			l.Refund(t0.Add(p.at), p.n)
			pending = pending[1:]
			hist = append(hist, fmt.Sprintf("Refund(%v,%d)", p.at, p.n))
		}
		for _, x := range []*tokenbucket.Limiter{l, twin} {
			if err := x.Reconfigure(to); err != nil {
				t.Fatal(err)
			}
		}
		hist = append(hist, fmt.Sprintf("Reconfigure(%d/%v burst %d)", to.Limit, to.Window, to.Burst))
		for range rng.IntN(4) {
			do(to.Burst)
		}
		for _, p := range pending {
			l.Refund(t0.Add(p.at), p.n)
			hist = append(hist, fmt.Sprintf("Refund(%v,%d)", p.at, p.n))
		}
		for q := -3 * time.Second; q <= 25*time.Second; q += 125 * time.Millisecond {
			at := t0.Add(q)
			if got, want := admits(l, at, to.Burst), admits(twin, at, to.Burst); got > want {
				t.Fatalf("round %d: at t0%+v the refunded bucket admits %d, the twin %d; from %d/%v burst %d: %v",
					round, q, got, want, from.Limit, from.Window, from.Burst, hist)
			}
		}
	}
}
