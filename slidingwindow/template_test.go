package slidingwindow_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/stretchr/testify/require"
)

func mustCounterTemplate(tb testing.TB, cfg slidingwindow.Config) *slidingwindow.CounterTemplate {
	tb.Helper()
	tmpl, err := slidingwindow.NewCounterTemplate(cfg)
	if err != nil {
		tb.Fatalf("NewCounterTemplate(%+v): %v", cfg, err)
	}
	return tmpl
}

func mustLogTemplate(tb testing.TB, cfg slidingwindow.Config) *slidingwindow.LogTemplate {
	tb.Helper()
	tmpl, err := slidingwindow.NewLogTemplate(cfg)
	if err != nil {
		tb.Fatalf("NewLogTemplate(%+v): %v", cfg, err)
	}
	return tmpl
}

// TestTemplateDecidesAsNew: a template's New is NewLog or NewCounter of its
// Config (the conformance suite runs on those), so its limiters decide as
// theirs do.
func TestTemplateDecidesAsNew(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 25, Window: time.Second, Name: "template"}
	lt, ct := mustLogTemplate(t, cfg), mustCounterTemplate(t, cfg)
	require.Equal(t, cfg.Limit, lt.Config().Limit)
	require.Equal(t, cfg.Limit, ct.Config().Limit)
	log, err := slidingwindow.NewLog(cfg)
	require.NoError(t, err)
	ctr, err := slidingwindow.NewCounter(cfg)
	require.NoError(t, err)
	pairs := []struct{ a, b ratekit.Limiter }{{lt.New(), log}, {ct.New(), ctr}}
	for _, p := range pairs {
		for i := range 300 {
			now := conformance.DefaultStart.Add(time.Duration(i) * 13 * time.Millisecond)
			n := i % 4
			require.Equal(t, p.b.Peek(now, n), p.a.Peek(now, n), "Peek %d", i)
			require.Equal(t, p.b.Take(now, n), p.a.Take(now, n), "Take %d", i)
		}
	}
}

func TestTemplateBadConfig(t *testing.T) {
	for _, cfg := range []slidingwindow.Config{
		{Limit: 0, Window: time.Second},
		{Limit: 1, Window: 0},
		{Limit: 1, Window: slidingwindow.MaxWindow + 1},
		{Limit: slidingwindow.MaxLogLimit + 1, Window: time.Second},
	} {
		tmpl, err := slidingwindow.NewLogTemplate(cfg)
		if !errors.Is(err, ratekit.ErrInvalidConfig) || tmpl != nil {
			t.Errorf("NewLogTemplate(%+v) = %v, %v; want nil, ErrInvalidConfig", cfg, tmpl, err)
		}
	}
	for _, cfg := range []slidingwindow.Config{
		{Limit: 0, Window: time.Second},
		{Limit: 1, Window: -1},
		{Limit: slidingwindow.MaxCounterLimit(time.Second) + 1, Window: time.Second},
	} {
		tmpl, err := slidingwindow.NewCounterTemplate(cfg)
		if !errors.Is(err, ratekit.ErrInvalidConfig) || tmpl != nil {
			t.Errorf("NewCounterTemplate(%+v) = %v, %v; want nil, ErrInvalidConfig", cfg, tmpl, err)
		}
	}
}

// templateLimiter is what TestTemplateLimitersAreIndependent drives: a Log
// or a Counter.
type templateLimiter interface {
	ratekit.Limiter
	Config() slidingwindow.Config
	Reconfigure(slidingwindow.Config) error
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// TestTemplateLimitersAreIndependent: limiters of one template share their
// parameters and nothing else, and Reconfigure or UnmarshalBinary of one
// leaves the others, and the template, as they were. UnmarshalBinary keeps
// the shared parameters (a Keyed restored by persist stays compact).
func TestTemplateLimitersAreIndependent(t *testing.T) {
	slidingwindow.ResetInterned()
	cfg := slidingwindow.Config{Limit: 3, Window: time.Minute, Name: "per-ip"}
	ct := mustCounterTemplate(t, cfg)
	lt := mustLogTemplate(t, cfg)
	for _, tc := range []struct {
		name string
		new  func() templateLimiter
		same func(a, b templateLimiter) bool
		tmpl func() slidingwindow.Config
	}{
		{"Counter", func() templateLimiter { return ct.New() }, func(a, b templateLimiter) bool {
			return slidingwindow.CounterSameParams(a.(*slidingwindow.Counter), b.(*slidingwindow.Counter))
		}, ct.Config},
		{"Log", func() templateLimiter { return lt.New() }, func(a, b templateLimiter) bool {
			return slidingwindow.LogSameParams(a.(*slidingwindow.Log), b.(*slidingwindow.Log))
		}, lt.Config},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := minute0.Add(10 * s)
			a, b := tc.new(), tc.new()
			if a == b || !tc.same(a, b) {
				t.Fatal("two limiters of a template are one, or do not share parameters")
			}
			if got := a.Config(); got.Limit != 3 || got.Window != time.Minute || got.Name != "per-ip" || got.Clock == nil {
				t.Fatalf("Config() = %+v", got)
			}
			if got := tc.tmpl(); fmt.Sprint(got) != fmt.Sprint(a.Config()) { // Config holds a func: compared as printed
				t.Fatalf("the template's Config() = %+v; its limiter's %+v", got, a.Config())
			}
			if !a.Take(at, 3).Allowed || a.Take(at, 1).Allowed {
				t.Fatal("a does not hold 3")
			}
			if d := b.Peek(at, 0); d.Remaining != 3 {
				t.Fatalf("b after a drained: %v; want 3 remaining", d)
			}

			if err := a.Reconfigure(slidingwindow.Config{Limit: 6, Window: time.Minute, Name: "upgraded"}); err != nil {
				t.Fatal(err)
			}
			if tc.same(a, b) {
				t.Fatal("a reconfigured still shares b's parameters")
			}
			if d := a.Peek(at, 0); d.Limit != 6 || d.Remaining != 3 || d.Policy != "upgraded" {
				t.Fatalf("a after Reconfigure: %v", d)
			}
			c := tc.new()
			for _, l := range []templateLimiter{b, c} {
				if d := l.Peek(at, 0); d.Limit != 3 || d.Remaining != 3 || d.Policy != "per-ip" {
					t.Fatalf("a sibling after a's Reconfigure: %v", d)
				}
			}
			if !tc.same(b, c) || tc.tmpl().Limit != 3 {
				t.Fatal("a's Reconfigure changed the template")
			}

			// Restoring a state keeps the shared parameters.
			if !b.Take(at, 2).Allowed {
				t.Fatal("b refused 2")
			}
			state, err := b.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			if !tc.same(b, c) {
				t.Fatal("UnmarshalBinary gave c parameters of its own")
			}
			if got, want := c.Peek(at, 1), b.Peek(at, 1); got != want {
				t.Fatalf("c restored from b: %v; b: %v", got, want)
			}
			if !c.Take(at, 1).Allowed || c.Take(at, 1).Allowed {
				t.Fatal("c restored from b does not hold 1")
			}
			if d := b.Peek(at, 0); d.Remaining != 1 {
				t.Fatalf("b after c took: %v; want 1 remaining", d)
			}
			// A state a template's limiter cannot hold is refused, and
			// changes nothing.
			// Both restore any number of units (over-full if more than
			// their Limit), and a Counter a state of another Window: a
			// trailing byte is refused.
			wide, err := a.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			wide = append(wide, 0)
			before := c.Peek(at, 0)
			if err := c.UnmarshalBinary(wide); !errors.Is(err, ratekit.ErrInvalidState) {
				t.Fatalf("UnmarshalBinary of a state c cannot hold = %v", err)
			}
			if after := c.Peek(at, 0); after != before || !tc.same(b, c) {
				t.Fatalf("a refused UnmarshalBinary changed c: %v, then %v", before, after)
			}
		})
	}
}

// TestTemplateConcurrentReplace races the Logs and Counters of one template
// taking against Reconfigures and UnmarshalBinarys of one of them: with
// -race, it checks that replacers serialise without a mutex and that the
// siblings see nothing of it.
func TestTemplateConcurrentReplace(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 8, Window: time.Minute}
	lt, ct := mustLogTemplate(t, cfg), mustCounterTemplate(t, cfg)
	type limiter interface {
		templateLimiter
		Idle(time.Time) bool
	}
	for _, pair := range [][2]limiter{{lt.New(), lt.New()}, {ct.New(), ct.New()}} {
		l, sibling := pair[0], pair[1]
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						if i >= 100 { // each has raced for a while
							return
						}
					default:
					}
					at := minute0.Add(time.Duration(i%3) * time.Millisecond)
					switch g {
					case 0:
						if d := l.Take(at, 1); d.Allowed && i%2 == 0 {
							l.Refund(at, 1)
						}
						l.Idle(at)
					case 1:
						// Replacers race each other, not just the hot path.
						b, err := l.MarshalBinary()
						if err != nil {
							t.Error(err)
							return
						}
						// It may not fit a Limit lowered since: then it is
						// refused, and changes nothing.
						if err := l.UnmarshalBinary(b); err != nil && !errors.Is(err, ratekit.ErrInvalidState) {
							t.Error(err)
							return
						}
					default:
						sibling.Take(at, 1)
					}
				}
			}()
		}
		for i := range 200 {
			if err := l.Reconfigure(slidingwindow.Config{Limit: 4 + 8*(i%2), Window: time.Minute}); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		at := minute0.Add(2 * time.Millisecond)
		if left, got := l.Peek(at, 0).Remaining, drainAt(l, at, 100); got != left {
			t.Fatalf("%T: Peek said %d remain; drained %d", l, left, got)
		}
		if d := sibling.Peek(at, 0); d.Limit != 8 || d.Remaining != 0 {
			t.Fatalf("%T: the sibling, which took all the time: %v", sibling, d)
		}
	}
}

// TestTemplateMemory measures what a limiter costs: a Counter, a template's
// or NewCounter's, is one 32-byte allocation (a cell.Ref: the pointer to
// the block in force and the first block inline), and a template's Log its
// ring and 64 bytes (a 56-byte Log in Go's 64-byte size class).
func TestTemplateMemory(t *testing.T) {
	if got := unsafe.Sizeof(slidingwindow.Counter{}); got != 32 {
		t.Errorf("a Counter is %d bytes; want 32", got)
	}
	// 64: the allocator's size class of the 56 bytes a Log was before it
	// kept its restore mark, so the mark costs no memory.
	if got := unsafe.Sizeof(slidingwindow.Log{}); got != 64 {
		t.Errorf("a Log is %d bytes; want 64", got)
	}
	const n = 20_000
	for _, tc := range []struct {
		cfg  slidingwindow.Config
		ring float64 // the ring's size class: 8·Limit rounded up
	}{
		{slidingwindow.Config{Limit: 25, Window: time.Second}, 208},
		{slidingwindow.Config{Limit: 600, Window: time.Minute}, 4864},
	} {
		ct, lt := mustCounterTemplate(t, tc.cfg), mustLogTemplate(t, tc.cfg)
		if got := testing.AllocsPerRun(100, func() { ct.New() }); got != 1 {
			t.Errorf("CounterTemplate.New allocates %v times; want 1", got)
		}
		if got := testing.AllocsPerRun(100, func() { lt.New() }); got != 2 {
			t.Errorf("LogTemplate.New allocates %v times; want 2", got)
		}
		counter := conformance.BytesPer(n, ct.New)
		log := conformance.BytesPer(n, lt.New)
		t.Logf("Limit %d: %.1f bytes per template Counter, %.1f per template Log", tc.cfg.Limit, counter, log)
		if counter > 32.5 {
			t.Errorf("a template's Counter costs %.1f bytes; want 32", counter)
		}
		// NewCounter's are the same: they share the parameters too.
		if got := testing.AllocsPerRun(100, func() { _, _ = slidingwindow.NewCounter(tc.cfg) }); got != 1 {
			t.Errorf("NewCounter allocates %v times; want 1", got)
		}
		perNew := conformance.BytesPer(n, func() *slidingwindow.Counter { return mustCounter(t, tc.cfg) })
		t.Logf("Limit %d: %.1f bytes per NewCounter", tc.cfg.Limit, perNew)
		if perNew > 32.5 {
			t.Errorf("NewCounter's Counter costs %.1f bytes; want 32", perNew)
		}
		if log > 64+tc.ring+0.5 {
			t.Errorf("a template's Log of %d costs %.1f bytes; want %v", tc.cfg.Limit, log, 64+tc.ring)
		}
		// NewLog's are the same: they share the parameters too.
		if got := testing.AllocsPerRun(100, func() { _, _ = slidingwindow.NewLog(tc.cfg) }); got != 2 {
			t.Errorf("NewLog allocates %v times; want 2", got)
		}
		perNewLog := conformance.BytesPer(n, func() *slidingwindow.Log { return mustLog(t, tc.cfg) })
		t.Logf("Limit %d: %.1f bytes per NewLog", tc.cfg.Limit, perNewLog)
		if perNewLog > 64+tc.ring+0.5 {
			t.Errorf("NewLog's Log of %d costs %.1f bytes; want %v", tc.cfg.Limit, perNewLog, 64+tc.ring)
		}
	}
}

// TestTemplateZeroAllocs: the hot paths of a template's limiters allocate
// nothing, as those of NewLog's and NewCounter's.
func TestTemplateZeroAllocs(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 600, Window: time.Minute}
	c, l := mustCounterTemplate(t, cfg).New(), mustLogTemplate(t, cfg).New()
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(50 * time.Millisecond)
		for _, lim := range []interface {
			ratekit.Limiter
			Idle(time.Time) bool
		}{c, l} {
			if d := lim.Take(now, 3); d.Allowed {
				lim.Refund(now, 1)
			}
			lim.Peek(now, 1)
			lim.Idle(now)
		}
	})
	if allocs != 0 {
		t.Fatalf("Take/Refund/Peek/Idle allocate %v times per run", allocs)
	}
}
