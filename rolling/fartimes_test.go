package rolling_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/rolling"
)

// TestFarTimesExact: a limiter decides times in any year exactly as a twin
// whose clock reads near them: every Decision of a history of Takes,
// Refunds and Peeks stamped around an anchor is the twin's and the
// reference model's, field for field, and so is every Peek after a restore
// of the state into a limiter on a clock at the anchor, a Reconfigure to
// the Config in force on a clock near the anchor or at the epoch (which
// changes no decision), and a Reconfigure of both to a shorter Window on
// that clock. The anchors are where
// time.Time.Sub saturates from the limiter's epoch (292 years either
// side), a nanosecond to a Window either side of that, and year 1 and
// year 9999. Before the epoch moved to such times, a window opened a
// Window before the bound held a Take stamped just after it, where the
// twin had closed it and opened one at the Take (4 units left a Window on,
// where the twin has 3).
func TestFarTimesExact(t *testing.T) {
	epoch := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const year = 8766 * time.Hour
	rng := rand.New(rand.NewPCG(292, 2026))
	histories := 0
	for _, w := range []time.Duration{2, time.Second, time.Hour, year} {
		anchors := []time.Time{time.Time{}, time.Date(9999, 11, 30, 0, 0, 0, 0, time.UTC)}
		for _, k := range []time.Duration{0, 1, -1, w / 2, -w / 2, w, -w} {
			anchors = append(anchors, epoch.Add(math.MinInt64).Add(k), epoch.Add(math.MaxInt64).Add(k))
		}
		offs := []time.Duration{-2 * w, -w - 1, -w, -w + 1, -w / 2, -1, 0, 1, w / 2, w - 1, w, w + 1, 2 * w}
		for _, a := range anchors {
			for range 12 {
				histories++
				farExactHistory(t, rng, epoch, a, w, offs)
			}
		}
	}
	t.Logf("%d histories", histories)
}

// farExactHistory runs one random history around anchor a (see
// TestFarTimesExact).
func farExactHistory(t *testing.T, rng *rand.Rand, epoch, a time.Time, w time.Duration, offs []time.Duration) {
	t.Helper()
	limit := 1 + rng.IntN(4)
	cfg := rolling.Config{Limit: limit, Window: w, Clock: fixedClock{at: epoch}}
	l := mustNew(t, cfg)
	tcfg := cfg
	tcfg.Clock = fixedClock{at: a}
	twin := mustNew(t, tcfg)
	m := model.NewRolling(limit, w, "", false) // exact in time.Time
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("Limit %d, Window %v, around %v (epoch %v): history %v: %s", limit, w, a, epoch, log, fmt.Sprintf(format, args...))
	}
	same := func(what string, got, want, exact ratekit.Decision) {
		t.Helper()
		if got != want || want != exact {
			fail("%s = %+v; the twin: %+v; the model: %+v", what, got, want, exact)
		}
	}
	for range 1 + rng.IntN(6) {
		q := offs[rng.IntN(len(offs))]
		n := rng.IntN(limit + 1)
		now := a.Add(q)
		switch rng.IntN(4) {
		case 0:
			log = append(log, fmt.Sprintf("refund %d@%v", n, q))
			l.Refund(now, n)
			twin.Refund(now, n)
			m.Refund(now, n)
		case 1:
			log = append(log, fmt.Sprintf("peek %d@%v", n, q))
			same(log[len(log)-1], l.Peek(now, n), twin.Peek(now, n), m.Peek(now, n))
		default:
			log = append(log, fmt.Sprintf("take %d@%v", n, q))
			same(log[len(log)-1], l.Take(now, n), twin.Take(now, n), m.Take(now, n))
		}
	}
	queries := append([]time.Duration{3 * w, -3 * w}, offs...)
	check := func(r *rolling.Limiter, what string) {
		t.Helper()
		for _, q := range queries {
			for _, n := range []int{0, 1, limit} {
				same(fmt.Sprintf("%s: Peek(anchor%+v, %d)", what, q, n), r.Peek(a.Add(q), n), twin.Peek(a.Add(q), n), m.Peek(a.Add(q), n))
			}
		}
	}
	check(l, "after the history")
	b, err := l.MarshalBinary()
	if err != nil {
		fail("MarshalBinary: %v", err)
	}
	r := mustNew(t, tcfg)
	if err := r.UnmarshalBinary(b); err != nil {
		fail("UnmarshalBinary: %v", err)
	}
	check(r, "restored on a clock at the anchor")
	at := a.Add(offs[rng.IntN(len(offs))])
	if rng.IntN(2) == 0 {
		at = epoch
	}
	cfg.Clock = fixedClock{at: at}
	if err := l.Reconfigure(cfg); err != nil {
		fail("Reconfigure: %v", err)
	}
	check(l, fmt.Sprintf("reconfigured to its Config on a clock at %v", at))
	// A shorter Window, on a clock at the same instant for both: the
	// window may restart there (see Limiter.Reconfigure), and both read it.
	cfg.Window, tcfg.Window = max(w/2, 1), max(w/2, 1)
	tcfg.Clock = cfg.Clock
	if err := l.Reconfigure(cfg); err != nil {
		fail("Reconfigure: %v", err)
	}
	if err := twin.Reconfigure(tcfg); err != nil {
		fail("Reconfigure of the twin: %v", err)
	}
	m.Reconfigure(at, limit, cfg.Window, "", false)
	check(l, fmt.Sprintf("both reconfigured to Window %v on a clock at %v", cfg.Window, at))
}

// TestFarRestoreShorterWindow: a window saved a nanosecond to a Window
// before the last instant its epoch reads (292 years on), restored into a
// limiter of half the Window on a clock at the old epoch, is carried from
// the saved window's last instant (see UnmarshalBinary), which that epoch
// cannot read: the epoch moves to the window, and the limiter decides as
// one restored on a clock at the window. (Read saturated, the carried
// start closed the window up to half a Window early.)
func TestFarRestoreShorterWindow(t *testing.T) {
	epoch := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, w := range []time.Duration{2, time.Second, time.Hour} {
		for _, k := range []time.Duration{0, -1, -w / 2, -w, 1} {
			a := epoch.Add(math.MaxInt64).Add(k)
			l := mustNew(t, rolling.Config{Limit: 3, Window: w, Clock: fixedClock{at: a}})
			l.Take(a, 2)
			b, _ := l.MarshalBinary()
			r := mustNew(t, rolling.Config{Limit: 3, Window: max(w/2, 1), Clock: fixedClock{at: epoch}})
			twin := mustNew(t, rolling.Config{Limit: 3, Window: max(w/2, 1), Clock: fixedClock{at: a}})
			if err := r.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if err := twin.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			for _, q := range []time.Duration{-w, -1, 0, 1, w / 2, w - 1, w, w + w/2, 2 * w} {
				if g, x := r.Peek(a.Add(q), 1), twin.Peek(a.Add(q), 1); g != x {
					t.Errorf("w %v k %v q %v: %v vs twin %v", w, k, q, g, x)
				}
			}
		}
	}
}
