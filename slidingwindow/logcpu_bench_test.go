//go:build unix

package slidingwindow_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/slidingwindow"
)

// BenchmarkLogCPU measures the Log's Take in CPU time (cpu-ns/op), with
// the Counter of the same Config as the peer measured in the same process:
// on a machine shared with other work, wall time also counts the time
// others hold the cores. Cases:
//   - Allow: explicit times that advance by Window/Limit per call, every
//     Log Take admitted (the Counter's estimate denies some) (the write, and the lost mark's check of the slot it
//     overwrites once the ring is full);
//   - Deny: a drained limiter at one instant, the read-only path;
//   - ClockAllow: Allow() on a clock that advances by Window/Limit per
//     call (a stand-in: clock.Mock's Add sleeps), the convenience method
//     without the real clock's read.
func BenchmarkLogCPU(b *testing.B) {
	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	for _, alg := range []string{"Log", "Counter"} {
		for _, bl := range []struct {
			limit  int
			window time.Duration
		}{{25, time.Second}, {600, time.Minute}} {
			step := bl.window / time.Duration(bl.limit)
			newL := func(b *testing.B, clk clock.Clock) interface {
				Take(time.Time, int) bool
				Allow() bool
			} {
				cfg := slidingwindow.Config{Limit: bl.limit, Window: bl.window, Clock: clk}
				if alg == "Log" {
					l, err := slidingwindow.NewLog(cfg)
					if err != nil {
						b.Fatal(err)
					}
					return logTaker{l}
				}
				l, err := slidingwindow.NewCounter(cfg)
				if err != nil {
					b.Fatal(err)
				}
				return counterTaker{l}
			}
			prefix := fmt.Sprintf("%s/limit=%d", alg, bl.limit)
			b.Run(prefix+"/Allow", func(b *testing.B) {
				l := newL(b, nil)
				now := start
				cpu := logCPUTime()
				for b.Loop() {
					now = now.Add(step)
					if !l.Take(now, 1) && alg == "Log" {
						b.Fatal("denied: not the path this case measures")
					}
				}
				reportLogCPU(b, cpu)
			})
			b.Run(prefix+"/Deny", func(b *testing.B) {
				l := newL(b, nil)
				l.Take(start, bl.limit)
				cpu := logCPUTime()
				for b.Loop() {
					if l.Take(start, 1) {
						b.Fatal("admitted: not the path this case measures")
					}
				}
				reportLogCPU(b, cpu)
			})
			b.Run(prefix+"/ClockAllow", func(b *testing.B) {
				clk := &stepClock{Clock: clock.NewMock(), now: start}
				l := newL(b, clk)
				cpu := logCPUTime()
				for b.Loop() {
					clk.now = clk.now.Add(step)
					if !l.Allow() && alg == "Log" {
						b.Fatal("denied: not the path this case measures")
					}
				}
				reportLogCPU(b, cpu)
			})
		}
	}
}

// stepClock is a clock whose Now is now, which the benchmark sets.
type stepClock struct {
	clock.Clock
	now time.Time
}

func (c *stepClock) Now() time.Time { return c.now }

type logTaker struct{ *slidingwindow.Log }

func (l logTaker) Take(now time.Time, n int) bool { return l.Log.Take(now, n).Allowed }

type counterTaker struct{ *slidingwindow.Counter }

func (l counterTaker) Take(now time.Time, n int) bool { return l.Counter.Take(now, n).Allowed }

// logCPUTime returns the CPU time the process has used, user and system,
// or -1 where it cannot tell.
func logCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportLogCPU reports the CPU time used per operation since start, as
// cpu-ns/op.
func reportLogCPU(b *testing.B, start time.Duration) {
	if start >= 0 {
		b.ReportMetric(float64(logCPUTime()-start)/float64(b.N), "cpu-ns/op")
	}
}
