package bench

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter/memorystore"
	ulule "github.com/ulule/limiter/v3"
	ululemem "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"

	"github.com/ratekit/ratekit/rolling"
)

// The peers of rolling, the first-event-anchored window.
//
// Of the Go limiters in bench/go.mod, only ulule/limiter's memory store
// anchors windows the same way: a key's counter is created with an
// expiration of now+Period on the first request after the previous one
// expired, which is Rollbar's model. It is keyed (a sync.Map of string
// keys and a mutex per counter), reads the real clock itself, and counts
// denied requests too. sethvargo/go-limiter's memorystore anchors a tick
// grid at a key's first request and refills per tick: the nearest thing to
// a fixed window store among the peers. golang.org/x/time/rate, a token
// bucket, is the baseline every Go user knows. None takes an explicit
// time, so the side by side cases read the real clock; rolling's Take at
// an explicit time is listed too, to show what the clock read costs.
//
// The keyed peers are asked for one constant key: part of their cost is
// the map lookup that a keyed ratekit limiter will pay too.

// peer is one limiter under test: allow-heavy (huge limit) or deny-heavy
// (limit 1, spent before the clock starts).
type peer struct {
	name string
	new  func(b *testing.B, deny bool) func() bool
}

var rollingPeers = []peer{
	{"ratekit-rolling-Allow", func(b *testing.B, deny bool) func() bool {
		l := newRolling(b, deny)
		return l.Allow
	}},
	{"ratekit-rolling-Take-explicit-time", func(b *testing.B, deny bool) func() bool {
		l := newRolling(b, deny)
		now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
		return func() bool { return l.Take(now, 1).Allowed }
	}},
	{"ulule-memory", func(b *testing.B, deny bool) func() bool {
		limit := int64(math.MaxInt64)
		if deny {
			limit = 1
		}
		l := ulule.New(ululemem.NewStore(), ulule.Rate{Period: time.Hour, Limit: limit})
		ctx := context.Background()
		allow := func() bool {
			c, err := l.Get(ctx, "token")
			if err != nil {
				b.Fatal(err)
			}
			return !c.Reached
		}
		if deny {
			allow()
		}
		return allow
	}},
	{"sethvargo-memorystore", func(b *testing.B, deny bool) func() bool {
		tokens := uint64(1 << 62)
		if deny {
			tokens = 1
		}
		s, err := memorystore.New(&memorystore.Config{Tokens: tokens, Interval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close(context.Background()) })
		ctx := context.Background()
		allow := func() bool {
			_, _, _, ok, err := s.Take(ctx, "token")
			if err != nil {
				b.Fatal(err)
			}
			return ok
		}
		if deny {
			allow()
		}
		return allow
	}},
	{"x-time-rate", func(b *testing.B, deny bool) func() bool {
		l := rate.NewLimiter(rate.Limit(1e12), 1<<30)
		if deny {
			l = rate.NewLimiter(rate.Every(time.Hour), 1)
			l.Allow()
		}
		return l.Allow
	}},
}

func newRolling(b *testing.B, deny bool) *rolling.Limiter {
	limit := rolling.MaxLimit
	if deny {
		limit = 1
	}
	l, err := rolling.New(rolling.Config{Limit: limit, Window: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if deny {
		l.Allow()
	}
	return l
}

// BenchmarkRolling runs every peer on the same four workloads, in the same
// run: one goroutine or b.RunParallel's (vary them with -cpu), allow-heavy
// or deny-heavy. Each case checks it got the decisions it meant to measure.
func BenchmarkRolling(b *testing.B) {
	for _, w := range []struct {
		name     string
		parallel bool
		deny     bool
	}{
		{"serial-allow", false, false},
		{"serial-deny", false, true},
		{"parallel-allow", true, false},
		{"parallel-deny", true, true},
	} {
		b.Run(w.name, func(b *testing.B) {
			for _, p := range rollingPeers {
				b.Run(p.name, func(b *testing.B) {
					allow := p.new(b, w.deny)
					b.ReportAllocs()
					b.ResetTimer()
					if !w.parallel {
						for b.Loop() {
							if allow() == w.deny {
								b.Fatalf("%s: unexpected decision", p.name)
							}
						}
						return
					}
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if allow() == w.deny {
								panic(p.name + ": unexpected decision")
							}
						}
					})
				})
			}
		})
	}
}
