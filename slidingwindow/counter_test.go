package slidingwindow_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

// minute0 is the start of a fixed minute window (Counter windows are
// aligned to Unix time).
var minute0 = time.Date(2026, 3, 18, 13, 1, 0, 0, time.UTC)

func TestMaxCounterLimit(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		want   int
	}{
		{0, 0},
		{-1, 0},
		{1, 0},
		{time.Second, 32767},
		{time.Minute, 262143},
		{time.Hour, 2097151},
		{24 * time.Hour, 16777215},
		{slidingwindow.MaxWindow, 1<<29 - 1},
		{slidingwindow.MaxWindow + 1, 0},
	} {
		if got := slidingwindow.MaxCounterLimit(tc.window); got != tc.want {
			t.Errorf("MaxCounterLimit(%v) = %d; want %d", tc.window, got, tc.want)
		}
		if tc.want == 0 {
			continue
		}
		// The largest Limit works at the extremes of time without overflow.
		c := mustCounter(t, slidingwindow.Config{Limit: tc.want, Window: tc.window})
		for _, at := range []time.Time{time.Time{}, t0, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)} {
			if d := c.Take(at, tc.want); !d.Allowed {
				t.Errorf("window %v: Take(%v, Limit) = %v", tc.window, at, d)
			}
			if d := c.Take(at, tc.want); d.Allowed || d.RetryAfter <= 0 || d.RetryAfter == ratekit.Never {
				t.Errorf("window %v: second Take(%v, Limit) = %v; want a finite wait", tc.window, at, d)
			}
		}
	}
}

// TestCounterScript walks a 10-per-minute Counter through the weighting of
// the previous window, exact waits, a stale time and refunds.
func TestCounterScript(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 10, Window: time.Minute})
	conformance.RunScript(t, c, minute0, []conformance.Step{
		take(30*s, 10, true, 0, 0, 90*s),
		// Next window, at its start: the previous window weighs 10.
		// One unit passes when 10·(60s-e)/60s <= 9: at e = 6s.
		take(60*s, 1, false, 0, 6*s, 60*s),
		peek(66*s-1, 1, false, 0, 1, 54*s+1),
		peek(66*s, 1, true, 0, 0, 114*s),
		// Half way, the previous window weighs 5.
		take(90*s, 5, true, 0, 0, 90*s),
		// 5 + 10·(60s-e)/60s <= 9 at e = 36s.
		take(90*s, 1, false, 0, 6*s, 90*s),
		// A stale time, in the previous window, is judged at the start
		// of the current one, where the previous window weighs all 10.
		take(30*s, 1, false, 0, 66*s, 150*s),
		// Refunds: the 5 in this window, and 4 of the previous window's.
		refund(90*s, 5),
		refund(30*s, 4),
		peek(90*s, 3, true, 4, 0, 90*s),
		take(120*s, 10, true, 0, 0, 120*s),
		// Full window: the next one admits one when 10·(60s-e)/60s <= 9.
		take(179*s, 1, false, 0, 7*s, 61*s),
		// All 10 only in the window after next, where nothing counts.
		take(179*s, 10, false, 0, 61*s, 61*s),
		take(240*s, 10, true, 0, 0, 120*s),
	})
}

// TestCounterErrorBound drives the Counter's worst case: the previous
// window's Limit units all at its last nanosecond, then one unit whenever
// the Counter admits it. It admits 2·Limit-1 units in less than one Window,
// the bound its documentation states, and no more.
func TestCounterErrorBound(t *testing.T) {
	for _, limit := range []int{1, 2, 10, 25, 600} {
		c := mustCounter(t, slidingwindow.Config{Limit: limit, Window: time.Minute})
		first := minute0.Add(time.Minute - 1)
		if d := c.Take(first, limit); !d.Allowed {
			t.Fatalf("limit %d: Take(Limit) on a fresh Counter = %v", limit, d)
		}
		admitted, now := limit, first
		for {
			d := c.Take(now, 1)
			if d.Allowed {
				admitted++
				continue
			}
			if now = now.Add(d.RetryAfter); now.Sub(first) >= time.Minute {
				break
			}
		}
		if admitted != 2*limit-1 {
			t.Errorf("limit %d: admitted %d in one Window from the worst start; want 2·Limit-1 = %d", limit, admitted, 2*limit-1)
		}
	}
}

// traffic is a stream of request instants, in order.
type traffic struct {
	name  string
	times []time.Time
}

// trafficShapes returns an hour of light, steady, bursty and on/off requests
// against a limit of limit per window, from a fixed seed.
func trafficShapes(limit int, window time.Duration) []traffic {
	rng := rand.New(rand.NewPCG(6, 600))
	end := minute0.Add(60 * window)
	exp := func(mean time.Duration) time.Duration { return time.Duration(rng.ExpFloat64() * float64(mean)) }

	var light, steady, bursty, onoff []time.Time
	// Light: Poisson arrivals at 0.9 times the limit, over it only by chance.
	for at := minute0; at.Before(end); at = at.Add(exp(window * 10 / time.Duration(9*limit))) {
		light = append(light, at)
	}
	// Steady: Poisson arrivals at 1.5 times the limit.
	for at := minute0; at.Before(end); at = at.Add(exp(window * 2 / time.Duration(3*limit))) {
		steady = append(steady, at)
	}
	// Bursty: bursts of between Limit/2 and 2·Limit requests within a
	// second, starting every half Window on average.
	for at := minute0; at.Before(end); at = at.Add(exp(window / 2)) {
		size := limit/2 + rng.IntN(3*limit/2+1)
		for i := range size {
			bursty = append(bursty, at.Add(time.Duration(i)*time.Second/time.Duration(size)))
		}
	}
	// On/off: 4 times the limit for a third of a Window, then silence for
	// a Window, a period not aligned to the fixed windows.
	on, period := window/3, window*4/3
	step := window / time.Duration(4*limit)
	for start := minute0.Add(window / 7); start.Before(end); start = start.Add(period) {
		for at := start; at.Before(start.Add(on)); at = at.Add(step) {
			onoff = append(onoff, at)
		}
	}
	return []traffic{{"light", light}, {"steady", steady}, {"bursty", bursty}, {"on/off", onoff}}
}

// maxInWindow returns the most of the sorted instants in any half-open
// interval [a, a+window).
func maxInWindow(times []time.Time, window time.Duration) int {
	most, lo := 0, 0
	for hi, t := range times {
		for t.Sub(times[lo]) >= window {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// TestCounterError offers the same traffic to an exact Log and a Counter
// and measures the Counter's error three ways:
//   - the most it admits in any interval of length Window (asserted at most
//     2·Limit-1; the Log's is asserted at most Limit);
//   - how often its decision is wrong by its own history, as Cloudflare
//     measured it: it admits a request although Limit units it admitted
//     count in the last Window, or denies one although fewer than Limit do;
//   - how far its estimate is from the true count of the units it admitted
//     in the last Window, in percent of Limit.
func TestCounterError(t *testing.T) {
	const limit, window = 600, time.Minute
	cfg := slidingwindow.Config{Limit: limit, Window: window}
	t.Logf("%-7s %8s %8s %8s %10s %9s %9s %10s %9s", "traffic", "requests", "log", "counter",
		"max/Window", "over", "under", "mean |err|", "max err")
	for _, tr := range trafficShapes(limit, window) {
		l, c := mustLog(t, cfg), mustCounter(t, cfg)
		var byLog, byCounter []time.Time
		over, under, sumErr, maxErr, lo := 0, 0, 0, 0, 0
		for _, at := range tr.times {
			for lo < len(byCounter) && at.Sub(byCounter[lo]) >= window {
				lo++
			}
			// The Counter's estimate, as Remaining shows it, against the
			// units it admitted in (at-Window, at].
			exact := len(byCounter) - lo
			err := limit - c.Peek(at, 0).Remaining - exact
			sumErr += max(err, -err)
			if max(err, -err) > max(maxErr, -maxErr) {
				maxErr = err
			}
			if l.Take(at, 1).Allowed {
				byLog = append(byLog, at)
			}
			ok := c.Take(at, 1).Allowed
			if ok {
				byCounter = append(byCounter, at)
			}
			if ok && exact >= limit {
				over++
			}
			if !ok && exact < limit {
				under++
			}
		}
		logMax, counterMax := maxInWindow(byLog, window), maxInWindow(byCounter, window)
		if logMax > limit {
			t.Errorf("%s: the Log admitted %d in one Window; limit %d", tr.name, logMax, limit)
		}
		if counterMax > 2*limit-1 {
			t.Errorf("%s: the Counter admitted %d in one Window; its bound is %d", tr.name, counterMax, 2*limit-1)
		}
		pct := func(n int) float64 { return 100 * float64(n) / float64(len(tr.times)) }
		t.Logf("%-7s %8d %8d %8d %9.2fL %8.2f%% %8.2f%% %9.2f%% %8.1f%%", tr.name, len(tr.times), len(byLog),
			len(byCounter), float64(counterMax)/limit, pct(over), pct(under),
			100*float64(sumErr)/float64(len(tr.times))/limit, 100*float64(maxErr)/limit)
	}
}

func TestCounterIdle(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 3, Window: time.Minute})
	if !c.Idle(minute0) {
		t.Fatalf("a fresh Counter is not Idle")
	}
	c.Take(minute0.Add(30*s), 1)
	for _, tc := range []struct {
		at   time.Duration
		idle bool
	}{{30 * s, false}, {90 * s, false}, {120*s - 1, false}, {120 * s, true}, {10 * s, false}} {
		if got := c.Idle(minute0.Add(tc.at)); got != tc.idle {
			t.Errorf("Idle(+%v) = %v; want %v", tc.at, got, tc.idle)
		}
	}
	// Refunding empties the window, but a time before it is still stale.
	c.Refund(minute0.Add(30*s), 1)
	if !c.Idle(minute0.Add(30*s)) || c.Idle(minute0.Add(-s)) {
		t.Errorf("after the refund, Idle(+30s), Idle(-1s) = %v, %v; want true, false",
			c.Idle(minute0.Add(30*s)), c.Idle(minute0.Add(-s)))
	}
}

func TestCounterRefundNeverMints(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 4, Window: time.Minute})
	c.Refund(minute0, 4) // nothing taken
	c.Take(minute0.Add(10*s), 2)
	c.Refund(minute0.Add(70*s), 2)  // a window with nothing in it
	c.Refund(minute0.Add(-90*s), 2) // a window long gone
	if d := c.Peek(minute0.Add(10*s), 3); d.Allowed || d.Remaining != 2 {
		t.Fatalf("after bogus refunds, Peek(3) = %v; want denied with 2 left", d)
	}
	c.Refund(minute0.Add(20*s), 5) // more than was taken
	if d := c.Peek(minute0.Add(10*s), 4); !d.Allowed {
		t.Fatalf("after refunding all, Peek(4) = %v", d)
	}
	if got := drainAt(c, minute0.Add(10*s), 10); got != 4 {
		t.Fatalf("after refunding more than taken, drained %d; want 4", got)
	}
}

func TestCounterReconfigure(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 10, Window: time.Minute, Name: "a"})
	c.Take(minute0.Add(10*s), 8)
	c.Take(minute0.Add(70*s), 3)
	// A smaller limit keeps the counts: the current window is over-full.
	if err := c.Reconfigure(slidingwindow.Config{Limit: 3, Window: time.Minute, Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if d := c.Peek(minute0.Add(70*s), 0); d.Remaining != 0 || d.Limit != 3 || d.Policy != "b" {
		t.Fatalf("after shrinking to 3, Peek(0) = %v", d)
	}
	// The next window: the previous one (3 units) weighs 3·(60-e)/60.
	if d := c.Peek(minute0.Add(140*s), 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after shrinking to 3, Peek(1) at 140s = %v; want allowed, 0 left", d)
	}
	// A new window length: the 3+8 units count in the new window that
	// holds the end of the old one, [90s, 120s) for a 30s window.
	if err := c.Reconfigure(slidingwindow.Config{Limit: 10, Window: 30 * s}); err != nil {
		t.Fatal(err)
	}
	if d := c.Peek(minute0.Add(100*s), 0); d.Remaining != 0 {
		t.Fatalf("after a 30s window, Peek(0) at 100s = %v; want 0 left (11 counted)", d)
	}
	if err := c.Reconfigure(slidingwindow.Config{Limit: 15, Window: 30 * s}); err != nil {
		t.Fatal(err)
	}
	if d := c.Peek(minute0.Add(100*s), 0); d.Remaining != 4 {
		t.Fatalf("Limit 15, Peek(0) at 100s = %v; want 4 left (11 counted)", d)
	}
	if d := c.Peek(minute0.Add(150*s), 10); !d.Allowed {
		t.Fatalf("after a 30s window, Peek(10) two windows on = %v", d)
	}
	before := c.Peek(minute0.Add(100*s), 1)
	for _, bad := range []slidingwindow.Config{{Limit: 0, Window: s}, {Limit: 1 << 20, Window: s}} {
		if err := c.Reconfigure(bad); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Fatalf("Reconfigure(%+v) = %v; want ErrInvalidConfig", bad, err)
		}
	}
	if after := c.Peek(minute0.Add(100*s), 1); after != before {
		t.Fatalf("a rejected Reconfigure changed state: %v, then %v", before, after)
	}
}

// counterState builds a MarshalBinary payload by hand.
func counterState(window time.Duration, start int64, cur, prev uint64) []byte {
	b := []byte{'r', 'k', 5, 1}
	b = binary.AppendUvarint(b, uint64(window))
	b = binary.AppendVarint(b, start)
	b = binary.AppendUvarint(b, cur)
	return binary.AppendUvarint(b, prev)
}

func TestCounterUnmarshal(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 10, Window: time.Minute})
	c.Take(minute0, 1)
	before := c.Peek(minute0, 1)
	start := minute0.UnixNano()
	far := time.Now().Add(100 * 365 * 24 * time.Hour).Truncate(time.Minute).UnixNano()
	for name, b := range map[string][]byte{
		"other misaligned":  counterState(time.Second, start+1, 1, 0),
		"zero window":       counterState(0, start, 1, 0),
		"other over max":    counterState(time.Second, start, uint64(slidingwindow.MaxCounterLimit(time.Second))+1, 0),
		"count over max":    counterState(time.Minute, start, uint64(slidingwindow.MaxCounterLimit(time.Minute))+1, 0),
		"prev over max":     counterState(time.Minute, start, 0, 1<<40),
		"misaligned":        counterState(time.Minute, start+1, 1, 0),
		"window in 100 yrs": counterState(time.Minute, far, 1, 0),
	} {
		if err := c.UnmarshalBinary(b); !errors.Is(err, ratekit.ErrInvalidState) {
			t.Errorf("UnmarshalBinary(%s) = %v; want ErrInvalidState", name, err)
		}
		if after := c.Peek(minute0, 1); after != before {
			t.Fatalf("a rejected UnmarshalBinary(%s) changed state: %v, then %v", name, before, after)
		}
	}
	// A count over the Limit is a state saved before Reconfigure lowered
	// it: restored whole, over-full.
	if err := c.UnmarshalBinary(counterState(time.Minute, start, 11, 0)); err != nil {
		t.Fatalf("UnmarshalBinary(11 units, Limit 10): %v", err)
	}
	if d := c.Peek(minute0, 1); d.Allowed || d.Remaining != 0 {
		t.Fatalf("after restoring 11 units into a Limit of 10, Peek(1) = %v; want denied", d)
	}
	if err := c.UnmarshalBinary(counterState(time.Minute, start, 7, 2)); err != nil {
		t.Fatal(err)
	}
	if d := c.Peek(minute0.Add(30*s), 2); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after restoring 7 and 2, Peek(2) half way = %v; want allowed, 0 left", d)
	}
	ancient := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	if err := c.UnmarshalBinary(counterState(time.Minute, ancient, 10, 10)); err != nil {
		t.Fatal(err)
	}
	if d := c.Peek(minute0, 10); !d.Allowed {
		t.Fatalf("after restoring an ancient state, Peek(10) = %v", d)
	}
}

func TestCounterAllowAndWait(t *testing.T) {
	mock := clock.NewMock()
	mock.Set(minute0)
	c := mustCounter(t, slidingwindow.Config{Limit: 2, Window: time.Minute, Clock: mock})
	if !c.Allow() || !c.AllowN(1) || c.Allow() {
		t.Fatalf("Allow, AllowN(1), Allow on a 2-per-minute Counter: want true, true, false")
	}
	if _, err := c.Wait(context.Background(), 3); !errors.Is(err, ratekit.ErrExceedsLimit) {
		t.Fatalf("Wait(3) on a limit of 2 = %v; want ErrExceedsLimit", err)
	}
	mock.Add(2 * time.Minute)
	if d, err := c.Wait(context.Background(), 2); err != nil || !d.Allowed {
		t.Fatalf("Wait(2) two windows later = %v, %v", d, err)
	}
}

func TestCounterZeroAllocs(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 600, Window: time.Minute})
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(50 * time.Millisecond)
		if d := c.Take(now, 3); d.Allowed {
			c.Refund(now, 1)
		}
		c.Peek(now, 1)
		c.Idle(now)
	})
	if allocs != 0 {
		t.Fatalf("Take/Refund/Peek/Idle allocate %v times per run", allocs)
	}
}

// TestCounterConcurrentReconfigure races every method against Reconfigures
// that change the word's layout (Limit 4 and 300 need 3 and 9 bits a count):
// a caller that decoded a retired word must start again on the new state.
func TestCounterConcurrentReconfigure(t *testing.T) {
	c := mustCounter(t, slidingwindow.Config{Limit: 4, Window: time.Minute})
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
				at := minute0.Add(time.Duration(i%3) * time.Millisecond)
				if g == 3 {
					if _, err := c.MarshalBinary(); err != nil {
						t.Error(err)
					}
					c.Idle(at)
					continue
				}
				if d := c.Take(at, 1+g%2); d.Allowed && i%2 == 0 {
					c.Refund(at, 1+g%2)
				}
				c.Peek(at, 1)
			}
		}()
	}
	for i := range 300 {
		if err := c.Reconfigure(slidingwindow.Config{Limit: 4 + 296*(i%2), Window: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	at := minute0.Add(2 * time.Millisecond)
	if left, got := c.Peek(at, 0).Remaining, drainAt(c, at, 1000); got != left {
		t.Fatalf("Peek said %d remain; drained %d", left, got)
	}
}
