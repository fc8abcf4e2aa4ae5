package persist_test

import (
	"flag"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// t0 is the instant the tests start at.
var t0 = time.Date(2026, 3, 18, 13, 1, 7, 250_000_000, time.UTC)

// set is what the tests need of a keyed set: a *ratekit.Keyed.
type set[K comparable, L persist.Limiter] interface {
	persist.Keyed[K, L]
	Take(now time.Time, key K, n int) ratekit.Decision
	Delete(key K) bool
	Len() int
}

// newSet returns a ratekit.Keyed of the limiters newL makes.
func newSet[K comparable, L persist.Limiter](newL func(K) L) set[K, L] {
	return ratekit.NewKeyed(newL, ratekit.KeyedConfig{})
}

// mustRolling returns a rolling limiter of limit per window.
func mustRolling(tb testing.TB, limit int, window time.Duration) *rolling.Limiter {
	tb.Helper()
	l, err := rolling.New(rolling.Config{Limit: limit, Window: window, Name: "quota"})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// rollingSet returns a keyed set of rolling limiters of limit per window.
func rollingSet(tb testing.TB, limit int, window time.Duration) set[string, *rolling.Limiter] {
	return newSet(func(string) *rolling.Limiter { return mustRolling(tb, limit, window) })
}

// used returns how many units l has taken at now.
func used(l ratekit.Limiter, now time.Time) int {
	d := l.Peek(now, 0)
	return d.Limit - d.Remaining
}

// tempPath returns a store path in a fresh temporary directory.
func tempPath(tb testing.TB) string {
	return filepath.Join(tb.TempDir(), "ratekit.db")
}

// mustOpen opens a store at path with periodic checkpoints off, and closes
// it when the test ends. It skips fsync (the tests' crashes are process
// crashes, which lose nothing committed without it), since fsync on a
// shared machine's disk costs milliseconds: TestDurable covers it.
func mustOpen(tb testing.TB, path string, opts persist.Options) *persist.Store {
	tb.Helper()
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = -1
	}
	opts.NoSync = true
	s, err := persist.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// mustClose closes s.
func mustClose(tb testing.TB, s *persist.Store) {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

type netipAddr = netip.Addr

func mustAddr(tb testing.TB, s string) netip.Addr {
	tb.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests (0: a random one, logged)")

// testSeed returns the -seed flag, or a random seed, and logs it.
func testSeed(tb testing.TB) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	tb.Logf("seed %d (rerun with -seed %[1]d)", seed)
	return seed
}
