package slidingwindow_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// hookedLimiter is a Log or a Counter.
type hookedLimiter interface {
	ratekit.Limiter
	Reconfigure(slidingwindow.Config) error
}

// TestOnLimitReachedRuns walks a Log and a Counter through the runs of
// denials that Config.OnLimitReached defines: a run lasts, however much
// time passes, until a Take is admitted or units are refunded, and a stale
// denial does not start one.
func TestOnLimitReachedRuns(t *testing.T) {
	for _, kind := range []string{"Log", "Counter"} {
		t.Run(kind, func(t *testing.T) {
			calls := 0
			cfg := slidingwindow.Config{Limit: 3, Window: time.Minute, Name: "runs",
				OnLimitReached: func(ratekit.Decision) { calls++ }}
			var l hookedLimiter
			if kind == "Log" {
				l = mustLog(t, cfg)
			} else {
				l = mustCounter(t, cfg)
			}
			at := minute0.Add(10 * time.Second)
			want := func(n int, what string) {
				t.Helper()
				if calls != n {
					t.Fatalf("%s: %d calls; want %d", what, calls, n)
				}
			}
			if !l.Take(at, 3).Allowed {
				t.Fatal("Take(3) on a fresh limiter denied")
			}
			l.Take(at, 1)
			want(1, "the first denial")
			l.Take(at.Add(30*time.Second), 2)
			l.Take(at.Add(55*time.Second), 1)
			want(1, "denials later in the same run")
			l.Take(at.Add(-time.Hour), 1)
			want(1, "a stale denial")
			// A refund ends the run: the next denial is a new one.
			l.Refund(at, 1)
			l.Take(at.Add(55*time.Second), 3)
			want(2, "a denial after a Refund")
			// So does an admission.
			if !l.Take(at.Add(55*time.Second), 1).Allowed {
				t.Fatal("Take(1) after the refund denied")
			}
			l.Take(at.Add(55*time.Second), 1)
			want(3, "a denial after an admission")
			// And Reconfigure.
			if err := l.Reconfigure(cfg); err != nil {
				t.Fatal(err)
			}
			l.Take(at.Add(55*time.Second), 1)
			want(4, "a denial after Reconfigure")
			l.Peek(at.Add(55*time.Second), 1)
			l.Take(at.Add(55*time.Second), 4)
			want(4, "a Peek and a Take of more than the Limit")
		})
	}
}

// TestCounterHookBound: a Counter with OnLimitReached keeps a bit of its
// word for the mark, which halves the Limit of a day's Window and of no
// shorter one tested; NewCounter refuses more, and a Counter reconfigured
// to take a hook keeps its counts (capped at the new field).
func TestCounterHookBound(t *testing.T) {
	hook := func(ratekit.Decision) {}
	for _, tc := range []struct {
		window time.Duration
		want   int
	}{
		{time.Second, 32767},
		{time.Minute, 262143},
		{time.Hour, 2097151},
		{24 * time.Hour, 8388607},
		{30 * 24 * time.Hour, 67108863},
	} {
		if got := slidingwindow.MaxCounterLimitWithHook(tc.window); got != tc.want {
			t.Errorf("MaxCounterLimitWithHook(%v) = %d; want %d", tc.window, got, tc.want)
		}
		cfg := slidingwindow.Config{Limit: tc.want, Window: tc.window, OnLimitReached: hook}
		c := mustCounter(t, cfg)
		if d := c.Take(t0, tc.want); !d.Allowed {
			t.Errorf("%v: Take(Limit) = %v", tc.window, d)
		}
		cfg.Limit++
		if _, err := slidingwindow.NewCounter(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("%v: NewCounter with a hook and Limit %d: %v; want ErrInvalidConfig", tc.window, cfg.Limit, err)
		}
	}
	// A day's Counter at the hookless bound, full, reconfigured to take a
	// hook: still full.
	day := slidingwindow.Config{Limit: slidingwindow.MaxCounterLimit(24 * time.Hour), Window: 24 * time.Hour}
	c := mustCounter(t, day)
	if !c.Take(t0, day.Limit).Allowed {
		t.Fatal("Take(Limit) on a fresh Counter denied")
	}
	calls := 0
	hooked := slidingwindow.Config{Limit: 1000, Window: day.Window, OnLimitReached: func(ratekit.Decision) { calls++ }}
	if err := c.Reconfigure(hooked); err != nil {
		t.Fatal(err)
	}
	if d := c.Take(t0, 1); d.Allowed || calls != 1 {
		t.Fatalf("after Reconfigure to a hook: Take(1) = %v with %d calls; want denied, one call", d, calls)
	}
}

// TestOnLimitReachedNotForZero: a Take of nothing denied in a window left
// over-full by a Reconfigure that lowered the Limit is not a denial
// because the limit is reached: it neither calls the hook nor marks the
// state, so the next real denial calls it.
func TestOnLimitReachedNotForZero(t *testing.T) {
	for _, kind := range []string{"Log", "Counter"} {
		t.Run(kind, func(t *testing.T) {
			calls := 0
			cfg := slidingwindow.Config{Limit: 4, Window: time.Minute,
				OnLimitReached: func(ratekit.Decision) { calls++ }}
			var l hookedLimiter
			if kind == "Log" {
				l = mustLog(t, cfg)
			} else {
				l = mustCounter(t, cfg)
			}
			at := minute0.Add(10 * time.Second)
			if !l.Take(at, 4).Allowed {
				t.Fatal("Take(4) on a fresh limiter denied")
			}
			cfg.Limit = 2
			if err := l.Reconfigure(cfg); err != nil {
				t.Fatal(err)
			}
			d := l.Take(at, 0)
			if calls != 0 {
				t.Fatalf("Take(0) in an over-full window (%v) called OnLimitReached", d)
			}
			if d := l.Take(at, 1); d.Allowed || calls != 1 {
				t.Fatalf("Take(1) after it = %v with %d calls; want denied, one call", d, calls)
			}
		})
	}
}
