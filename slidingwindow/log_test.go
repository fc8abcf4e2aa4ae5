package slidingwindow_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

// t0 is the instant scripts start at.
var t0 = conformance.DefaultStart

func take(at time.Duration, n int, ok bool, remaining int, retry, reset time.Duration) conformance.Step {
	return conformance.Step{At: at, Op: conformance.OpTake, N: n, OK: ok, Remaining: remaining, RetryAfter: retry, ResetAfter: reset}
}

func peek(at time.Duration, n int, ok bool, remaining int, retry, reset time.Duration) conformance.Step {
	return conformance.Step{At: at, Op: conformance.OpPeek, N: n, OK: ok, Remaining: remaining, RetryAfter: retry, ResetAfter: reset}
}

func refund(at time.Duration, n int) conformance.Step {
	return conformance.Step{At: at, Op: conformance.OpRefund, N: n}
}

const s = time.Second

func TestConfigValidate(t *testing.T) {
	bad := []slidingwindow.Config{
		{Limit: 0, Window: s},
		{Limit: -1, Window: s},
		{Limit: 1, Window: 0},
		{Limit: 1, Window: -s},
		{Limit: 1, Window: slidingwindow.MaxWindow + 1},
	}
	for _, cfg := range bad {
		if err := cfg.Validate(); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%+v.Validate() = %v; want ErrInvalidConfig", cfg, err)
		}
		if _, err := slidingwindow.NewLog(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("NewLog(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
		if _, err := slidingwindow.NewCounter(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("NewCounter(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
	good := slidingwindow.Config{Limit: 1, Window: slidingwindow.MaxWindow}
	if err := good.Validate(); err != nil {
		t.Errorf("%+v.Validate() = %v", good, err)
	}
	tooBig := slidingwindow.Config{Limit: slidingwindow.MaxLogLimit + 1, Window: s}
	if _, err := slidingwindow.NewLog(tooBig); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("NewLog(Limit MaxLogLimit+1) = %v; want ErrInvalidConfig", err)
	}
	tooBig.Limit = slidingwindow.MaxCounterLimit(s) + 1
	if _, err := slidingwindow.NewCounter(tooBig); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Errorf("NewCounter(Limit MaxCounterLimit+1) = %v; want ErrInvalidConfig", err)
	}
}

// TestLogScript walks a 3-per-10s log through admissions, denials with
// exact RetryAfter, multi-unit takes, a stale time and refunds.
func TestLogScript(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 3, Window: 10 * s})
	conformance.RunScript(t, l, t0, []conformance.Step{
		take(0, 1, true, 2, 0, 10*s),
		take(1*s, 2, true, 0, 0, 10*s),
		// Units at 0, 1, 1. One more must wait for the unit at 0; two
		// more for the units at 0 and 1.
		take(2*s, 1, false, 0, 8*s, 9*s),
		take(2*s, 2, false, 0, 9*s, 9*s),
		peek(10*s-1, 1, false, 0, 1, 1*s+1),
		take(10*s, 1, true, 0, 0, 10*s), // the unit at 0 expires at 10s exactly
		// A stale now is evaluated at the newest instant, 10s: units at
		// 1, 1, 10 count. The wait is measured from the stale now.
		take(5*s, 1, false, 0, 6*s, 15*s),
		peek(11*s, 2, true, 0, 0, 10*s),
		// Refund the Take at 10s: the log is as if it had not happened.
		refund(10*s, 1),
		peek(10*s, 1, true, 0, 0, 10*s),
		// But the log's clock stays at 10s: a stale Peek is still judged there.
		peek(3*s, 1, true, 0, 0, 17*s),
		// Refund both units at 1s, asking for more than there are.
		refund(1*s, 5),
		peek(10*s, 3, true, 0, 0, 10*s),
		// A refund at an instant with no unit gives nothing back.
		take(12*s, 3, true, 0, 0, 10*s),
		refund(11*s, 3),
		take(12*s, 1, false, 0, 10*s, 10*s),
	})
}

// TestLogMultiUnit checks that a Take of n units waits for exactly enough
// of the oldest units to expire, and that a Refund in the middle of the log
// keeps it sorted.
func TestLogMultiUnit(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 5, Window: 10 * s})
	conformance.RunScript(t, l, t0, []conformance.Step{
		take(0, 2, true, 3, 0, 10*s),
		take(3*s, 2, true, 1, 0, 10*s),
		take(6*s, 1, true, 0, 0, 10*s),
		// Units 0, 0, 3, 3, 6: three must expire, the third oldest at 3s.
		take(7*s, 3, false, 0, 6*s, 9*s),
		take(7*s, 5, false, 0, 9*s, 9*s),
		peek(13*s-1, 3, false, 2, 1, 3*s+1),
		peek(13*s, 3, true, 1, 0, 10*s),
		// Refund one of the units at 3s: units 0, 0, 3, 6.
		refund(3*s, 1),
		take(7*s, 1, true, 0, 0, 10*s),
		// Units 0, 0, 3, 6, 7: two more need the units at 0 to go.
		take(8*s, 2, false, 0, 2*s, 9*s),
		take(10*s, 2, true, 0, 0, 10*s),
	})
}

// TestLogRingWraps drives a small log through many laps of its ring with
// refunds in the middle, checking the exact sliding-window property against
// brute force: a Take is admitted iff the units recorded in the last
// Window, plus n, are at most Limit.
func TestLogRingWraps(t *testing.T) {
	const limit, window = 4, 10 * s
	l := mustLog(t, slidingwindow.Config{Limit: limit, Window: window})
	var stamps []time.Duration
	now := time.Duration(0)
	for i := range 500 {
		now += time.Duration(i%7) * s / 2
		n := 1 + i%3
		count := 0
		for _, e := range stamps {
			if now-e < window {
				count++
			}
		}
		d := l.Take(t0.Add(now), n)
		if d.Allowed != (count+n <= limit) {
			t.Fatalf("step %d: Take(+%v, %d) with %d units counting = %v", i, now, n, count, d)
		}
		if d.Allowed {
			for range n {
				stamps = append(stamps, now)
			}
			if i%5 == 0 {
				l.Refund(t0.Add(now), 1)
				stamps = stamps[:len(stamps)-1]
			}
		}
	}
}

func TestLogExtremeTimes(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 2, Window: time.Hour})
	// The zero time is the oldest instant the log knows: admitted on a
	// fresh log, recorded there, and expired by any ordinary time.
	if d := l.Take(time.Time{}, 2); !d.Allowed {
		t.Fatalf("Take(zero time) on a fresh log = %v", d)
	}
	if d := l.Take(t0, 2); !d.Allowed || d.ResetAfter != time.Hour {
		t.Fatalf("Take(t0) after units at the zero time = %v", d)
	}
	// Now the zero time is stale: judged at t0, with a long but finite wait.
	d := l.Take(time.Time{}, 1)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter == ratekit.Never {
		t.Fatalf("Take(zero time) after t0 = %v; want denied with a finite wait", d)
	}
	// A time far in the future is clamped 73 years from the log's making:
	// it is admitted, and then every ordinary time is stale.
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := l.Take(far.Add(2*time.Hour), 1); !d.Allowed {
		t.Fatalf("Take(year 9999) = %v", d)
	}
	for _, at := range []time.Time{t0, far, time.Time{}, t0.Add(2 * time.Hour)} {
		if d := l.Take(at, 2); d.Allowed || d.RetryAfter <= 0 || d.RetryAfter == ratekit.Never {
			t.Fatalf("Take(%v, 2) after a unit at year 9999 = %v; want denied, finite wait", at, d)
		}
	}
}

func TestLogRefund(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 3, Window: 10 * s})
	l.Take(t0, 1)
	l.Take(t0.Add(5*s), 1)
	// A Take whose now is stale is recorded at the log's newest instant,
	// 5s. Its Refund at its own now removes the oldest unit recorded at or
	// after 2s: one at 5s, exactly what the Take took.
	if d := l.Take(t0.Add(2*s), 1); !d.Allowed {
		t.Fatalf("stale Take = %v", d)
	}
	l.Refund(t0.Add(2*s), 1)
	if d := l.Peek(t0.Add(5*s), 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after refunding a stale Take, Peek = %v; want allowed with 0 left", d)
	}
	// Refunding more than was taken at t0: the log holds nothing older
	// than t0, so only what was recorded at t0 goes, not the unit at 5s.
	l.Refund(t0, 10)
	if d := l.Peek(t0.Add(5*s), 2); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after Refund(t0, 10), Peek(2) = %v; want allowed with 0 left", d)
	}
	if d := l.Peek(t0.Add(5*s), 3); d.Allowed {
		t.Fatalf("after Refund(t0, 10), Peek(3) = %v; the unit at 5s still counts", d)
	}

	// A log that holds nothing older than the stale now cannot tell the
	// Take's units from newer ones: only units recorded exactly at that
	// now are given back, here none.
	l = mustLog(t, slidingwindow.Config{Limit: 3, Window: 10 * s})
	l.Take(t0.Add(5*s), 1)
	l.Take(t0.Add(2*s), 1) // recorded at 5s
	l.Refund(t0.Add(2*s), 1)
	if d := l.Peek(t0.Add(5*s), 2); d.Allowed {
		t.Fatalf("young log: after refunding a stale Take, Peek(2) = %v; want denied (nothing given back)", d)
	}

	// The Take's units were overwritten by newer ones once they expired:
	// its late Refund gives nothing back, rather than a newer unit.
	l = mustLog(t, slidingwindow.Config{Limit: 2, Window: 10 * s})
	l.Take(t0, 1)
	l.Take(t0.Add(10*s), 2)
	l.Refund(t0, 1)
	if d := l.Peek(t0.Add(10*s), 1); d.Allowed {
		t.Fatalf("after a late Refund of overwritten units, Peek = %v; want denied", d)
	}

	// Refunds of units never taken change nothing.
	l = mustLog(t, slidingwindow.Config{Limit: 2, Window: 10 * s})
	l.Refund(t0, 2)
	if got := drainAt(l, t0, 10); got != 2 {
		t.Fatalf("after refunding what was never taken, drained %d; want 2", got)
	}
}

func TestLogIdle(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 3, Window: 10 * s})
	l.Take(t0.Add(5*s), 2)
	for _, tc := range []struct {
		at   time.Duration
		idle bool
	}{{5 * s, false}, {15*s - 1, false}, {15 * s, true}, {4 * s, false}, {time.Hour, true}} {
		if got := l.Idle(t0.Add(tc.at)); got != tc.idle {
			t.Errorf("Idle(+%v) = %v; want %v", tc.at, got, tc.idle)
		}
	}
	// A refund empties the log, but its clock stays: idle only from there.
	l.Refund(t0.Add(5*s), 2)
	if l.Idle(t0.Add(4*s)) || !l.Idle(t0.Add(5*s)) {
		t.Errorf("after the refund, Idle(+4s), Idle(+5s) = %v, %v; want false, true", l.Idle(t0.Add(4*s)), l.Idle(t0.Add(5*s)))
	}
}

func TestLogReconfigure(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 3, Window: 10 * s, Name: "a"})
	l.Take(t0, 1)
	l.Take(t0.Add(1*s), 1)
	l.Take(t0.Add(2*s), 1)
	// Growing keeps every unit: two more fit.
	if err := l.Reconfigure(slidingwindow.Config{Limit: 5, Window: 10 * s, Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if d := l.Peek(t0.Add(3*s), 2); !d.Allowed || d.Remaining != 0 || d.Policy != "b" || d.Limit != 5 {
		t.Fatalf("after growing to 5, Peek(2) = %v", d)
	}
	if d := l.Peek(t0.Add(3*s), 3); d.Allowed || d.RetryAfter != 7*s {
		t.Fatalf("after growing to 5, Peek(3) = %v; want denied until the unit at 0 expires", d)
	}
	// Shrinking keeps the newest two: the units at 1s and 2s.
	if err := l.Reconfigure(slidingwindow.Config{Limit: 2, Window: 10 * s}); err != nil {
		t.Fatal(err)
	}
	if d := l.Peek(t0.Add(3*s), 1); d.Allowed || d.RetryAfter != 8*s || d.Remaining != 0 {
		t.Fatalf("after shrinking to 2, Peek(1) = %v; want denied for 8s", d)
	}
	// A shorter window applies to the units kept.
	if err := l.Reconfigure(slidingwindow.Config{Limit: 2, Window: 2 * s}); err != nil {
		t.Fatal(err)
	}
	if d := l.Peek(t0.Add(3*s), 1); !d.Allowed || d.Remaining != 0 || d.ResetAfter != 2*s {
		t.Fatalf("after a 2s window, Peek(1) at 3s = %v; want the unit at 2s alone to count", d)
	}
	// A bad config changes nothing.
	before := l.Peek(t0.Add(3*s), 1)
	if err := l.Reconfigure(slidingwindow.Config{Limit: 0, Window: s}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Fatalf("Reconfigure(Limit 0) = %v", err)
	}
	if after := l.Peek(t0.Add(3*s), 1); after != before {
		t.Fatalf("a rejected Reconfigure changed state: %v, then %v", before, after)
	}
	if got := l.Config(); got.Limit != 2 || got.Window != 2*s {
		t.Fatalf("Config() = %+v", got)
	}
}

// TestLogConcurrentReconfigure races Takes, Refunds, Peeks, Idles and
// MarshalBinarys at one instant against Reconfigures between two limits:
// with -race, it checks the retirement of replaced states (a caller holding
// one must move on to the new one); at the end, the log must be consistent.
func TestLogConcurrentReconfigure(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 8, Window: time.Minute})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				at := t0.Add(time.Duration(i%3) * time.Millisecond)
				if g == 3 {
					// The slow paths that read a whole state.
					if _, err := l.MarshalBinary(); err != nil {
						t.Error(err)
					}
					l.Idle(at)
					continue
				}
				if d := l.Take(at, 1+g%2); d.Allowed && i%2 == 0 {
					l.Refund(at, 1+g%2)
				}
				l.Peek(at, 1)
			}
		}()
	}
	for i := range 200 {
		if err := l.Reconfigure(slidingwindow.Config{Limit: 4 + 8*(i%2), Window: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := mustLog(t, l.Config()).UnmarshalBinary(b); err != nil {
		t.Fatalf("the state after racing Reconfigures does not restore: %v", err)
	}
	at := t0.Add(2 * time.Millisecond)
	left := l.Peek(at, 0).Remaining
	if got := drainAt(l, at, 100); got != left {
		t.Fatalf("Peek said %d remain; drained %d", left, got)
	}
}

func drainAt(l ratekit.Limiter, at time.Time, max int) int {
	n := 0
	for n < max && l.Take(at, 1).Allowed {
		n++
	}
	return n
}

// logState builds a MarshalBinary payload by hand.
func logState(units uint64, clock *int64, stamps ...uint64) []byte {
	b := []byte{'r', 'k', 4, 1}
	b = binary.AppendUvarint(b, units)
	if clock == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, 1)
	b = binary.AppendVarint(b, *clock)
	for i, v := range stamps {
		if i == 0 {
			b = binary.AppendVarint(b, int64(v))
		} else {
			b = binary.AppendUvarint(b, v)
		}
	}
	return b
}

func TestLogUnmarshal(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 3, Window: 10 * s})
	l.Take(t0, 1)
	before := l.Peek(t0, 1)
	c := t0.UnixNano()
	far := time.Now().Add(100 * 365 * 24 * time.Hour).UnixNano()
	for name, b := range map[string][]byte{
		"more units than bytes": logState(40, &c, uint64(c), 0, 0, 0),
		"units and no clock":    logState(1, nil),
		"bad clock flag":        append(logState(0, nil)[:5], 2),
		"unit after the clock":  logState(1, &c, uint64(c+1)),
		"delta past the clock":  logState(2, &c, uint64(c), 1),
		"delta overflow":        logState(2, &c, uint64(c), math.MaxUint64),
		"clock in 100 years":    logState(0, &far),
		"truncated units":       logState(2, &c, uint64(c)),
	} {
		err := l.UnmarshalBinary(b)
		if !errors.Is(err, ratekit.ErrInvalidState) {
			t.Errorf("UnmarshalBinary(%s) = %v; want ErrInvalidState", name, err)
		}
		if after := l.Peek(t0, 1); after != before {
			t.Fatalf("a rejected UnmarshalBinary(%s) changed state: %v, then %v", name, before, after)
		}
	}
	// More units than the Limit, saved before it was lowered: restored
	// whole, over-full until they expire.
	if err := l.UnmarshalBinary(logState(4, &c, uint64(c), 0, 0, 0)); err != nil {
		t.Fatalf("UnmarshalBinary(4 units, Limit 3): %v", err)
	}
	if d := l.Peek(t0, 1); d.Allowed || d.Remaining != 0 || d.RetryAfter != 10*s {
		t.Fatalf("after restoring 4 units into a Limit of 3, Peek(1) = %v; want denied for 10s", d)
	}
	if err := l.Reconfigure(slidingwindow.Config{Limit: 5, Window: 10 * s}); err != nil {
		t.Fatal(err)
	}
	if d := l.Peek(t0, 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("restored 4 units, Limit raised to 5: Peek(1) = %v; want allowed, 0 left", d)
	}
	if err := l.Reconfigure(slidingwindow.Config{Limit: 3, Window: 10 * s}); err != nil {
		t.Fatal(err)
	}
	// A well-formed state from elsewhere: two units at t0 and t0+1s.
	if err := l.UnmarshalBinary(logState(2, &c, uint64(c), uint64(s))); err == nil {
		t.Errorf("unit after the clock accepted")
	}
	c1 := c + int64(s)
	if err := l.UnmarshalBinary(logState(2, &c1, uint64(c), uint64(s))); err != nil {
		t.Fatal(err)
	}
	if d := l.Take(t0.Add(2*s), 2); d.Allowed || d.Remaining != 1 || d.RetryAfter != 8*s {
		t.Fatalf("after restoring units at 0 and 1s, Take(2) at 2s = %v", d)
	}
	// Ancient instants are moved up to 73 years before the log was made:
	// they count no longer than they would have.
	old := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	if err := l.UnmarshalBinary(logState(3, &old, uint64(old), 0, 0)); err != nil {
		t.Fatal(err)
	}
	if d := l.Take(t0, 3); !d.Allowed {
		t.Fatalf("after restoring ancient units, Take(3) = %v", d)
	}
}

func TestLogAllowAndWait(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(t0)
	l := mustLog(t, slidingwindow.Config{Limit: 2, Window: time.Minute, Clock: mock})
	if !l.Allow() || !l.AllowN(1) || l.Allow() {
		t.Fatalf("Allow, AllowN(1), Allow on a 2-per-minute log: want true, true, false")
	}
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(30*s))
	defer cancel()
	if _, err := l.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait needing a minute with a 30s deadline = %v; want DeadlineExceeded", err)
	}
	if _, err := l.Wait(context.Background(), 3); !errors.Is(err, ratekit.ErrExceedsLimit) {
		t.Fatalf("Wait(3) on a limit of 2 = %v; want ErrExceedsLimit", err)
	}
	mock.Add(time.Minute)
	if d, err := l.Wait(context.Background(), 2); err != nil || !d.Allowed {
		t.Fatalf("Wait(2) a minute later = %v, %v", d, err)
	}
}

// TestLogWaitBlocks waits, in a synctest bubble with the real clock, for
// the exact instant the oldest unit expires.
func TestLogWaitBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustLog(t, slidingwindow.Config{Limit: 2, Window: time.Minute})
		start := time.Now()
		l.Take(start, 1)
		time.Sleep(10 * s)
		l.Take(time.Now(), 1)
		d, err := l.Wait(context.Background(), 1)
		if err != nil || !d.Allowed {
			t.Fatalf("Wait = %v, %v", d, err)
		}
		if waited := time.Since(start); waited != time.Minute {
			t.Fatalf("Wait returned %v after the first unit; want exactly when it expired, 1m", waited)
		}
	})
}

func TestLogZeroAllocs(t *testing.T) {
	l := mustLog(t, slidingwindow.Config{Limit: 600, Window: time.Minute})
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(50 * time.Millisecond)
		if d := l.Take(now, 3); d.Allowed {
			l.Refund(now, 1)
		}
		l.Peek(now, 1)
		l.Idle(now)
	})
	if allocs != 0 {
		t.Fatalf("Take/Refund/Peek/Idle allocate %v times per run", allocs)
	}
}

// TestLogCountEveryBoundary checks the count of live units (through
// Remaining) for every number of live units, in logs of many sizes, with
// the ring's head at every position.
func TestLogCountEveryBoundary(t *testing.T) {
	const window = 1000 * s
	for _, limit := range []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 40, 100} {
		for offset := range limit {
			l := mustLog(t, slidingwindow.Config{Limit: limit, Window: window})
			// Move the head: offset units long expired.
			for i := range offset {
				l.Take(t0.Add(time.Duration(i)), 1)
			}
			// Units at 2000s, 2001s, ..., one per second.
			base := t0.Add(2 * window)
			for i := range limit {
				l.Take(base.Add(time.Duration(i)*s), 1)
			}
			// At base+window+k-1s, units 0..k-1 have expired.
			for k := 0; k <= limit; k++ {
				at := base.Add(window + time.Duration(k-1)*s)
				if d := l.Peek(at, 0); d.Remaining != k {
					t.Fatalf("limit %d, head offset %d: %d units expired, Remaining = %d", limit, offset, k, d.Remaining)
				}
			}
		}
	}
}

// TestLogRefundNeverMints checks the Log's refund rule against the truth:
// Takes at random, often stale, times, each refunded at most once, at its
// own now, at a random later point. At every step, the log must count at
// least the units the exact history holds (every recorded unit, minus each
// refunded Take's own): a Refund may give back less than its Take took,
// never more.
func TestLogRefundNeverMints(t *testing.T) {
	const window = 10 * s
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		limit := 1 + rng.IntN(6)
		l := mustLog(t, slidingwindow.Config{Limit: limit, Window: window})
		type take struct {
			at, recorded time.Duration
			n            int
			refunded     bool
		}
		var takes []*take
		clock, now := time.Duration(-1<<62), time.Duration(0)
		for step := range 60 {
			now += time.Duration(rng.IntN(8)) * s / 2
			if rng.IntN(3) == 0 && len(takes) > 0 {
				tk := takes[rng.IntN(len(takes))]
				if !tk.refunded {
					tk.refunded = true
					l.Refund(t0.Add(tk.at), tk.n)
				}
			} else {
				at := now - time.Duration(rng.IntN(3))*s // often stale
				n := 1 + rng.IntN(limit)
				if l.Take(t0.Add(at), n).Allowed {
					clock = max(clock, at)
					takes = append(takes, &take{at: at, recorded: clock, n: n})
				}
			}
			// The log's count at its clock and later must be at least the
			// exact history's.
			for _, later := range []time.Duration{0, s, 5 * s, window - 1, window} {
				at := max(clock, now) + later
				exact := 0
				for _, tk := range takes {
					if !tk.refunded && at-tk.recorded < window {
						exact += tk.n
					}
				}
				if got := limit - l.Peek(t0.Add(at), 0).Remaining; got < min(exact, limit) {
					t.Fatalf("seed %d step %d: at +%v the log counts %d units; the exact history holds %d", seed, step, at, got, exact)
				}
			}
		}
	}
}
