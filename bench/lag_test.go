package bench

import (
	"testing"
	"time"
)

// lagCalls is the lag, in calls, that the allowing parallel explicit cases
// of the sliding windows must absorb without a denial. Their goroutines share
// one advancing time (explicit.ordered): one that takes its time and is then
// descheduled before its Take runs arrives with a time that is stale by every
// call the other goroutines made meanwhile. Measured on the shared 2-core
// machine (issue 17's runs, load 7), a goroutine came back up to 960,000
// calls late (120 ms off its core); 2^23 calls is about 1 s at 120 ns a call.
const lagCalls = 1 << 23

// TestOrderedLagHeadroom holds the configurations of the allowing parallel
// explicit cases whose goroutines share one advancing time (oneKey.shared,
// explicit.ordered) to admitting a time that lags the
// newest by lagCalls calls, at the phase where that costs them most: after
// a full window of calls at the case's pace, with the newest time just past
// a fixed-window boundary (the Counter's windows are aligned to Unix time;
// the Log has no phase). A stale time is judged by itself (slidingwindow's
// doc, "Time and state"), counting the units admitted after it too, so the
// lag a configuration absorbs is set by its Limit and load, not by its
// step.
func TestOrderedLagHeadroom(t *testing.T) {
	for _, c := range []struct {
		impl   oneKey
		window time.Duration
	}{
		{slidingLogImpl, slidingLogShared.Window},
		{slidingCounterImpl, slidingCounterShared.Window},
	} {
		t.Run(c.impl.name, func(t *testing.T) {
			// A boundary of every window a Counter may have that divides a
			// day, and of this one: Unix time 0 plus a multiple of window.
			boundary := time.Unix(0, 0).Add(time.Duration(time.Now().UnixNano()) / c.window * c.window)
			// Calls 1..k at the case's pace, the k-th just past boundary.
			step := stepOf(c.impl.shared(t, false, boundary), false)
			k := int64(c.window/step) + lagCalls + 2
			t0 := boundary.Add(-time.Duration(k-1)*step - 1)
			e := c.impl.shared(t, false, t0)
			if !e.ordered {
				t.Fatalf("%s: not an ordered case", c.impl.name)
			}
			for i := int64(1); i <= k; i++ {
				if !e.take(t0.Add(time.Duration(i) * step)) {
					t.Fatalf("call %d of %d at the case's pace denied", i, k)
				}
			}
			stale := t0.Add(time.Duration(k-lagCalls) * step)
			if !e.take(stale) {
				t.Fatalf("a time %d calls (%v) behind the newest was denied: a goroutine descheduled that long makes the allowing case fail", lagCalls, time.Duration(lagCalls)*step)
			}
		})
	}
}

// TestOwnTimeLagHeadroom is TestOrderedLagHeadroom for the other allowing
// parallel explicit cases, whose goroutines each advance a time of their own
// from the same start: one that is descheduled falls behind the others by
// every call they make meanwhile, and its next time is stale by that many
// steps. Each must admit a time lagCalls steps behind the newest with a
// Unix day's end between them (every Unix hour and minute ends there too):
// the phase that would cost a window aligned to the clock most, were the
// case's limiter configured so that a run could reach its window's end.
func TestOwnTimeLagHeadroom(t *testing.T) {
	for _, impl := range oneKeyImpls {
		if impl.at == nil || impl.shared != nil {
			continue // no explicit case, or TestOrderedLagHeadroom's
		}
		t.Run(impl.name, func(t *testing.T) {
			day := 24 * time.Hour
			end := time.Unix(0, 0).Add(time.Duration(time.Now().UnixNano()) / day * day)
			step := stepOf(impl.at(t, false, end), false)
			t0 := end.Add(-lagCalls / 2 * step)
			e := impl.at(t, false, t0)
			if e.ordered {
				t.Fatalf("%s: an ordered case without shared", impl.name)
			}
			// One goroutine makes lagCalls calls, past the window end,
			// while the other, descheduled, makes none; then it makes its
			// first, at t0 plus one step.
			for i := int64(1); i <= lagCalls; i++ {
				if !e.take(t0.Add(time.Duration(i) * step)) {
					t.Fatalf("call %d of %d at the case's pace denied", i, lagCalls)
				}
			}
			if !e.take(t0.Add(step)) {
				t.Fatalf("a time %d calls (%v) behind the newest, across a window end, was denied: a goroutine descheduled that long makes the allowing parallel case fail", lagCalls, time.Duration(lagCalls)*step)
			}
		})
	}
}
