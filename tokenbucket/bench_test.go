package tokenbucket_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/tokenbucket"
)

// The references: Take with an explicit time should cost about one
// uncontended CAS plus now.Sub, and Allow about one time.Now more.

var sinkInt int64
var sinkTime time.Time

func BenchmarkReferenceCAS(b *testing.B) {
	b.ReportAllocs()
	var w atomic.Int64
	for i := 0; i < b.N; i++ {
		for {
			old := w.Load()
			if w.CompareAndSwap(old, old+1) {
				break
			}
		}
	}
	sinkInt = w.Load()
}

func BenchmarkReferenceTimeNow(b *testing.B) {
	b.ReportAllocs()
	var t time.Time
	for i := 0; i < b.N; i++ {
		t = time.Now()
	}
	sinkTime = t
}

// benchCases are the buckets Take is measured on: one that always admits
// (1e9 per second, the time advancing 1 µs per call) and one that always
// denies (drained, 1 per hour).
var benchCases = []struct {
	name  string
	cfg   tokenbucket.Config
	step  time.Duration
	drain bool
	wall  bool // times without a monotonic reading, as time.Date or a parsed time
}{
	{"Allow", tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: 1 << 20}, time.Microsecond, false, false},
	{"AllowWallTime", tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: 1 << 20}, time.Microsecond, false, true},
	{"AllowOddRate", tokenbucket.Config{Limit: 7, Window: 10 * time.Nanosecond, Burst: 1 << 20}, time.Microsecond, false, false},
	{"Deny", tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 1}, 0, true, false},
}

func BenchmarkTake(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.cfg)
			now := time.Now()
			if bc.wall {
				now = now.Round(0)
			}
			if bc.drain {
				l.Take(now, bc.cfg.Burst)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				now = now.Add(bc.step)
				l.Take(now, 1)
			}
		})
	}
}

func BenchmarkPeek(b *testing.B) {
	l := mustNew(b, benchCases[0].cfg)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Peek(now, 1)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := mustNew(b, benchCases[0].cfg)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Allow()
	}
}

// BenchmarkTakeParallel runs Take on one limiter from every P (vary with
// -cpu): each goroutine keeps its own clock, so times interleave out of
// order, as they do when goroutines read the clock before contending.
func BenchmarkTakeParallel(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			l := mustNew(b, bc.cfg)
			start := time.Now()
			if bc.drain {
				l.Take(start, bc.cfg.Burst)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				now := start
				for pb.Next() {
					now = now.Add(bc.step)
					l.Take(now, 1)
				}
			})
		})
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := mustNew(b, benchCases[0].cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}

// BenchmarkTakeRefund takes a unit and refunds it at once, at one instant
// a call: the refund gives back exactly what the Take took.
func BenchmarkTakeRefund(b *testing.B) {
	l := mustNew(b, benchCases[0].cfg)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Microsecond)
		l.Take(now, 1)
		l.Refund(now, 1)
	}
}
