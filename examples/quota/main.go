// Command quota is ratekit's demo: Rollbar-style quotas on two API tokens,
// kept in a bbolt file so that they survive a restart.
//
// Each token has a user-defined daily quota and a system ceiling per minute,
// both counted as Rollbar counts them: a window opens at the token's first
// event and lasts its length (the rolling package), so the ceiling admits
// its 25 and then nothing until that minute is over. Both apply to every
// event, all or none: an event the system ceiling refuses does not use up
// the daily quota. Run it twice in a row and the
// second run starts where the first stopped:
//
//	go run ./examples/quota
//	go run ./examples/quota
//
// The state is in quota.db next to this file (-db to put it elsewhere;
// delete the file to start afresh).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

func main() {
	db := flag.String("db", defaultDB(), "bbolt file that keeps the quotas between runs")
	events := flag.Int("events", 30, "events each token sends in this run")
	flag.Parse()
	if err := run(os.Stdout, *db, *events, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "quota:", err)
		os.Exit(1)
	}
}

// Quotas of the demo: small, so that a few runs show them binding.
const (
	dailyLimit  = 100 // events per token per day (the user-defined limit)
	systemLimit = 25  // events per token per minute (the system limit)
)

func run(w io.Writer, path string, events int, now time.Time) error {
	store, err := persist.Open(path, persist.Options{LockTimeout: time.Second})
	if err != nil {
		return err
	}
	perDay := rolling.Config{Limit: dailyLimit, Window: 24 * time.Hour, Name: "daily"}
	daily := ratekit.NewKeyed(func(string) *rolling.Limiter { return must(rolling.New(perDay)) },
		ratekit.KeyedConfig{MaxKeys: 10_000})
	perMinute := rolling.Config{Limit: systemLimit, Window: time.Minute, Name: "system"}
	system := ratekit.NewKeyed(func(string) *rolling.Limiter { return must(rolling.New(perMinute)) },
		ratekit.KeyedConfig{MaxKeys: 10_000})

	// Attaching restores what the last run saved; downtime counts as time.
	for name, attach := range map[string]func() error{
		"daily":  func() error { return persist.AttachKeyed(store, "daily", daily, persist.StringKey{}) },
		"system": func() error { return persist.AttachKeyed(store, "system", system, persist.StringKey{}) },
	} {
		if err := attach(); err != nil && !errors.Is(err, persist.ErrSkipped) {
			store.Close()
			return fmt.Errorf("restoring %s: %w", name, err)
		}
	}
	fmt.Fprintf(w, "quotas per token: %d a day and %d a minute, each a window opened by the token's first event\n",
		dailyLimit, systemLimit)
	fmt.Fprintf(w, "state: %s\n\n", path)

	for _, token := range []string{"tok_prod", "tok_staging"} {
		var admitted int
		refusedBy := map[string]int{}
		var last ratekit.Decision
		for i := 0; i < events; i++ {
			at := now.Add(time.Duration(i) * 10 * time.Millisecond)
			last = ratekit.TakeAll(at, 1, system.Get(token), daily.Get(token))
			if last.Allowed {
				admitted++
			} else {
				refusedBy[last.Policy]++
			}
		}
		day := daily.Get(token).Peek(now, 0)
		fmt.Fprintf(w, "%-12s admitted %2d of %d", token, admitted, events)
		for _, p := range []string{"system", "daily"} {
			if refusedBy[p] > 0 {
				fmt.Fprintf(w, ", refused by %s: %d", p, refusedBy[p])
			}
		}
		fmt.Fprintf(w, "\n%-12s daily quota left %d, resets in %v\n", "", day.Remaining, day.ResetAfter.Round(time.Second))
		if !last.Allowed {
			fmt.Fprintf(w, "%-12s last refusal: %s, Retry-After %v\n", "", last.Policy, last.RetryAfter.Round(time.Millisecond))
		}
	}
	// Close writes a last checkpoint: the next run starts from here.
	if err := store.Close(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nsaved. Run it again within a minute of a token's first event: its system window is\n"+
		"still open and admits nothing, because its state survived the restart (a limiter kept\n"+
		"only in memory would admit 25 again). Run it a minute later: a new system window opens,\n"+
		"and the daily quota goes on shrinking.")
	return nil
}

func must[L any](l L, err error) L {
	if err != nil {
		panic(err) // the configs above are valid
	}
	return l
}

// defaultDB is quota.db in this program's source directory when it runs
// from a checkout (go run), else in the working directory.
func defaultDB() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		if dir := filepath.Dir(file); isDir(dir) {
			return filepath.Join(dir, "quota.db")
		}
	}
	return "quota.db"
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
