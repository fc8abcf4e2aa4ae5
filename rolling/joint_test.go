package rolling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/rolling"
)

// TestLockedWordIsNotHelped: while a joint decision holds a rolling
// limiter's word (cell.Locked, which has the seal bit set), Take, Refund,
// Peek, Idle and Reconfigure wait for it, and none of them reads it as a
// sealed block's final word and publishes a successor from it (which would
// lose the locked window: a full window read as an empty one). Each
// operation runs on its own goroutine and must reach the wait
// (cell.LockedHook) before it returns.
func TestLockedWordIsNotHelped(t *testing.T) {
	cfg := rolling.Config{Limit: 2, Window: time.Minute, Name: "user"}
	at := t0.Add(time.Second)
	for name, c := range map[string]struct {
		op    func(l *rolling.Limiter) ratekit.Decision
		check func(t *testing.T, l *rolling.Limiter, d ratekit.Decision)
	}{
		"Take": {
			op: func(l *rolling.Limiter) ratekit.Decision { return l.Take(at, 1) },
			check: func(t *testing.T, l *rolling.Limiter, d ratekit.Decision) {
				require.False(t, d.Allowed, "the locked window is full")
				require.Equal(t, 59*time.Second, d.RetryAfter)
			},
		},
		"Refund": {
			op: func(l *rolling.Limiter) ratekit.Decision { l.Refund(t0, 1); return ratekit.Decision{} },
			check: func(t *testing.T, l *rolling.Limiter, _ ratekit.Decision) {
				require.Equal(t, 1, l.Peek(at, 0).Remaining, "one unit back into the locked window")
			},
		},
		"Peek": {
			op: func(l *rolling.Limiter) ratekit.Decision { return l.Peek(at, 1) },
			check: func(t *testing.T, l *rolling.Limiter, d ratekit.Decision) {
				require.False(t, d.Allowed)
				require.Equal(t, 0, d.Remaining)
			},
		},
		"Idle": {
			op: func(l *rolling.Limiter) ratekit.Decision { return ratekit.Decision{Allowed: l.Idle(at)} },
			check: func(t *testing.T, l *rolling.Limiter, d ratekit.Decision) {
				require.False(t, d.Allowed, "not idle: a window is open")
			},
		},
		"Reconfigure": {
			op: func(l *rolling.Limiter) ratekit.Decision {
				c := cfg
				c.Limit = 3
				require.NoError(t, l.Reconfigure(c))
				return ratekit.Decision{}
			},
			check: func(t *testing.T, l *rolling.Limiter, _ ratekit.Decision) {
				require.Equal(t, 1, l.Peek(at, 0).Remaining, "the window kept its 2 units under Limit 3")
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			l := mustNew(t, cfg)
			require.True(t, l.Take(t0, 2).Allowed)
			first := rolling.Block(l)
			s, _, _ := l.Joint(l, true, at, cell.Wall(at), 0)
			require.False(t, s.Slow())
			hooked := make(chan struct{}, 1)
			cell.LockedHook = func() {
				select {
				case hooked <- struct{}{}:
				default:
				}
			}
			defer func() { cell.LockedHook = nil }()
			done := make(chan ratekit.Decision, 1)
			go func() { done <- c.op(l) }()
			select {
			case <-hooked:
			case d := <-done:
				s.Release()
				t.Fatalf("%s returned %+v on a locked word without waiting", name, d)
			}
			if name != "Reconfigure" {
				require.Same(t, first, rolling.Block(l), "nothing published a successor of a locked block")
			}
			s.Release()
			d := <-done
			cell.LockedHook = nil
			c.check(t, l, d)
		})
	}
}

// TestUserAndSystemLimitsJoint: Example_userAndSystemLimits, Rollbar's user
// and system limits on one token, goes through TakeAll's joint path (all
// or none, no refund): of its 10,000 TakeAlls only those that open a
// window out of a block's reach (the first of each limiter's, months from
// the epoch its clock gave) leave the joint path, and every other one is
// two Steps decided together. The admissions are the example's.
func TestUserAndSystemLimitsJoint(t *testing.T) {
	user := mustNew(t, rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "user"})
	system := mustNew(t, rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system"})
	start := time.Date(2026, 3, 18, 0, 0, 0, 0, time.UTC)
	stop := rolling.CountJointSteps()
	defer stop()
	admitted := 0
	for i := range 10_000 {
		if ratekit.TakeAll(start.Add(time.Duration(i)*time.Millisecond), 1, user, system).Allowed {
			admitted++
		}
	}
	steps := stop()
	require.Equal(t, 5_500, admitted)
	require.Equal(t, 94_500, user.Peek(start.Add(10*time.Second), 0).Remaining)
	require.GreaterOrEqual(t, steps, int64(2*(10_000-2)), "all but the TakeAlls opening a first window are joint")
}
