package ratekit_test

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// BenchmarkTakeAll measures the composite's own cost over three token
// buckets, as TakeAll and as TakeEach: "allow", every member admits (a
// rate no loop reaches); "rollback", the last member is empty, so the two
// before it admit and are given back on every call.
func BenchmarkTakeAll(b *testing.B) {
	// The buckets' epoch is t0, the times the loops pass: a real clock's
	// would put them outside the fast range (2.4 h either side at 2^30 an
	// hour), on a path no service's Takes take.
	clk := clock.NewMock()
	clk.Set(t0)
	bucket := func(burst int) ratekit.Limiter {
		l, err := tokenbucket.New(tokenbucket.Config{Limit: burst, Window: time.Hour, Burst: burst, Clock: clk})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	for _, c := range []struct {
		name  string
		last  int
		allow bool
	}{{"allow", 1 << 30, true}, {"rollback", 1, false}} {
		members := func() []ratekit.Limiter {
			ms := []ratekit.Limiter{bucket(1 << 30), bucket(1 << 30), bucket(c.last)}
			ms[2].Take(t0, c.last)
			if c.allow {
				ms[2].Refund(t0, c.last)
			}
			return ms
		}
		b.Run("TakeAll/"+c.name, func(b *testing.B) {
			ms := members()
			now := t0
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				now = now.Add(time.Nanosecond)
				if ratekit.TakeAll(now, 1, ms...).Allowed != c.allow {
					b.Fatal("not the path this case measures")
				}
			}
			reportCPU(b, cpu)
		})
		b.Run("TakeEach/"+c.name, func(b *testing.B) {
			ms := members()
			asks := []ratekit.Ask{{Limiter: ms[0], N: 1}, {Limiter: ms[1], N: 1}, {Limiter: ms[2], N: 1}}
			now := t0
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				now = now.Add(time.Nanosecond)
				if d, _ := ratekit.TakeEach(now, asks); d.Allowed != c.allow {
					b.Fatal("not the path this case measures")
				}
			}
			reportCPU(b, cpu)
		})
	}
}
