package persist_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ratekit/ratekit"
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

// Per-org monthly quotas, in a keyed set, survive restarts: each org may
// send 10,000 messages in the 30 days from its first. Attaching the set
// restores every org's window; orgs first seen after the restart start
// fresh.
func Example_keyed() {
	dir, err := os.MkdirTemp("", "ratekit-persist-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "quota.db")

	monthly := func(string) *rolling.Limiter {
		l, err := rolling.New(rolling.Config{Limit: 10_000, Window: 30 * 24 * time.Hour, Name: "monthly"})
		if err != nil {
			panic(err)
		}
		return l
	}
	type send struct {
		org string
		n   int
	}
	run := func(now time.Time, sends ...send) {
		store, err := persist.Open(path, persist.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		defer store.Close()
		orgs := ratekit.NewKeyed(monthly, ratekit.KeyedConfig{MaxKeys: 1_000_000})
		if err := persist.AttachKeyed(store, "orgs", orgs, persist.StringKey{}); err != nil {
			fmt.Println(err)
			return
		}
		for _, s := range sends {
			d := orgs.Take(now, s.org, s.n)
			fmt.Printf("%s %-6s send %5d: allowed=%-5v remaining=%5d\n",
				now.Format("Jan 2"), s.org, s.n, d.Allowed, d.Remaining)
		}
	}
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	run(start, send{"acme", 9_000}, send{"globex", 200})
	run(start.Add(3*24*time.Hour), send{"acme", 2_000}, send{"globex", 200}, send{"initech", 50})
	run(start.Add(31*24*time.Hour), send{"acme", 2_000})
	// Output:
	// Mar 1 acme   send  9000: allowed=true  remaining= 1000
	// Mar 1 globex send   200: allowed=true  remaining= 9800
	// Mar 4 acme   send  2000: allowed=false remaining= 1000
	// Mar 4 globex send   200: allowed=true  remaining= 9600
	// Mar 4 initech send    50: allowed=true  remaining= 9950
	// Apr 1 acme   send  2000: allowed=true  remaining= 8000
}
