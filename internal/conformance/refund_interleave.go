package conformance

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// timedOp is one Take or Refund of the interleaving, kept to print a failing
// history.
type timedOp struct {
	what string
	at   time.Duration // from the refunded Take's stamp
	n    int
	ok   bool
}

func (o timedOp) String() string {
	return fmt.Sprintf("%s(t1%s, %d)=%v", o.what, signed(o.at), o.n, o.ok)
}

// signed formats d with its sign, "+1s" or "-1s".
func signed(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// window is the time scale of s's limiters: the Window a fresh limiter
// reports, or a second for limiters without one (Holders).
func (s Subject) window(t *testing.T) time.Duration {
	if w := s.New(t).Peek(s.Start, 1).Window; w > 0 {
		return w
	}
	return time.Second
}

// capacity is how many units l would admit at now in one Take: the largest
// n <= Capacity that Peek allows. A limiter that admits n admits every
// smaller count, so it is found by bisection: O(log Capacity) Peeks, which
// keeps the check quick for limits in the thousands under -race.
func (s Subject) capacity(l ratekit.Limiter, now time.Time) int {
	lo, hi := 0, s.Capacity // Peek allows lo (or lo is 0); the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if l.Peek(now, mid).Allowed {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// admitsMore reports whether l admits more in one Take at now than twin
// does, s.capacity(l, now) > s.capacity(twin, now), with one Peek of l
// where the comparison bisected both (a limiter that admits n admits every
// smaller count, as capacity assumes); got and want are the two when it
// does, and only want otherwise.
func (s Subject) admitsMore(l, twin ratekit.Limiter, now time.Time) (got, want int, more bool) {
	want = s.capacity(twin, now)
	if want >= s.Capacity || !l.Peek(now, want+1).Allowed {
		return 0, want, false
	}
	return s.capacity(l, now), want, true
}

// refundInterleaved holds the refund contract of ratekit.Limiter under
// interleaving: a Take at t1, then other callers with stamps later than t1
// (by up to several windows) and earlier (stale) take what they can, then
// Refund(t1, n). A twin limiter sees the same history without the refunded
// Take: the same takes before it, and then each Take the limiter under test
// admitted (the units that were really handed out). At every query instant,
// before t1, between the stamps and windows later, the limiter must admit
// no more in one Take than the twin does: a refund may give back less than
// the exact inverse (it cannot always tell which units were whose), never
// more. Histories are random; the seed is logged and read back from SeedEnv
// (RATEKIT_SEED=<seed> go test -run 'Conform.*/RefundInterleaved' ./pkg/).
//
// It runs twice: with Take and Refund called directly (Refund), and with
// both made by ratekit.TakeAll's rollback (TakeAll, below).
//
// For an Anchored subject (windows opened by the first event), the
// comparison is made only at instants from t1 on, and only in histories
// where no other Take is stamped a Window or more after t1. Outside that no
// refund can keep the promise, because the refunded Take's effect has
// already been built on before the refund arrives:
//
//   - Take(t1) opens a window [t1, t1+W); a Take at t1+W/2 joins it; a Take
//     at t1+W opens the next window [t1+W, t1+2W). The twin's first window
//     opened at t1+W/2 and the Take at t1+W joined it, so at t1+W the twin
//     is full where the limiter has room, and the refund, whose window is
//     gone, cannot know how full the twin's would be.
//   - A window [S0, S0+W) holding units closes before t1; Take(t1) opens a
//     new one and the old count is forgotten. At stale times before t1 the
//     limiter judges by the new window (a stale Take joins the open
//     window), the twin by the old one, which may be full: a refund cannot
//     restore a count that was dropped when the window opened.
func (s Subject) refundInterleaved(t *testing.T) {
	t.Run("Refund", func(t *testing.T) { s.interleave(t, false) })
	t.Run("TakeAll", s.takeAllRollbackInterleaved)
}

// takeAllRollbackInterleaved is refundInterleaved with the Take and its
// refund made by ratekit.TakeAll over the limiter and a member that blocks
// (as a slow member, a remote one say, would) until the other callers have
// taken, and then denies: the refund is TakeAll's rollback.
func (s Subject) takeAllRollbackInterleaved(t *testing.T) { s.interleave(t, true) }

// gate is a TakeAll member whose Take signals entered, waits for a value on
// deny and then denies: it holds a TakeAll between its earlier members'
// Takes and their rollback, for as long as a test needs, without sleeping.
type gate struct {
	entered chan struct{}
	deny    chan struct{}
}

func (g gate) Take(now time.Time, n int) ratekit.Decision {
	g.entered <- struct{}{}
	<-g.deny
	return g.Peek(now, n)
}
func (gate) Peek(time.Time, int) ratekit.Decision {
	return ratekit.Decision{RetryAfter: time.Second, Policy: "gate"}
}
func (gate) Refund(time.Time, int) {}

func (s Subject) interleave(t *testing.T, viaTakeAll bool) {
	rng := rand.New(rand.NewPCG(seed(t), 0x2ef0))
	w := s.window(t)
	c := s.Capacity
	// Offsets from t1, in windows and in fractions of one; negative ones are
	// stale stamps.
	frac := func() time.Duration {
		switch rng.IntN(8) {
		case 0:
			return 0
		case 1:
			return time.Duration(1 + rng.IntN(3)) // nanoseconds
		case 2:
			return w / time.Duration(c) * time.Duration(1+rng.IntN(c)) // whole units of a bucket's refill
		case 3:
			return w - time.Duration(rng.IntN(2))
		default:
			return time.Duration(rng.Int64N(int64(w)))
		}
	}
	offset := func(stale bool) time.Duration {
		d := frac() + time.Duration(rng.IntN(4))*w // up to several windows
		if stale || rng.IntN(6) == 0 {
			return -frac() - time.Duration(rng.IntN(2))*w
		}
		return d
	}
	queries := []time.Duration{-3 * w, -w - 1, -w, -w / 2, -1, 0, 1, w / 3, w / 2, w - 1, w, w + 1,
		3 * w / 2, 2*w - 1, 2 * w, 3 * w, 4 * w, 5*w + w/2, 10 * w}
	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	for round := 0; round < rounds; round++ {
		l, twin := s.New(t), s.New(t)
		t1 := s.Start
		var hist []timedOp
		// Before t1: the same takes for both, some of them stamped after t1
		// (the refunded Take then carries a stale stamp).
		for i := rng.IntN(3); i > 0; i-- {
			at := offset(rng.IntN(2) == 0)
			if rng.IntN(3) == 0 {
				at = -at
			}
			n := 1 + rng.IntN(c)
			ok := l.Take(t1.Add(at), n).Allowed
			if twin.Take(t1.Add(at), n).Allowed != ok {
				t.Fatalf("seed round %d: two fresh limiters disagree on Take(%v, %d)", round, at, n)
			}
			hist = append(hist, timedOp{"pre Take", at, n, ok})
		}
		n0 := s.capacity(l, t1)
		if n0 == 0 {
			continue
		}
		n0 = 1 + rng.IntN(n0)
		var rolledBack chan ratekit.Decision
		g := gate{entered: make(chan struct{}), deny: make(chan struct{})}
		if viaTakeAll {
			rolledBack = make(chan ratekit.Decision)
			go func() { rolledBack <- ratekit.TakeAll(t1, n0, l, g) }()
			<-g.entered // l has admitted n0 (Peek said it would)
			hist = append(hist, timedOp{"REFUNDED TakeAll", 0, n0, true})
		} else {
			if !l.Take(t1, n0).Allowed {
				t.Fatalf("round %d: Peek allowed %d at t1 but Take denied it", round, n0)
			}
			hist = append(hist, timedOp{"REFUNDED Take", 0, n0, true})
		}
		// Other callers take what they can, in one Take or one unit at a time.
		var admitted []timedOp
		for i := 1 + rng.IntN(5); i > 0; i-- {
			at := offset(false)
			if s.Anchored && at >= w {
				at %= w // no later window may open on the refunded Take's
			}
			if rng.IntN(2) == 0 {
				for k := 0; k <= c && l.Take(t1.Add(at), 1).Allowed; k++ {
					admitted = append(admitted, timedOp{"Take", at, 1, true})
				}
				hist = append(hist, timedOp{"drain", at, 1, true})
				continue
			}
			n := 1 + rng.IntN(c)
			if n2 := s.capacity(l, t1.Add(at)); n2 > 0 && rng.IntN(2) == 0 {
				n = n2 // all it has
			}
			ok := l.Take(t1.Add(at), n).Allowed
			if ok {
				admitted = append(admitted, timedOp{"Take", at, n, true})
			}
			hist = append(hist, timedOp{"Take", at, n, ok})
		}
		if viaTakeAll {
			g.deny <- struct{}{}
			if d := <-rolledBack; d.Allowed || d.Policy != "gate" {
				t.Fatalf("round %d: TakeAll with a denying member = %v; want the member's denial", round, d)
			}
			hist = append(hist, timedOp{"rollback", 0, n0, true})
		} else {
			l.Refund(t1, n0)
			hist = append(hist, timedOp{"Refund", 0, n0, true})
		}
		for _, o := range admitted {
			twin.Take(t1.Add(o.at), o.n)
		}
		qs := queries
		for _, o := range hist {
			qs = append(qs, o.at-1, o.at, o.at+1, o.at+w-1, o.at+w, o.at+w+1)
		}
		for _, q := range qs {
			if s.Anchored && q < 0 {
				continue // the forgotten window's count (see above)
			}
			now := t1.Add(q)
			if got, want, more := s.admitsMore(l, twin, now); more {
				t.Fatalf("round %d: at t1%s the limiter admits %d, but %d had the refunded Take never happened\n"+
					"window %v; history (times from t1): %s", round, signed(q), got, want, w, joinOps(hist))
			}
		}
	}
}

func joinOps(ops []timedOp) string {
	var b strings.Builder
	for i, o := range ops {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.String())
	}
	return b.String()
}
