package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	goLimiter "github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
	ululeLimiter "github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/ratekit/ratekit/fixedwindow"
)

// The fixed-window peers, side by side with ratekit's fixedwindow. What each
// actually implements (read from their source at the pinned versions):
//
//   - github.com/ulule/limiter/v3, memory store: a counter per key that
//     starts at the first request after the previous one expired and
//     expires Period later. The window is anchored to the first event (as
//     ratekit's rolling package is), not aligned to the clock. Every Get
//     increments the counter, denied requests included, under a per-key
//     RWMutex in a sync.Map; it reads time.Now itself and builds the
//     prefixed key string on every call.
//   - github.com/sethvargo/go-limiter, memorystore: a bucket per key whose
//     windows ("ticks") are counted from the bucket's creation, so aligned
//     to nothing the caller chooses; the refill is computed in floating
//     point; one token per Take, under a per-key mutex behind an RWMutex'd
//     map; it reads the wall clock itself.
//   - ratekit fixedwindow: windows aligned to Unix time, one atomic word,
//     no lock, n units per call, explicit time or Allow on the clock.
//
// So the comparison is like for like in cost per admitted or denied request
// on one hot key, but not in semantics: neither peer aligns windows to the
// clock, ulule counts denials, and both are keyed stores whereas a ratekit
// Limiter is one key. The ratekit/keyed case adds a sync.Map lookup by
// string key before Allow, which is the part of the peers' cost a ratekit
// user with many keys also pays. All cases read the real clock.

// fixedWindowPeer makes a limiter that allows `limit` per hour and returns
// its "allow one request for key" function.
type fixedWindowPeer struct {
	name string
	new  func(b *testing.B, limit int) func() bool
}

const hotKey = "org:42"

var fixedWindowPeers = []fixedWindowPeer{
	{"ratekit", func(b *testing.B, limit int) func() bool {
		l := mustFixedWindow(b, limit)
		return l.Allow
	}},
	{"ratekit-keyed", func(b *testing.B, limit int) func() bool {
		var keys sync.Map
		keys.Store(hotKey, mustFixedWindow(b, limit))
		return func() bool {
			l, _ := keys.Load(hotKey)
			return l.(*fixedwindow.Limiter).Allow()
		}
	}},
	{"ulule-memory", func(b *testing.B, limit int) func() bool {
		l := ululeLimiter.New(memory.NewStore(), ululeLimiter.Rate{Period: time.Hour, Limit: int64(limit)})
		ctx := context.Background()
		return func() bool {
			c, err := l.Get(ctx, hotKey)
			return err == nil && !c.Reached
		}
	}},
	{"sethvargo-memorystore", func(b *testing.B, limit int) func() bool {
		s, err := memorystore.New(&memorystore.Config{Tokens: uint64(limit), Interval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close(context.Background()) })
		return takeOne(s)
	}},
}

func takeOne(s goLimiter.Store) func() bool {
	ctx := context.Background()
	return func() bool {
		_, _, _, ok, err := s.Take(ctx, hotKey)
		return err == nil && ok
	}
}

func mustFixedWindow(b *testing.B, limit int) *fixedwindow.Limiter {
	l, err := fixedwindow.New(fixedwindow.Config{Limit: limit, Window: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkFixedWindow runs each peer on one hot key:
//   - serial-allow: one goroutine, every request admitted;
//   - parallel-allow: every goroutine (-cpu) on the same key, all admitted;
//   - parallel-deny: the same with the window used up, all denied.
func BenchmarkFixedWindow(b *testing.B) {
	const plenty = 1 << 40 // never reached within a benchmark
	for _, sc := range []struct {
		name     string
		limit    int
		parallel bool
		want     bool
	}{
		{"serial-allow", plenty, false, true},
		{"parallel-allow", plenty, true, true},
		{"parallel-deny", 1, true, false},
	} {
		for _, p := range fixedWindowPeers {
			b.Run("case="+sc.name+"/peer="+p.name, func(b *testing.B) {
				allow := p.new(b, sc.limit)
				if sc.limit == 1 {
					allow() // use up the window
				}
				if allow() != sc.want {
					b.Fatalf("%s: want allowed=%v", p.name, sc.want)
				}
				b.ReportAllocs()
				if !sc.parallel {
					for b.Loop() {
						allow()
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						allow()
					}
				})
			})
		}
	}
}
