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
// burst). Rollbar's counters start at the first occurrence and reset a
// window later, so it is a rolling 5,500 per minute: the first event
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
	for _, order := range []string{"user first", "system first"} {
		t.Run(order, func(t *testing.T) {
			var systemHits, userHits []time.Duration // when OnLimitReached fired, from the first event
			start := t0
			user := mustNew(t, rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "user",
				OnLimitReached: func(d ratekit.Decision) { userHits = append(userHits, 24*time.Hour-d.RetryAfter) }})
			system := mustNew(t, rolling.Config{Limit: 5_500, Window: time.Minute, Name: "system",
				OnLimitReached: func(d ratekit.Decision) { systemHits = append(systemHits, time.Minute-d.RetryAfter) }})
			members := []ratekit.Limiter{user, system}
			if order == "system first" {
				// Asked first, the system limit denies before the user limit
				// takes anything. Asked second (above), the user limit takes,
				// and TakeAll refunds it: the harder case for all-or-none.
				members = []ratekit.Limiter{system, user}
			}

			const minutes = 20
			perMinute := make([]int, minutes)
			firstUserDenial := time.Duration(-1)
			for i := 0; i < minutes*60_000; i++ { // 1000 events/s: one per millisecond
				at := time.Duration(i) * time.Millisecond
				now := start.Add(at)
				minute := i / 60_000
				d := ratekit.TakeAll(now, 1, members...)
				if d.Allowed {
					perMinute[minute]++
					continue
				}
				switch {
				case d.Policy == "system" && i%60_000 == 5_500:
					// The first refusal of each minute, 5.5 s into it, waits
					// out the rest of the system window.
					require.Equal(t, 54_500*time.Millisecond, d.RetryAfter, "at %v", at)
				case d.Policy == "user" && firstUserDenial < 0:
					firstUserDenial = at
					require.Equal(t, 24*time.Hour-at, d.RetryAfter, "the daily window opened at the first event")
				}
				if minute == 17 && i%60_000 == 59_999 {
					// The last event of minute 17: 99,000 admitted, and
					// 18 × 54,500 = 981,000 refused by the system limit. None
					// of them used the daily quota.
					require.Equal(t, 1_000, user.Peek(now, 0).Remaining)
				}
			}

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

			// OnLimitReached: the system limit once per minute, 5.5 s in,
			// for 18 minutes; the user limit once, at 18m01s.
			require.Len(t, systemHits, 18)
			for m, at := range systemHits {
				require.Equal(t, 5500*time.Millisecond, at, "system hit in minute %d", m)
			}
			require.Equal(t, []time.Duration{18*time.Minute + time.Second}, userHits,
				"the user limit fires once, 18m01s after the first event")

			// Refused events opened no windows either: the system window of
			// minute 18 closed at 19m, and nothing has reopened it since.
			end := start.Add(minutes * time.Minute)
			require.True(t, system.Idle(end))
			require.False(t, user.Idle(end))
			require.Equal(t, 24*time.Hour-minutes*time.Minute, user.Peek(end, 0).ResetAfter)
		})
	}
}
