package httplimit_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/fixedwindow"
)

// window is the fixed-window limiter of the fixedwindow package: windows
// aligned to Unix time, which make the seed docs' headers (a reset at the
// minute) easy to predict.
type window = fixedwindow.Limiter

func newWindow(name string, limit int, w time.Duration) *window {
	l, err := fixedwindow.New(fixedwindow.Config{Name: name, Limit: limit, Window: w})
	if err != nil {
		panic(err)
	}
	return l
}

// used is how many units l has taken in its current window at now.
func used(l ratekit.Limiter, now time.Time) int {
	d := l.Peek(now, 0)
	return d.Limit - d.Remaining
}

// newConc returns a concurrency limit of the concurrency package.
func newConc(tb testing.TB, limit int) *concurrency.Limiter {
	tb.Helper()
	l, err := concurrency.New(concurrency.Config{Name: "conc", Limit: limit})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// newKeyed returns a ratekit.Keyed of limiters made by fn, without a cap.
func newKeyed[L ratekit.Limiter](fn func(key string) L) *ratekit.Keyed[string, L] {
	return ratekit.NewKeyed(fn, ratekit.KeyedConfig{})
}

// keysOf lists the keys k holds, sorted.
func keysOf[L ratekit.Limiter](k *ratekit.Keyed[string, L]) []string {
	var keys []string
	for key := range k.All() {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}
