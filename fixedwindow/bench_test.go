package fixedwindow_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
)

// BenchmarkTake measures one goroutine's Take with explicit times.
//   - allow: every Take admitted; the clock moves 1µs per call through
//     one-second windows of 2^20, so windows roll over as they do in use.
//   - deny: a full window; a denial only loads the state word.
//   - deny-hook: the same with OnLimitReached set (it ran once, at the
//     first denial; later denials find the flag set and write nothing).
//   - peek, take-refund: the other hot-path calls.
//   - allow-template, deny-template: allow and deny on a Template's
//     limiter, the compact layout of a per-key limiter.
func BenchmarkTake(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  fixedwindow.Config
		run  func(l *fixedwindow.Limiter, now time.Time)
		step time.Duration
		tmpl bool
	}{
		{"allow", fixedwindow.Config{Limit: 1 << 20, Window: time.Second}, func(l *fixedwindow.Limiter, now time.Time) { l.Take(now, 1) }, time.Microsecond, false},
		{"deny", fixedwindow.Config{Limit: 1, Window: 24 * time.Hour}, func(l *fixedwindow.Limiter, now time.Time) { l.Take(now, 1) }, 0, false},
		{"deny-hook", fixedwindow.Config{Limit: 1, Window: 24 * time.Hour, OnLimitReached: func(ratekit.Decision) {}}, func(l *fixedwindow.Limiter, now time.Time) { l.Take(now, 1) }, 0, false},
		{"peek", fixedwindow.Config{Limit: 1 << 20, Window: time.Second}, func(l *fixedwindow.Limiter, now time.Time) { l.Peek(now, 1) }, time.Microsecond, false},
		{"take-refund", fixedwindow.Config{Limit: 1 << 20, Window: time.Second}, func(l *fixedwindow.Limiter, now time.Time) {
			l.Take(now, 1)
			l.Refund(now, 1)
		}, time.Microsecond, false},
		{"allow-template", fixedwindow.Config{Limit: 1 << 20, Window: time.Second}, func(l *fixedwindow.Limiter, now time.Time) { l.Take(now, 1) }, time.Microsecond, true},
		{"deny-template", fixedwindow.Config{Limit: 1, Window: 24 * time.Hour}, func(l *fixedwindow.Limiter, now time.Time) { l.Take(now, 1) }, 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.cfg)
			if bc.tmpl {
				l = mustTemplate(b, bc.cfg).New()
			}
			now := t0
			l.Take(now, 1)
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(bc.step)
				bc.run(l, now)
			}
		})
	}
}

// BenchmarkAllow measures Allow on the real clock: Take plus reading the
// time (time.Now through the clock.Clock interface).
func BenchmarkAllow(b *testing.B) {
	l := mustNew(b, fixedwindow.Config{Limit: 1 << 30, Window: time.Second, Clock: clock.New()})
	b.ReportAllocs()
	for b.Loop() {
		l.Allow()
	}
}

// BenchmarkParallel measures one limiter shared by every goroutine (vary
// them with -cpu).
//   - allow-heavy: every Take admitted, so every call CASes the one word.
//   - deny-heavy: a full window, so calls only load it and scale.
//   - allow-real-clock: Allow on the real clock, windows of a second.
func BenchmarkParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  fixedwindow.Config
		real bool
	}{
		{"allow-heavy", fixedwindow.Config{Limit: wide(1 << 40), Window: 30 * 24 * time.Hour}, false},
		{"deny-heavy", fixedwindow.Config{Limit: 1, Window: 24 * time.Hour}, false},
		{"allow-real-clock", fixedwindow.Config{Limit: 1 << 30, Window: time.Second, Clock: clock.New()}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.cfg)
			l.Take(t0, 1)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if bc.real {
						l.Allow()
					} else {
						l.Take(t0, 1)
					}
				}
			})
		})
	}
}
