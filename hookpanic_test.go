package ratekit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestTakeAllHookPanic: an OnLimitReached that panics inside TakeAll (on
// the joint path, which leaves the hook's denial to the general one, and
// on the general path), AllOf's Take and TakeEach reaches the caller, and
// leaves every member as it was: none locked (a lock left held would make
// the calls after it wait forever), and the units the members before the
// refusing one took given back, as a denial gives them back, so the
// denied call counts against none of them.
func TestTakeAllHookPanic(t *testing.T) {
	boom := func(ratekit.Decision) { panic("hook") }
	hooked := []func(t *testing.T) ratekit.Limiter{
		func(t *testing.T) ratekit.Limiter {
			l, err := fixedwindow.New(fixedwindow.Config{Limit: 2, Window: time.Minute, Name: "fw", OnLimitReached: boom})
			require.NoError(t, err)
			return l
		},
		func(t *testing.T) ratekit.Limiter {
			l, err := rolling.New(rolling.Config{Limit: 2, Window: time.Minute, Name: "rl", OnLimitReached: boom})
			require.NoError(t, err)
			return l
		},
		func(t *testing.T) ratekit.Limiter {
			l, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 2, Window: time.Minute, Name: "sc", OnLimitReached: boom})
			require.NoError(t, err)
			return l
		},
		func(t *testing.T) ratekit.Limiter {
			l, err := slidingwindow.NewLog(slidingwindow.Config{Limit: 2, Window: time.Minute, Name: "log", OnLimitReached: boom})
			require.NoError(t, err)
			return l
		},
	}
	calls := map[string]func(tb, h ratekit.Limiter){
		"TakeAll":        func(tb, h ratekit.Limiter) { ratekit.TakeAll(t0, 1, tb, h) },
		"TakeAllGeneral": func(tb, h ratekit.Limiter) { ratekit.TakeAll(t0, 1, general{tb}, h) },
		"AllOf":          func(tb, h ratekit.Limiter) { ratekit.AllOf(tb, h).Take(t0, 1) },
		"TakeEach": func(tb, h ratekit.Limiter) {
			ratekit.TakeEach(t0, []ratekit.Ask{{Limiter: tb, N: 1}, {Limiter: h, N: 1}})
		},
	}
	for _, newHooked := range hooked {
		for name, call := range calls {
			tb, err := tokenbucket.New(tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 10, Name: "tb"})
			require.NoError(t, err)
			h := newHooked(t)
			require.True(t, h.Take(t0, 2).Allowed)
			panicked := func() (p any) {
				defer func() { p = recover() }()
				call(tb, h)
				return nil
			}()
			require.Equal(t, "hook", panicked, "%s over tb and %s: the hook's panic reaches the caller", name, h.Peek(t0, 0).Policy)
			require.Equal(t, 10, tb.Peek(t0, 0).Remaining,
				"%s over tb and %s, denied by %[2]s, whose hook panicked: tb keeps the unit it admitted", name, h.Peek(t0, 0).Policy)
			require.True(t, tb.Take(t0, 10).Allowed)
			require.False(t, h.Take(t0, 1).Allowed)
			h.Refund(t0, 2)
			require.True(t, h.Take(t0, 2).Allowed)
		}
	}
}
