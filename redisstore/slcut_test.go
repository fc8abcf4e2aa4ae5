package redisstore_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

// TestCutTotalsMatchEntries: a sliding log key whose archive total has the
// leading 0 ("#A:0a:f": the totals are cut under the Window "!w" records)
// has totals that a recount from its entries gives: N the units after the
// clock less that Window, a those at or before it. This script moves such
// totals to another Window instead of recounting them, so they must hold
// whoever wrote the key last: random Takes and Refunds under changing
// Windows and Limits, stale times included, on this script alone and on a
// fleet of both scripts (the previous one writes a without the 0). Alone,
// every write keeps the 0, so the moves are what the histories exercise.
func TestCutTotalsMatchEntries(t *testing.T) {
	f := newFleet(t)
	sd := seed(t)
	c := newClient(t)
	ctx := context.Background()
	cfg := redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "sl-cut", Limit: 7, Window: time.Second}
	windows := []time.Duration{cfg.Window, cfg.Window / 3, 3 * cfg.Window, 3 * cfg.Window / 2}
	policies := policiesOf(t, f, cfg, windows)
	rng := rand.New(rand.NewPCG(sd, 7))
	for round := range 24 {
		mixed := round%2 == 1
		key := fmt.Sprint("cut", round)
		pol := policies[0]
		now := start
		st := append(steps(cfg.Window), -cfg.Window/2, -cfg.Window/5)
		cut := 0
		for i := range 150 {
			if rng.IntN(4) == 0 {
				pol = policies[rng.IntN(len(policies))]
			}
			l := pol[0]
			if mixed {
				l = pol[rng.IntN(len(pol))]
			}
			now = now.Add(st[rng.IntN(len(st))]).Truncate(time.Microsecond)
			n := rng.IntN(cfg.Limit) + 1
			var err error
			if rng.IntN(4) == 0 {
				if l != pol[0] && hidesOldest(t, c, l, key) {
					l = pol[0]
				}
				err = l.RefundAt(ctx, key, now.Add(-st[rng.IntN(len(st))]/2).Truncate(time.Microsecond), n)
			} else {
				_, err = l.TakeAt(ctx, key, now, n)
			}
			if err != nil && !previousFault(pol, l, err) {
				t.Fatalf("seed %d round %d step %d: %v", sd, round, i, err)
			}
			ok, tell, written := cutTotals(t, c, l.Key(key))
			if tell {
				cut++
			} else if !mixed && written {
				t.Fatalf("seed %d round %d step %d: this script alone wrote a without the leading 0", sd, round, i)
			}
			if !ok {
				t.Fatalf("seed %d round %d step %d (%s, Window %v): totals with the leading 0 that the entries do not give", sd, round, i, replicaName(pol, l), l.Config().Window)
			}
		}
		if !mixed && cut == 0 {
			t.Fatalf("round %d: no key with the leading 0", round)
		}
	}
}

// cutTotals reports whether key's totals are those its entries give, cut
// at its clock less the Window "!w" records (true where "#A" has no
// leading 0: nothing is claimed), whether "#A" has the leading 0, and
// whether the key has "#A" (it was written).
func cutTotals(t *testing.T, c *redis.Client, key string) (ok, tell, written bool) {
	t.Helper()
	zs, err := c.ZRangeByScoreWithScores(context.Background(), key, &redis.ZRangeBy{Min: "-inf", Max: "+inf"}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var es []logEntry
	var w, clock, total, arch int64
	var a string
	clock = math.MinInt64
	for _, z := range zs {
		m := z.Member.(string)
		var et, eu int64
		switch {
		case math.IsInf(z.Score, -1):
			var mw int64
			if _, err := fmt.Sscanf(m, "!w:%d:%d", &w, &mw); err != nil {
				t.Fatalf("%q: %v", m, err)
			}
		case strings.HasPrefix(m, "#A:"):
			a = strings.Split(m, ":")[1]
			if arch, err = strconv.ParseInt(a, 10, 64); err != nil { // a decimal 010, not an octal one
				t.Fatalf("%q: %v", m, err)
			}
		case strings.HasPrefix(m, "#"):
			if _, err := fmt.Sscan(m[1:], &total); err != nil {
				t.Fatalf("%q: %v", m, err)
			}
		default:
			clock = max(clock, int64(z.Score))
			if _, err := fmt.Sscanf(m, "%d:%d", &et, &eu); err == nil {
				es = append(es, logEntry{et, eu})
			}
		}
	}
	tell = len(a) > 1 && a[0] == '0'
	if !tell {
		return true, false, a != ""
	}
	var live, old int64
	for _, e := range es {
		if e.t > clock-w {
			live += e.u
		} else {
			old += e.u
		}
	}
	if live != total || old != arch {
		t.Logf("%s: N %d, a %d (%q); the entries cut at the clock less %dµs: %d, %d", key, total, arch, a, w, live, old)
		return false, true, true
	}
	return true, true, true
}
