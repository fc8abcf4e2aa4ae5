package bench

import (
	"sync/atomic"
	"testing"
	"time"
)

// verdicts counts the decisions of one benchmark, so that it can check, once
// after its loop, that it measured the path it is named for. Goroutines count
// locally and add once, so the check costs the loop nothing.
type verdicts struct{ allowed, denied atomic.Int64 }

func (v *verdicts) add(allowed, denied int64) {
	v.allowed.Add(allowed)
	v.denied.Add(denied)
}

// check fails b unless every decision was a denial (deny) or every one an
// admission (!deny).
func (v *verdicts) check(b *testing.B, impl string, deny bool) {
	b.Helper()
	a, d := v.allowed.Load(), v.denied.Load()
	if deny && a != 0 || !deny && d != 0 {
		b.Fatalf("%s: %d allowed, %d denied: not the path this case measures", impl, a, d)
	}
}

// loop runs take b.N times on one goroutine and checks the path.
func loop(b *testing.B, impl string, deny bool, take func() bool) {
	var a, d int64
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if take() {
			a++
		} else {
			d++
		}
	}
	reportCPU(b, cpu)
	var v verdicts
	v.add(a, d)
	v.check(b, impl, deny)
}

// reportCPU reports the process's CPU time per op since cpu (a cpuTime),
// as cpu-ns/op. On a machine shared with other work, ns/op (wall time)
// includes the time the benchmark waited for a core; cpu-ns/op does not,
// so it is the steadier of the two there. For a parallel benchmark it is
// the CPU time of all goroutines per op: the cost of an op, not its
// throughput. It includes the runtime's own threads (GC).
func reportCPU(b *testing.B, cpu int64) {
	if now := cpuTime(); cpu >= 0 && now >= 0 && b.N > 0 {
		b.ReportMetric(float64(now-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// parallel runs take b.N times across b.RunParallel's goroutines (vary them
// with -cpu) and checks the path. newTake is called once per goroutine, for
// state of its own such as the time it advances.
func parallel(b *testing.B, impl string, deny bool, newTake func() func() bool) {
	var v verdicts
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		take := newTake()
		var a, d int64
		for pb.Next() {
			if take() {
				a++
			} else {
				d++
			}
		}
		v.add(a, d)
	})
	reportCPU(b, cpu)
	v.check(b, impl, deny)
}

// own returns a pointer to a copy of v alone on its cache lines. State that
// a parallel case's closure keeps across iterations (a counter, the time)
// escapes to the heap, and the small objects of two goroutines may share a
// cache line: its ping-pong, two cores writing it on every call, then costs
// tens of ns an op, charged to whichever implementation happens to run with
// that heap layout (it made one case 1.8x slower in one run than in the
// next). 64 bytes either side keep v off its neighbours' lines.
func own[T any](v T) *T {
	p := &struct {
		_ [64]byte
		v T
		_ [64]byte
	}{v: v}
	return &p.v
}

// fakeClock is the time source that juju's bucket and throttled's store read
// in the explicit-time cases: the benchmark stores the time of each call in
// it just before the call, as ratekit and x/time/rate are passed it.
type fakeClock struct {
	base time.Time
	ns   atomic.Int64 // since base
}

func (c *fakeClock) set(t time.Time)       { c.ns.Store(int64(t.Sub(c.base))) }
func (c *fakeClock) Now() time.Time        { return c.base.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Sleep(d time.Duration) { c.ns.Add(int64(d)) }

// must returns v, and panics on err: every configuration here is a
// constant, so an error is a bug in the benchmark.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
