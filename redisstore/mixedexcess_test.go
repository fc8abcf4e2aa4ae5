package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

// The sliding log's faults while the previous script (4933695) and this
// one write a key under changing Windows are not compared Decision for
// Decision (TestMixedWindowChanges stops comparing there): these tests
// bound them, as the package doc states (Deploys and rollbacks), by the
// units the fleet admits beyond the Limit, counted by an exact log of
// every unit it admitted and did not refund (see truthLog).

// TestPreviousCarriedArchive: the previous script reading a key under a
// longer Window than it was cut under counts none of its archived units,
// and the archive keeps whole entries, so it may hold almost twice the
// Limit. This script, under 1s and a Limit of 5: 5 at S, 3 at S+1s (the 5
// archived, 3 live: 8 units, the trim keeps them), 1 at S+2.5s (the 3
// archived too: the trim stops at the 5, more than the 4 units spare).
// The previous script under 3s at S+2.6s counts 1, where the 9 units all
// count, and admits 4: 13 units in 3s, 8 beyond the Limit, 2·5-2 (the
// package doc said "the archive's units, about a Limit"). This script,
// reading the key under 3s where "!w" records 1s, recounts it and admits
// nothing more.
func TestPreviousCarriedArchive(t *testing.T) {
	f := newFleet(t)
	sec := time.Second
	cfg := redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "sl-archive", Limit: 5, Window: sec}
	short := f.replicas(t, cfg)
	cfg.Window = 3 * sec
	long := f.replicas(t, cfg)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	truth := newTruthLog()
	for _, tk := range []struct {
		l  *redisstore.Limiter
		at time.Duration
		n  int
	}{{short[0], 0, 5}, {short[0], sec, 3}, {short[0], 5 * sec / 2, 1}, {long[1], 26 * sec / 10, 4}} {
		if !takeAt(t, tk.l, "key", at(tk.at), tk.n) {
			t.Fatalf("%d at S+%v on the %s script denied", tk.n, tk.at, replicaName(long, tk.l))
		}
		truth.take(tk.l.Config().Window, at(tk.at), tk.n)
	}
	over := truth.count(3*sec, at(26*sec/10)) - cfg.Limit
	if over != 2*cfg.Limit-2 {
		t.Errorf("%d units beyond the Limit of %d in 3s; want %d (2·Limit-2)", over, cfg.Limit, 2*cfg.Limit-2)
	}
	if got := capacityAt(t, long[0], "key", at(26*sec/10), cfg.Limit); got != 0 {
		t.Errorf("this script, recounting under 3s, admits %d more; want 0", got)
	}
}

// TestMixedWindowExcess measures what the fleet admits beyond the Limit in
// random histories of a sliding log whose Window (a third, three times)
// and Limit (a third, twice) change while calls go, at random, to replicas
// running this script or the previous one, stale times included (odd
// rounds), Refunds too: at every admitted Take, the units an exact log of
// what the fleet admitted counts at its time, less the Limit. The package
// doc's bound: none while the key has kept one Window; each change of
// Window (a write under another Window than the write before it, by either
// script) adds fewer than twice the largest Limit a Take on the key was
// admitted under. (A Refund of the previous script that would not see the
// oldest entry goes to this one, as in TestMixedWindowChanges: under one
// Window it admits up to its units more, a fault of its own the doc
// states.)
func TestMixedWindowExcess(t *testing.T) {
	f := newFleet(t)
	sd := seed(t)
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	for _, cfg := range modelConfigs {
		if cfg.Algorithm != redisstore.SlidingLog || cfg.Limit > 1000 {
			continue
		}
		t.Run(cfg.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(sd, uint64(len(cfg.Name))))
			windows := []time.Duration{cfg.Window, max((cfg.Window / 3).Truncate(time.Microsecond), time.Microsecond), 3 * cfg.Window}
			policies := policiesOf(t, f, cfg, windows)
			worst, changed := 0.0, 0
			c := newClient(t)
			for round := range rounds {
				w := excessHistory(t, f, c, cfg, policies, rng, sd, round)
				worst = max(worst, w)
				if w > 0 {
					changed++
				}
			}
			t.Logf("%d of %d rounds admitted beyond the Limit; the most: %.2f largest Limits a change of Window", changed, rounds, worst)
		})
	}
}

// excessHistory runs one random history on key x<round> and returns the
// most units admitted beyond the Limit at once, per change of Window, in
// largest Limits; it fails t where the doc's bound does not hold.
func excessHistory(t *testing.T, f fleet, c *redis.Client, cfg redisstore.Config, policies [][]*redisstore.Limiter, rng *rand.Rand, sd uint64, round int) float64 {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprint("x", round)
	truth := newTruthLog()
	pol := policies[0]
	now := start
	st := steps(cfg.Window)
	if round%2 == 1 {
		st = append(st, -cfg.Window/2, -cfg.Window)
	}
	var lastW time.Duration // the Window of the key's last write
	var changes, largest int
	worst := 0.0
	var trace []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d round %d: %s\n%s", sd, round, fmt.Sprintf(format, args...), strings.Join(trace, "\n"))
	}
	for i := range 200 {
		if rng.IntN(10) < 1+3*(round%2) {
			pol = policies[rng.IntN(len(policies))]
		}
		l := pol[rng.IntN(len(pol))]
		W, L := l.Config().Window, l.Config().Limit
		now = now.Add(st[rng.IntN(len(st))]).Truncate(time.Microsecond)
		n := rng.IntN(min(L, 12) + 2)
		if rng.IntN(8) == 0 {
			n = L - rng.IntN(2)
		}
		change := 0
		if lastW != 0 && lastW != W {
			change = 1
		}
		if rng.IntN(5) == 0 {
			at := now.Add(-st[rng.IntN(len(st))] / 2).Truncate(time.Microsecond)
			if l != pol[0] && hidesOldest(t, c, l, key) {
				l = pol[0]
			}
			err := l.RefundAt(ctx, key, at, n)
			trace = append(trace, fmt.Sprintf("%d: %s %v/%v Refund(at S+%v, %d): %v", i, replicaName(pol, l), L, W, at.Sub(start), n, err))
			if err != nil && !previousFault(pol, l, err) {
				fail("%v", err)
			}
			if err == nil && truth.refund(W, at, n) {
				changes, lastW = changes+change, W
			}
			continue
		}
		d, err := l.TakeAt(ctx, key, now, n)
		trace = append(trace, fmt.Sprintf("%d: %s %v/%v Take(S+%v, %d): %v %v", i, replicaName(pol, l), L, W, now.Sub(start), n, d.Allowed, err))
		if err != nil && !previousFault(pol, l, err) {
			fail("%v", err)
		}
		if err != nil || !d.Allowed || n == 0 {
			continue
		}
		changes, lastW, largest = changes+change, W, max(largest, L)
		truth.take(W, now, n)
		over := truth.count(W, now) - L
		if over <= 0 {
			continue
		}
		trace = append(trace, fmt.Sprintf("   %d beyond the Limit, after %d changes of Window, largest Limit %d", over, changes, largest))
		if over >= changes*2*largest {
			fail("%d admitted beyond the Limit after %d changes of Window (largest Limit %d); the doc bounds it below %d", over, changes, largest, changes*2*largest)
		}
		worst = max(worst, float64(over)/float64(changes*largest))
	}
	return worst
}

// previousFault reports whether err is one of the previous script's Lua
// errors on keys this one wrote that TestPreviousGrownWindow and
// TestNegativeArchiveTotal pin.
func previousFault(pol []*redisstore.Limiter, l *redisstore.Limiter, err error) bool {
	return l != pol[0] && (strings.Contains(err.Error(), "attempt to index a nil value") ||
		strings.Contains(err.Error(), "attempt to perform arithmetic on field 'total'"))
}

// truthLog is every unit the fleet admitted and did not refund: the model's
// log with no Limit, so that it forgets nothing and files no placeholder.
// Refunds remove units by the model's rule (the n oldest live units
// recorded at or after their time), as the scripts do; units are recorded
// at the log's clock, as the scripts record them. The model admits a Take
// only where this log would count at most the Limit after it (what it
// forgot counts only where its lost mark admits nothing), so the model's
// Decisions never admit beyond the Limit by this count.
type truthLog struct{ m *logModel }

func newTruthLog() truthLog { return truthLog{&logModel{base: base{limit: 1 << 50}}} }

func (l truthLog) take(w time.Duration, now time.Time, n int) {
	l.m.setWindow(w)
	l.m.decide(scriptMicros(now), n, true)
}

// refund reports whether it removed any unit.
func (l truthLog) refund(w time.Duration, at time.Time, n int) bool {
	l.m.setWindow(w)
	before := l.total()
	l.m.refund(scriptMicros(at), n)
	return l.total() != before
}

// count is the units that count at now under w: recorded after now - w,
// later ones included (how a stale time is judged).
func (l truthLog) count(w time.Duration, now time.Time) int {
	l.m.setWindow(w)
	c := int64(0)
	for _, e := range l.m.live(scriptMicros(now)) {
		c += e.u
	}
	return int(c)
}

func (l truthLog) total() int64 {
	c := int64(0)
	for _, e := range l.m.es {
		c += e.u
	}
	return c
}
