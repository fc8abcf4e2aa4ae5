package httplimit_test

import (
	"sync"
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

// keyed is a minimal keyed store for tests: one limiter per key, made on
// first use.
type keyed[L ratekit.Limiter] struct {
	mu  sync.Mutex
	m   map[string]L
	new func(key string) L
}

func newKeyed[L ratekit.Limiter](fn func(key string) L) *keyed[L] {
	return &keyed[L]{m: make(map[string]L), new: fn}
}

func (k *keyed[L]) Get(key string) L {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.m[key]
	if !ok {
		l = k.new(key)
		k.m[key] = l
	}
	return l
}

func (k *keyed[L]) Keys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var keys []string
	for key := range k.m {
		keys = append(keys, key)
	}
	return keys
}
