package rolling_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/rolling"
)

// BenchmarkTake measures Take at explicit times, one goroutine. Each case
// says which path it takes.
func BenchmarkTake(b *testing.B) {
	for _, bc := range []struct {
		name  string
		cfg   rolling.Config
		step  time.Duration // how far time moves per Take
		drain bool          // fill the window first: every Take is denied
	}{
		// Adds to an open window that never fills.
		{name: "allow", cfg: rolling.Config{Limit: wide(rolling.MaxLimit), Window: 30 * 24 * time.Hour}},
		// A full window: a denial writes nothing.
		{name: "deny", cfg: rolling.Config{Limit: 100, Window: 30 * 24 * time.Hour}, drain: true},
		// A full window with a hook, already notified: still writes nothing.
		{name: "deny-hooked", cfg: rolling.Config{Limit: 100, Window: 30 * 24 * time.Hour,
			OnLimitReached: func(ratekit.Decision) {}}, drain: true},
		// Every Take opens a new window, in place (within the cell's reach).
		{name: "open-window", cfg: rolling.Config{Limit: 1000, Window: time.Microsecond}, step: time.Microsecond},
		// Every Take opens a new window out of the cell's reach (Limit 2^40
		// leaves 2 ms; windows are 1 s): one allocation per window.
		{name: "open-window-new-cell", cfg: rolling.Config{Limit: wide(1 << 40), Window: time.Second}, step: time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.cfg)
			now := t0
			if bc.drain {
				l.Take(now, bc.cfg.Limit)
			}
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(bc.step)
				l.Take(now, 1)
			}
		})
	}
}

// BenchmarkPeek measures Peek on an open window.
func BenchmarkPeek(b *testing.B) {
	l := mustNew(b, rolling.Config{Limit: 1000, Window: time.Hour})
	l.Take(t0, 10)
	b.ReportAllocs()
	for b.Loop() {
		l.Peek(t0, 1)
	}
}

// BenchmarkTakeRefund measures a Take rolled back by Refund, as TakeAll
// does when another member denies.
func BenchmarkTakeRefund(b *testing.B) {
	l := mustNew(b, rolling.Config{Limit: 1000, Window: time.Hour})
	l.Take(t0, 10)
	b.ReportAllocs()
	for b.Loop() {
		l.Take(t0, 1)
		l.Refund(t0, 1)
	}
}

// BenchmarkAllow measures Allow on the real clock: Take(time.Now(), 1).
func BenchmarkAllow(b *testing.B) {
	l := mustNew(b, rolling.Config{Limit: wide(rolling.MaxLimit), Window: 30 * 24 * time.Hour})
	b.ReportAllocs()
	for b.Loop() {
		l.Allow()
	}
}

// BenchmarkParallel measures Takes from b.RunParallel's goroutines on one
// Limiter (vary them with -cpu): allow-heavy contends on one word with a
// CAS per Take; deny-heavy only loads it.
func BenchmarkParallel(b *testing.B) {
	for _, bc := range []struct {
		name  string
		limit int
		drain bool
	}{
		{"allow-heavy", wide(rolling.MaxLimit), false},
		{"deny-heavy", 100, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, rolling.Config{Limit: bc.limit, Window: 30 * 24 * time.Hour})
			if bc.drain {
				l.Take(t0, bc.limit)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Take(t0, 1)
				}
			})
		})
	}
}

// BenchmarkTemplate measures a Template's limiters: making one (a Keyed's
// new key), and Takes on one from one goroutine and from b.RunParallel's
// (its 32 bytes share a cache line with the word every admission writes).
func BenchmarkTemplate(b *testing.B) {
	tmpl, err := rolling.NewTemplate(rolling.Config{Limit: wide(rolling.MaxLimit), Window: 30 * 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tmpl.New()
		}
	})
	b.Run("take-allow", func(b *testing.B) {
		l := tmpl.New()
		b.ReportAllocs()
		for b.Loop() {
			l.Take(t0, 1)
		}
	})
	b.Run("parallel-allow", func(b *testing.B) {
		l := tmpl.New()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Take(t0, 1)
			}
		})
	})
}
