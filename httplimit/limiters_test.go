package httplimit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
)

// window is a test limiter: Limit units per Window, windows aligned to the
// Unix epoch, as fixedwindow's are. It is deliberately simple (a mutex, plain
// fields) so that what the middleware does with it is easy to predict.
type window struct {
	mu     sync.Mutex
	name   string
	limit  int
	window time.Duration
	start  int64 // current window's start, Unix nanoseconds
	used   int
}

var _ ratekit.Limiter = (*window)(nil)

func newWindow(name string, limit int, w time.Duration) *window {
	return &window{name: name, limit: limit, window: w}
}

func (l *window) decide(now time.Time, n int, take bool) ratekit.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := now.UnixNano()
	start := t - t%int64(l.window)
	used := l.used
	if start > l.start {
		used = 0
	}
	end := time.Duration(start + int64(l.window) - t)
	d := ratekit.Decision{Limit: l.limit, Window: l.window, Policy: l.name, Remaining: l.limit - used}
	if used > 0 {
		d.ResetAfter = end
	}
	switch {
	case n < 0 || n > l.limit:
		d.RetryAfter = ratekit.Never
	case used+n > l.limit:
		d.RetryAfter = end
	default:
		d.Allowed = true
		d.Remaining -= n
		if n > 0 {
			d.ResetAfter = end
			if take {
				l.start, l.used = start, used+n
			}
		}
	}
	return d
}

func (l *window) Take(now time.Time, n int) ratekit.Decision { return l.decide(now, n, true) }
func (l *window) Peek(now time.Time, n int) ratekit.Decision { return l.decide(now, n, false) }

func (l *window) Refund(at time.Time, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := at.UnixNano()
	if t-t%int64(l.window) == l.start && n > 0 {
		l.used = max(0, l.used-n)
	}
}

func (l *window) Used() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
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
