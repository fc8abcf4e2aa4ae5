package httplimit_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/httplimit"
)

// mapLimiter is a Limiter of a kind that is neither a pointer nor an
// interface: Per must still see its nil.
type mapLimiter map[string]int

func (mapLimiter) Take(time.Time, int) ratekit.Decision { return ratekit.Decision{Allowed: true} }
func (mapLimiter) Peek(time.Time, int) ratekit.Decision { return ratekit.Decision{Allowed: true} }
func (mapLimiter) Refund(time.Time, int)                {}

// sliceLimiter is a Limiter whose nil Per asks reflect about.
type sliceLimiter []int

func (sliceLimiter) Take(time.Time, int) ratekit.Decision { return ratekit.Decision{Allowed: true} }
func (sliceLimiter) Peek(time.Time, int) ratekit.Decision { return ratekit.Decision{Allowed: true} }
func (sliceLimiter) Refund(time.Time, int)                {}

// TestPerNil checks that Per turns a getter's nil, typed or not, into a nil
// ratekit.Limiter, which exempts the key (Tier.Limiter), and passes every
// other limiter through as it is.
func TestPerNil(t *testing.T) {
	w := newWindow("w", 1, time.Minute)
	var nilWindow *window
	var nilHolder *concurrency.Limiter

	pointer := httplimit.Per(func(key string) *window {
		if key == "known" {
			return w
		}
		return nil
	})
	if got := pointer("unknown"); got != nil {
		t.Errorf("Per(func() *T) of a nil *T = %#v, want a nil Limiter", got)
	}
	if got := pointer("known"); got != ratekit.Limiter(w) {
		t.Errorf("Per(func() *T) of a limiter = %#v, want it unchanged", got)
	}

	iface := httplimit.Per(func(key string) ratekit.Limiter {
		switch key {
		case "nil":
			return nil
		case "typed nil":
			return nilWindow
		}
		return w
	})
	for _, key := range []string{"nil", "typed nil"} {
		if got := iface(key); got != nil {
			t.Errorf("Per(func() ratekit.Limiter) of %s = %#v, want a nil Limiter", key, got)
		}
	}
	if got := iface("known"); got != ratekit.Limiter(w) {
		t.Errorf("Per(func() ratekit.Limiter) of a limiter = %#v, want it unchanged", got)
	}

	holder := httplimit.Per(func(string) ratekit.Holder { return nilHolder })
	if got := holder("k"); got != nil {
		t.Errorf("Per(func() ratekit.Holder) of a typed nil = %#v, want a nil Limiter", got)
	}

	m := httplimit.Per(func(key string) mapLimiter {
		if key == "known" {
			return mapLimiter{}
		}
		return nil
	})
	if got := m("unknown"); got != nil {
		t.Errorf("Per(func() map) of a nil map = %#v, want a nil Limiter", got)
	}
	if got := m("known"); got == nil {
		t.Error("Per(func() map) of an empty map is nil, want the limiter")
	}

	sl := httplimit.Per(func(key string) sliceLimiter {
		if key == "known" {
			return sliceLimiter{}
		}
		return nil
	})
	if got := sl("unknown"); got != nil {
		t.Errorf("Per(func() slice) of a nil slice = %#v, want a nil Limiter", got)
	}
	if got := sl("known"); got == nil {
		t.Error("Per(func() slice) of an empty slice is nil, want the limiter")
	}
}

// TestPerKeyedNil runs a tier over a Keyed whose factory returns nil for
// keys it does not know (Keyed stores nothing for them): the tier does not
// apply to those keys, and still limits the others.
func TestPerKeyedNil(t *testing.T) {
	tokens := newKeyed(func(tok string) *window {
		if tok != "sk_live_1" {
			return nil
		}
		return newWindow("token", 1, time.Minute)
	})
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Clock: mockAt(t0),
	}).Wrap(ok)
	for i := range 3 {
		w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer sk_internal"))
		if w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("exempt token, request %d: %d, headers %v", i+1, w.Code, w.Header())
		}
	}
	if w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer sk_live_1")); w.Code != 200 {
		t.Fatalf("limited token, first request: %d", w.Code)
	}
	if w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer sk_live_1")); w.Code != 429 {
		t.Fatalf("limited token, second request: %d, want 429", w.Code)
	}
}

// TestPerAllocs: Per's wrapper allocates nothing, nil or not.
func TestPerAllocs(t *testing.T) {
	w := newWindow("w", 1, time.Minute)
	pointer := httplimit.Per(func(key string) *window {
		if key == "known" {
			return w
		}
		return nil
	})
	iface := httplimit.Per(func(key string) ratekit.Limiter {
		if key == "known" {
			return w
		}
		return (*window)(nil)
	})
	for name, f := range map[string]func(string) ratekit.Limiter{"pointer": pointer, "interface": iface} {
		for _, key := range []string{"known", "unknown"} {
			if a := testing.AllocsPerRun(100, func() { f(key) }); a != 0 {
				t.Errorf("%s getter, %s key: %v allocations, want 0", name, key, a)
			}
		}
	}
}

// sink keeps the benchmarks' results alive.
var sink ratekit.Limiter

// BenchmarkPer measures Per's wrapper around a Keyed's Get, the usual
// Tier.Limiter, and around a getter that returns one limiter (the check
// alone), each against a wrapper without the nil check (noCheck).
func BenchmarkPer(b *testing.B) {
	tokens := newKeyed(func(string) *window { return newWindow("token", 1, time.Minute) })
	tokens.Get("sk_live_1")
	one := newWindow("one", 1, time.Minute)
	fixed := func(string) *window { return one }
	for _, c := range []struct {
		name string
		get  func(string) ratekit.Limiter
	}{
		{"keyed/noCheck", noCheck(tokens.Get)},
		{"keyed/Per", httplimit.Per(tokens.Get)},
		{"fixed/noCheck", noCheck(fixed)},
		{"fixed/Per", httplimit.Per(fixed)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = c.get("sk_live_1")
			}
		})
	}
}

// noCheck is Per without its nil check.
//
//go:noinline
func noCheck[L ratekit.Limiter](get func(key string) L) func(key string) ratekit.Limiter {
	return func(key string) ratekit.Limiter { return get(key) }
}
