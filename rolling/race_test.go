package rolling_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
)

// raceRun is the outcome of racing Takes, per window: a window is known by
// its end, which every decision reports exactly (now + ResetAfter for an
// admission, now + RetryAfter for a denial), whatever the caller's now.
type raceRun struct {
	admitted map[time.Time]int64 // units admitted into each window
	denied   map[time.Time]bool  // windows that denied at least once
	events   []raceEvent
}

// raceEvent is one Take: the window it decided on, and when it began and
// returned on a global sequence of ticks.
type raceEvent struct {
	end             time.Time
	begin, returned int64
}

// race runs 8 goroutines that Take n units at the instants of a shared
// clock that advances step per Take, each read then jittered back by up to
// jitter (goroutines read the clock, then race: stale, out-of-order times,
// many of them on either side of a window's end). side, if not nil, runs in
// a ninth goroutine until the takers finish.
func race(t *testing.T, l *rolling.Limiter, perTaker int, step, jitter time.Duration, n int, side func(stop <-chan struct{})) raceRun {
	t.Helper()
	seed := conformance.Seed(t)
	var ticks, seq atomic.Int64
	var mu sync.Mutex
	run := raceRun{admitted: map[time.Time]int64{}, denied: map[time.Time]bool{}}
	stop := make(chan struct{})
	var sideDone sync.WaitGroup
	if side != nil {
		sideDone.Go(func() { side(stop) })
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			admitted := map[time.Time]int64{}
			denied := map[time.Time]bool{}
			events := make([]raceEvent, 0, perTaker)
			for range perTaker {
				now := t0.Add(time.Duration(ticks.Add(1))*step - time.Duration(rng.Int64N(int64(jitter)+1)))
				begin := seq.Add(1)
				d := l.Take(now, n)
				ev := raceEvent{begin: begin, returned: seq.Add(1)}
				if d.Allowed {
					ev.end = now.Add(d.ResetAfter)
					admitted[ev.end] += int64(n)
				} else {
					ev.end = now.Add(d.RetryAfter)
					denied[ev.end] = true
				}
				events = append(events, ev)
			}
			mu.Lock()
			defer mu.Unlock()
			for end, k := range admitted {
				run.admitted[end] += k
			}
			for end := range denied {
				run.denied[end] = true
			}
			run.events = append(run.events, events...)
		})
	}
	wg.Wait()
	close(stop)
	sideDone.Wait()
	return run
}

// check asserts that no window admitted more than limit and that windows
// never overlap: each opens at or after the previous one's end.
func (r raceRun) check(t *testing.T, limit int64, window time.Duration) {
	t.Helper()
	ends := make([]time.Time, 0, len(r.admitted))
	for end, k := range r.admitted {
		if k > limit {
			t.Fatalf("the window ending %v admitted %d; limit %d", end.Sub(t0), k, limit)
		}
		ends = append(ends, end)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	for i := 1; i < len(ends); i++ {
		if start := ends[i].Add(-window); start.Before(ends[i-1]) {
			t.Fatalf("window [%v, %v) overlaps the one ending %v", start.Sub(t0), ends[i].Sub(t0), ends[i-1].Sub(t0))
		}
	}
	if len(ends) < 3 {
		t.Fatalf("only %d windows: the test does not cross window ends", len(ends))
	}
	r.checkOrder(t)
}

// checkOrder asserts that windows follow real time: once a Take has
// returned a decision on a window, no Take that begins afterwards decides on
// an earlier window. This is what sealing guarantees: without it a Take that
// loaded the old window could still add to it after a newer one opened
// (each window would stay within its limit, but the limiter would not be
// linearizable: a sequential limiter would count that Take into the newer
// window).
func (r raceRun) checkOrder(t *testing.T) {
	t.Helper()
	// firstReturn[end]: the earliest return of a Take on the window ending at end.
	firstReturn := map[time.Time]int64{}
	for _, ev := range r.events {
		if f, ok := firstReturn[ev.end]; !ok || ev.returned < f {
			firstReturn[ev.end] = ev.returned
		}
	}
	ends := make([]time.Time, 0, len(firstReturn))
	for end := range firstReturn {
		ends = append(ends, end)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	// laterReturn[end]: the earliest return of a Take on any later window.
	laterReturn := map[time.Time]int64{}
	earliest := int64(math.MaxInt64)
	for i := len(ends) - 1; i >= 0; i-- {
		laterReturn[ends[i]] = earliest
		earliest = min(earliest, firstReturn[ends[i]])
	}
	for _, ev := range r.events {
		if ev.begin > laterReturn[ev.end] {
			t.Fatalf("a Take began (tick %d) after one on a later window returned (tick %d), yet decided on the earlier window ending %v",
				ev.begin, laterReturn[ev.end], ev.end.Sub(t0))
		}
	}
}

func TestRaceAtWindowEnds(t *testing.T) {
	// 8 goroutines, 50 per 100ms, 16,000 Takes 100µs apart with up to 3ms
	// of staleness: 16 windows, two Takes for every unit admitted, hundreds
	// of them stamped on the other side of a window's end.
	const limit, window = 50, 100 * time.Millisecond
	l := mustNew(t, rolling.Config{Limit: limit, Window: window})
	r := race(t, l, 2000, 100*time.Microsecond, 3*time.Millisecond, 1, nil)
	r.check(t, int64(limit), window)
}

func TestRaceWithCellTurnover(t *testing.T) {
	// At Limit 2^40 the count takes 41 bits and a cell reaches 2^21 ns
	// (2.1 ms) past its base, the start of its first window. Windows of 3 ms
	// all open in a new cell, so the seal-and-publish path races at every
	// window end. Windows 20µs shorter than the reach end just inside it:
	// racing Takes stamped on either side of the reach open the next window
	// in place and in a new cell at once, which only the seal serializes.
	// Windows of 1 ms mix the paths too. Meanwhile Reconfigure (to the same
	// limits under another Name, so that each call replaces the block:
	// one to the Config in force is a CAS in place) replaces the cell as
	// fast as it can, and readers marshal.
	// The last case races a Template's limiter (24-byte cells, a first
	// cell inline) whose sibling has taken all it can.
	const reach = 1 << 21
	for _, tc := range []struct {
		window   time.Duration
		template bool
	}{{time.Millisecond, false}, {reach - 20*time.Microsecond, false}, {3 * time.Millisecond, false}, {3 * time.Millisecond, true}} {
		window := tc.window
		t.Run(fmt.Sprintf("%v/template=%v", window, tc.template), func(t *testing.T) {
			limit := wide(1 << 40)
			cfg := rolling.Config{Limit: limit, Window: window}
			l := mustNew(t, cfg)
			if tc.template {
				tmpl := mustTemplate(t, cfg)
				require.True(t, tmpl.New().Take(t0, limit).Allowed)
				l = tmpl.New()
			}
			// The reach-edge case needs many windows to catch a missing seal.
			perTaker := 2000
			if window == reach-20*time.Microsecond {
				perTaker = 10000
			}
			renamed := cfg
			renamed.Name = "renamed"
			r := race(t, l, perTaker, 3*time.Microsecond, 50*time.Microsecond, limit/4, func(stop <-chan struct{}) {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					c := cfg
					if i%2 == 1 {
						c = renamed
					}
					if err := l.Reconfigure(c); err != nil {
						panic(err)
					}
					if _, err := l.MarshalBinary(); err != nil {
						panic(err)
					}
					l.Idle(t0)
				}
			})
			r.check(t, int64(limit), window)
		})
	}
}

func TestRaceOnLimitReachedOncePerWindow(t *testing.T) {
	// 8 goroutines racing across ~40 window ends: the hook fires exactly
	// once for every window that denied anything, never twice.
	var calls atomic.Int64
	const limit, window = 20, time.Millisecond
	l := mustNew(t, rolling.Config{Limit: limit, Window: window,
		OnLimitReached: func(d ratekit.Decision) {
			if d.Allowed || d.RetryAfter <= 0 {
				panic("OnLimitReached with a decision that is not a denial")
			}
			calls.Add(1)
		}})
	r := race(t, l, 1000, 5*time.Microsecond, 20*time.Microsecond, 1, nil)
	r.check(t, int64(limit), window)
	if got, want := calls.Load(), int64(len(r.denied)); got != want {
		t.Fatalf("OnLimitReached called %d times; %d windows denied", got, want)
	}
}

func TestRaceOnLimitReachedAtOneInstant(t *testing.T) {
	// The case: 8 goroutines drain one window at one instant, and
	// race to be its first denial. Exactly one call, every time.
	for rep := range 50 {
		var calls atomic.Int64
		l := mustNew(t, rolling.Config{Limit: 10, Window: time.Minute,
			OnLimitReached: func(ratekit.Decision) { calls.Add(1) }})
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 5 {
					if l.Take(t0, 1).Allowed {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if admitted.Load() != 10 || calls.Load() != 1 {
			t.Fatalf("rep %d: admitted %d and notified %d times; want 10 and 1", rep, admitted.Load(), calls.Load())
		}
	}
}
