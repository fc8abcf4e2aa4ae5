package conformance

import (
	"context"
	"encoding"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// zeroValue holds every algorithm to the one zero-value rule of the root
// package documentation: the zero limiter has Limit 0, so it admits n == 0
// (Remaining 0) and denies every other n with RetryAfter Never, taking and
// changing nothing; Refund does nothing; it is Idle; its Config is the zero
// Config; it marshals the state of a fresh limiter (which a limiter whose
// format carries its Window may refuse); UnmarshalBinary leaves
// it a zero limiter (it refuses, with an error wrapping
// ratekit.ErrInvalidState, a state that needs a configuration); Allow and AllowN(n > 0) report
// false and Wait(n > 0) returns ErrExceedsLimit at once; and Reconfigure
// brings it to life, also when Takes race it. No method panics.
func (s Subject) zeroValue(t *testing.T) {
	if s.Zero == nil {
		if s.WithClock != nil {
			t.Fatal("an algorithm's Subject (it has WithClock) must set Zero: every algorithm keeps the zero-value rule")
		}
		t.Skip("a composite or a view: it has no zero value of its own")
	}
	now := s.Start
	l := s.Zero()
	s.zeroDecides(t, l, "the zero limiter")

	noPanic(t, "Refund(n=1)", func() { l.Refund(now, 1) })
	noPanic(t, "Refund(n=MaxInt)", func() { l.Refund(now, math.MaxInt) })
	s.zeroDecides(t, l, "the zero limiter after Refund")

	if il, ok := l.(interface{ Idle(time.Time) bool }); ok {
		noPanic(t, "Idle", func() {
			if !il.Idle(now) {
				t.Fatal("Idle on the zero limiter = false; want true (it holds nothing)")
			}
		})
	}
	zeroConfig(t, l)

	if m, ok := l.(encoding.BinaryMarshaler); ok {
		var state []byte
		noPanic(t, "MarshalBinary", func() {
			var err error
			if state, err = m.MarshalBinary(); err != nil {
				t.Fatalf("MarshalBinary on the zero limiter: %v; want the state of a fresh limiter", err)
			}
		})
		// The zero limiter's state is a fresh one: restored into a
		// configured limiter, it leaves it able to admit its Capacity. (A
		// format that carries its Window, the sliding Counter's, may
		// refuse it instead, as it refuses any other Window's state.)
		fresh := s.New(t)
		err := fresh.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
		if err != nil && !errors.Is(err, ratekit.ErrInvalidState) {
			t.Fatalf("UnmarshalBinary of the zero limiter's state into a fresh limiter: %v", err)
		}
		if got := drain(fresh, now, s.Capacity); got != s.Capacity {
			t.Fatalf("a limiter restored from the zero limiter's state admitted %d at once; want %d", got, s.Capacity)
		}
		// A configured limiter's state cannot go into the zero limiter,
		// which has no configuration to read it in: an error, nothing
		// changed. (A state that needs no configuration, concurrency's
		// hold-time estimate, may be restored; the limiter stays a zero
		// one either way.)
		used := s.New(t)
		used.Take(now, 1)
		saved, err := used.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		for _, b := range [][]byte{saved, state} {
			noPanic(t, "UnmarshalBinary", func() {
				if err := l.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil && !errors.Is(err, ratekit.ErrInvalidState) {
					t.Fatalf("UnmarshalBinary into the zero limiter: %v; want nil or an error wrapping ErrInvalidState", err)
				}
			})
		}
		s.zeroDecides(t, l, "the zero limiter after a refused UnmarshalBinary")
		zeroConfig(t, l)
	}

	if a, ok := l.(interface {
		Allow() bool
		AllowN(int) bool
	}); ok {
		noPanic(t, "Allow", func() {
			if a.Allow() || a.AllowN(1) || a.AllowN(s.Capacity) || a.AllowN(-1) {
				t.Fatal("Allow or AllowN(n != 0) on the zero limiter admitted; want false")
			}
			if !a.AllowN(0) {
				t.Fatal("AllowN(0) on the zero limiter = false; want true")
			}
		})
	}
	if w, ok := l.(interface {
		Wait(context.Context, int) (ratekit.Decision, error)
	}); ok {
		// A guard against a wait that never ends, not a timing assertion:
		// both calls must return at once.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		noPanic(t, "Wait", func() {
			if d, err := w.Wait(ctx, 1); !errors.Is(err, ratekit.ErrExceedsLimit) || d.Allowed {
				t.Fatalf("Wait(n=1) on the zero limiter = %v, %v; want ErrExceedsLimit", d, err)
			}
			if d, err := w.Wait(ctx, 0); err != nil || !d.Allowed {
				t.Fatalf("Wait(n=0) on the zero limiter = %v, %v; want allowed at once", d, err)
			}
		})
	}

	// A composite with a zero member: all or none, the zero member denies
	// and the other is left as it was.
	other := s.New(t)
	before := other.Peek(now, 1)
	noPanic(t, "TakeAll", func() {
		if d := ratekit.TakeAll(now, 1, other, l); d.Allowed || d.RetryAfter != ratekit.Never {
			t.Fatalf("TakeAll(n=1) with a zero member = %v; want denied with RetryAfter Never", d)
		}
		if d := ratekit.TakeAll(now, 0, l, other); !d.Allowed {
			t.Fatalf("TakeAll(n=0) with a zero member = %v; want allowed", d)
		}
	})
	if after := other.Peek(now, 1); after != before {
		t.Fatalf("TakeAll denied by a zero member changed the other: Peek before %v, after %v", before, after)
	}

	if s.Reconfigure == nil {
		return // reconfigureChecks reports the missing Reconfigure
	}
	noPanic(t, "Reconfigure", func() {
		if err := s.Reconfigure(l, s.Capacity); err != nil {
			t.Fatalf("Reconfigure of the zero limiter: %v", err)
		}
	})
	if d := l.Peek(now, 1); !d.Allowed || d.Limit != s.Limit || d.Policy != s.Policy {
		t.Fatalf("Peek(n=1) after Reconfigure of the zero limiter = %v; want allowed, Limit %d, Policy %q", d, s.Limit, s.Policy)
	}
	if got := drain(l, now, s.Capacity); got != s.Capacity {
		t.Fatalf("the zero limiter, reconfigured, admitted %d at once; want %d", got, s.Capacity)
	}

	// The first Reconfigure racing others and Takes: one configuration
	// wins, and no Take is admitted twice or lost.
	z := s.Zero()
	var wg sync.WaitGroup
	taken := make([]int, 2)
	for i := range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := s.Reconfigure(z, s.Capacity); err != nil {
				t.Errorf("concurrent Reconfigure of the zero limiter: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			for range s.Capacity {
				if z.Take(now, 1).Allowed {
					taken[i]++
				}
			}
		}()
	}
	wg.Wait()
	if got := taken[0] + taken[1] + drain(z, now, s.Capacity); got != s.Capacity {
		t.Fatalf("Takes racing the zero limiter's first Reconfigure, then a drain, admitted %d; want %d", got, s.Capacity)
	}
}

// zeroDecides checks the decisions of a zero limiter l, named what: n == 0
// is allowed with nothing remaining, every other n denied with RetryAfter
// Never, and all of it reported under Limit 0 and no Policy.
func (s Subject) zeroDecides(t *testing.T, l ratekit.Limiter, what string) {
	t.Helper()
	now := s.Start
	for _, at := range []time.Time{now, {}, now.AddDate(100, 0, 0)} {
		for _, n := range []int{0, 1, s.Capacity, -1, math.MaxInt, math.MinInt} {
			want := ratekit.Decision{Allowed: true}
			if n != 0 {
				want = ratekit.Decision{RetryAfter: ratekit.Never}
			}
			for _, op := range []string{"Peek", "Take"} {
				var d ratekit.Decision
				noPanic(t, op, func() {
					if op == "Peek" {
						d = l.Peek(at, n)
					} else {
						d = l.Take(at, n)
					}
				})
				if d != want {
					t.Fatalf("%s(n=%d) at %s on %s = %+v; want %+v", op, n, stamp(at), what, d, want)
				}
			}
		}
	}
}

// zeroConfig checks that l's Config method, if it has one, returns the zero
// Config.
func zeroConfig(t *testing.T, l ratekit.Limiter) {
	t.Helper()
	m := reflect.ValueOf(l).MethodByName("Config")
	if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
		return
	}
	noPanic(t, "Config", func() {
		if c := m.Call(nil)[0]; !c.IsZero() {
			t.Fatalf("Config of the zero limiter = %+v; want the zero Config", c.Interface())
		}
	})
}

// noPanic runs f, failing t with what f called if it panics: the zero
// value of a limiter must be usable, not a trap.
func noPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s on the zero limiter panicked: %v", what, r)
		}
	}()
	f()
}
