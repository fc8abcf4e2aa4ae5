package bench

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ratekit/ratekit/tokenbucket"
)

// Token buckets side by side: ratekit's tokenbucket against
// golang.org/x/time/rate, on the same bucket and the same times, with a bare
// CAS loop and time.Now as the floors.

// bucket is one implementation under test.
type bucket struct {
	name string
	// new returns a bucket of rate per second and burst, with its "take n
	// at t" and "take 1 now" forms.
	new func(tb testing.TB, perSecond, burst int) (takeAt func(time.Time, int) bool, allow func() bool)
}

var buckets = []bucket{
	{"ratekit", func(tb testing.TB, perSecond, burst int) (func(time.Time, int) bool, func() bool) {
		l, err := tokenbucket.New(tokenbucket.Config{Limit: perSecond, Window: time.Second, Burst: burst})
		if err != nil {
			tb.Fatal(err)
		}
		return func(t time.Time, n int) bool { return l.Take(t, n).Allowed }, l.Allow
	}},
	{"xrate", func(_ testing.TB, perSecond, burst int) (func(time.Time, int) bool, func() bool) {
		l := rate.NewLimiter(rate.Limit(perSecond), burst)
		return l.AllowN, l.Allow
	}},
}

// The buckets: one that always admits (1e9 per second, time advancing 1 µs
// per call) and one that always denies (drained, 1 per second).
var bucketCases = []struct {
	name      string
	perSecond int
	burst     int
	step      time.Duration
	drain     bool
}{
	{"AllowHeavy", 1e9, 1 << 20, time.Microsecond, false},
	{"DenyHeavy", 1, 1, 0, true},
}

var sink int64

func BenchmarkTokenBucketFloorCAS(b *testing.B) {
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
	sink = w.Load()
}

func BenchmarkTokenBucketFloorTimeNow(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink += int64(time.Now().Nanosecond())
	}
}

// BenchmarkTokenBucketTakeAt is ratekit's Take(t, 1) and x/time/rate's
// AllowN(t, 1) with explicit times.
func BenchmarkTokenBucketTakeAt(b *testing.B) {
	for _, bc := range bucketCases {
		for _, impl := range buckets {
			b.Run("load="+bc.name+"/impl="+impl.name, func(b *testing.B) {
				take, _ := impl.new(b, bc.perSecond, bc.burst)
				now := time.Now()
				if bc.drain {
					take(now, bc.burst)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					now = now.Add(bc.step)
					take(now, 1)
				}
			})
		}
	}
}

// BenchmarkTokenBucketAllow is Allow() on the real clock.
func BenchmarkTokenBucketAllow(b *testing.B) {
	for _, impl := range buckets {
		b.Run("impl="+impl.name, func(b *testing.B) {
			_, allow := impl.new(b, 1e9, 1<<20)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				allow()
			}
		})
	}
}

// BenchmarkTokenBucketTakeAtParallel is TakeAt from every P on one bucket.
func BenchmarkTokenBucketTakeAtParallel(b *testing.B) {
	for _, bc := range bucketCases {
		for _, impl := range buckets {
			b.Run("load="+bc.name+"/impl="+impl.name, func(b *testing.B) {
				take, _ := impl.new(b, bc.perSecond, bc.burst)
				start := time.Now()
				if bc.drain {
					take(start, bc.burst)
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					now := start
					for pb.Next() {
						now = now.Add(bc.step)
						take(now, 1)
					}
				})
			})
		}
	}
}
