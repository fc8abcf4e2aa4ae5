package persist_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// A token's daily quota (Rollbar's user-defined rate limit, 100,000
// occurrences a day) survives restarts. Each run opens the store, attaches
// the limiter, which restores its saved state, takes, and closes the store,
// which saves the state. The window opened by the first run is still open
// an hour later, in another process; the next day it has closed, although
// no process was running when it did.
func Example() {
	dir, err := os.MkdirTemp("", "ratekit-persist-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "quota.db")

	run := func(now time.Time, n int) {
		store, err := persist.Open(path, persist.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer store.Close() // the last checkpoint
		daily, err := rolling.New(rolling.Config{Limit: 100_000, Window: 24 * time.Hour, Name: "token-daily"})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := store.Attach("token-daily", daily); err != nil {
			fmt.Println(err)
			return
		}
		d := daily.Take(now, n)
		fmt.Printf("%s take %6d: allowed=%-5v remaining=%6d resets in %v\n",
			now.Format("Jan 2 15:04"), n, d.Allowed, d.Remaining, d.ResetAfter)
	}
	start := time.Date(2026, 3, 18, 9, 0, 0, 0, time.UTC)
	run(start, 60_000)
	run(start.Add(time.Hour), 50_000) // a restart later: 40,000 left
	run(start.Add(time.Hour), 40_000)
	run(start.Add(25*time.Hour), 1) // the next day
	// Output:
	// Mar 18 09:00 take  60000: allowed=true  remaining= 40000 resets in 24h0m0s
	// Mar 18 10:00 take  50000: allowed=false remaining= 40000 resets in 23h0m0s
	// Mar 18 10:00 take  40000: allowed=true  remaining=     0 resets in 23h0m0s
	// Mar 19 10:00 take      1: allowed=true  remaining= 99999 resets in 24h0m0s
}
