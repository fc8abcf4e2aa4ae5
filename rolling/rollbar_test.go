package rolling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/rolling"
)

// TestRollbarWorkedExample reproduces the worked example in Rollbar's rate
// limit documentation: "suppose you have a user-defined limit of 100,000
// per day ... If your token receives 1000 events per second, then the
// system limit would be hit 5.5 seconds into the first minute (for a total
// of 5,500 events); this would repeat for each of the next ~19 minutes, for
// a total of 100,000 events, at which point the user-defined limit would be
// hit."
//
// Which system limit gives those numbers: at 1000 events/s, "hit 5.5 s into
// the minute for a total of 5,500" means it admits exactly 5,500 in a
// minute, all at once and nothing more until the minute is over. That is a
// window of a minute with a limit of 5,500 and no refill inside it (a token
// bucket of 5,500 per minute would go on admitting ~92 events/s after its
// burst, and a window aligned to the clock would cut the first minute short
// unless the first event fell on :00; t0 is 13:01:07.25). Rollbar's
// counters start at the first occurrence and reset a window later, so it
// is a rolling 5,500 per minute: the first event
// opens [0, 60s), the event at exactly 60s opens [60s, 120s), and so on.
// The user limit is a rolling 100,000 per day, opened by the same first
// event. 100,000 / 5,500 = 18.18: 18 full minutes of 5,500 (99,000), then
// 1,000 events in the 19th minute, when the daily limit binds 1 s into it
// (the docs' "~19 minutes").
//
// Both limits apply through TakeAll, all or none: an event the system limit
// refuses must not use up the daily quota (else the daily limit would bind
// within two minutes, at 1000 events/s).
func TestRollbarWorkedExample(t *testing.T) {
	// The user limit is asked first, so every event the system limit
	// refuses was first taken from the daily quota and then rolled back by
	// TakeAll: the harder case for all-or-none.
	var systemHits, userHits []time.Duration // when OnLimitReached fired, from the first event
	user := mustNew(t, rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "user",
		OnLimitReached: func(d ratekit.Decision) { userHits = append(userHits, 24*time.Hour-d.RetryAfter) }})
	system := mustNew(t, rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system",
		OnLimitReached: func(d ratekit.Decision) { systemHits = append(systemHits, time.Minute-d.RetryAfter) }})

	const minutes = 20
	perMinute, firstUserDenial := rollbarRun(t, minutes, user, system)
	for m := 0; m < 18; m++ {
		require.Equal(t, 5_500, perMinute[m], "minute %d: the system limit binds 5.5 s in", m)
	}
	require.Equal(t, 1_000, perMinute[18], "minute 18: the daily limit binds 1 s in")
	require.Equal(t, 0, perMinute[19], "minute 19: the daily limit holds")
	total := 0
	for _, n := range perMinute {
		total += n
	}
	require.Equal(t, 100_000, total)
	require.Equal(t, 18*time.Minute+time.Second, firstUserDenial)

	// OnLimitReached: the system limit once per minute, 5.5 s in, for 18
	// minutes; the user limit once, at 18m01s.
	require.Len(t, systemHits, 18)
	for m, at := range systemHits {
		require.Equal(t, 5500*time.Millisecond, at, "system hit in minute %d", m)
	}
	require.Equal(t, []time.Duration{18*time.Minute + time.Second}, userHits,
		"the user limit fires once, 18m01s after the first event")

	// Refused events opened no windows either: the system window of minute
	// 18 closed at 19m, and nothing has reopened it since. The daily window
	// still runs from the first event.
	end := t0.Add(minutes * time.Minute)
	require.True(t, system.Idle(end))
	require.Equal(t, 24*time.Hour-minutes*time.Minute, user.Peek(end, 0).ResetAfter)
	require.Equal(t, 0, user.Peek(end, 0).Remaining)
}

func TestRollbarWorkedExampleSystemFirst(t *testing.T) {
	// The other order: the system limit refuses before the user limit is
	// asked. The same numbers come out; three minutes show it.
	user := mustNew(t, rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "user"})
	system := mustNew(t, rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system"})
	perMinute, _ := rollbarRun(t, 3, system, user)
	require.Equal(t, []int{5_500, 5_500, 5_500}, perMinute)
	require.Equal(t, 100_000-3*5_500, user.Peek(t0.Add(3*time.Minute), 0).Remaining)
}

// rollbarRun sends 1000 events per second for the given minutes, one every
// millisecond from t0, through TakeAll over members. It returns the events
// admitted in each minute and when the user limit first refused one (-1 if
// never), and checks the denials on the way: the system limit's first
// refusal of a minute waits out the minute, and the user limit's the day
// since the first event.
func rollbarRun(t *testing.T, minutes int, members ...ratekit.Limiter) ([]int, time.Duration) {
	t.Helper()
	var user ratekit.Limiter
	for _, m := range members {
		if m.Peek(t0, 0).Policy == "user" {
			user = m
		}
	}
	perMinute := make([]int, minutes)
	firstUserDenial := time.Duration(-1)
	for i := 0; i < minutes*60_000; i++ {
		at := time.Duration(i) * time.Millisecond
		now := t0.Add(at)
		minute, ms := i/60_000, i%60_000
		d := ratekit.TakeAll(now, 1, members...)
		if d.Allowed {
			perMinute[minute]++
			continue
		}
		switch {
		case d.Policy == "system" && ms == 5_500:
			require.Equal(t, 54_500*time.Millisecond, d.RetryAfter, "at %v", at)
		case d.Policy == "user" && firstUserDenial < 0:
			firstUserDenial = at
			require.Equal(t, 24*time.Hour-at, d.RetryAfter, "the daily window opened at the first event")
		}
		if ms == 59_999 {
			// The last event of a minute: every event the system limit
			// refused so far (54,500 a minute) left the daily quota alone.
			admitted := 0
			for _, n := range perMinute {
				admitted += n
			}
			require.Equal(t, max(0, 100_000-admitted), user.Peek(now, 0).Remaining, "minute %d", minute)
		}
	}
	return perMinute, firstUserDenial
}
