package persist_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// glitch is a clock glitch: a Take stamped a hundred years ahead.
const glitch = 100 * 365 * 24 * time.Hour

// timeAlgorithms makes, for each algorithm whose state is time, a fresh
// limiter of 10 units a minute. (A concurrency limiter holds units until
// they are released, whatever the time.)
var timeAlgorithms = []struct {
	name string
	new  func() persist.Limiter
}{
	{"tokenbucket", func() persist.Limiter {
		return valid(tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Minute, Burst: 10}))
	}},
	{"fixedwindow", func() persist.Limiter {
		return valid(fixedwindow.New(fixedwindow.Config{Limit: 10, Window: time.Minute}))
	}},
	{"rolling", func() persist.Limiter {
		return valid(rolling.New(rolling.Config{Limit: 10, Window: time.Minute}))
	}},
	{"slidingwindow.Log", func() persist.Limiter {
		return valid(slidingwindow.NewLog(slidingwindow.Config{Limit: 10, Window: time.Minute}))
	}},
	{"slidingwindow.Counter", func() persist.Limiter {
		return valid(slidingwindow.NewCounter(slidingwindow.Config{Limit: 10, Window: time.Minute}))
	}},
}

// valid returns l; the configs above are valid, so err is nil.
func valid[L persist.Limiter](l L, err error) persist.Limiter {
	if err != nil {
		panic(err)
	}
	return l
}

// poison takes all of l at a hundred years ahead and checks that l then
// refuses at the true time: the glitch errs on the safe side, and blocks.
func poison(t *testing.T, l ratekit.Limiter) {
	t.Helper()
	if d := l.Take(t0.Add(glitch), 10); !d.Allowed {
		t.Fatalf("Take stamped 100 years ahead: %v", d)
	}
	if d := l.Peek(t0, 1); d.Allowed {
		t.Fatalf("after a Take stamped 100 years ahead, Peek at the true time allows: %v", d)
	}
}

// A Take stamped far in the future (a clock glitch) blocks its limiter
// until then. The way out, documented in the package overview, is to
// replace the state: Keyed.Delete for a key of a keyed set, or
// UnmarshalBinary of a fresh limiter's state for a single limiter. The
// next checkpoint then deletes or overwrites the saved state, so a restart
// does not bring the glitch back.
func TestFutureTakeWayOut(t *testing.T) {
	for _, alg := range timeAlgorithms {
		t.Run(alg.name+"/keyed", func(t *testing.T) {
			path := tempPath(t)
			s := mustOpen(t, path, persist.Options{})
			set := newSet(func(string) persist.Limiter { return alg.new() })
			if err := persist.AttachKeyed(s, "set", set, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			poison(t, set.Get("k"))
			set.Take(t0, "other", 3)
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}

			if !set.Delete("k") {
				t.Fatal("Delete found no limiter")
			}
			if d := set.Take(t0, "k", 10); !d.Allowed {
				t.Fatalf("after Delete, Take at the true time: %v", d)
			}
			set.Delete("k") // the state saved from here on is the fresh one
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			persist.Abandon(s) // a crash: the file is what the checkpoints wrote

			s = mustOpen(t, path, persist.Options{})
			set = newSet(func(string) persist.Limiter { return alg.new() })
			if err := persist.AttachKeyed(s, "set", set, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			if d := set.Take(t0, "k", 10); !d.Allowed {
				t.Errorf("after a restart, Take at the true time: %v", d)
			}
			if got := used(set.Get("other"), t0); got != 3 {
				t.Errorf("the other key was restored with %d used, want 3", got)
			}
		})

		t.Run(alg.name+"/single", func(t *testing.T) {
			path := tempPath(t)
			s := mustOpen(t, path, persist.Options{})
			l := alg.new()
			if err := s.Attach("l", l); err != nil {
				t.Fatal(err)
			}
			poison(t, l)
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}

			fresh, err := alg.new().MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if err := l.UnmarshalBinary(fresh); err != nil {
				t.Fatalf("UnmarshalBinary of a fresh state: %v", err)
			}
			if d := l.Peek(t0, 10); !d.Allowed {
				t.Fatalf("after restoring a fresh state, Peek at the true time: %v", d)
			}
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			persist.Abandon(s)

			s = mustOpen(t, path, persist.Options{})
			l = alg.new()
			if err := s.Attach("l", l); err != nil {
				t.Fatal(err)
			}
			if d := l.Take(t0, 10); !d.Allowed {
				t.Errorf("after a restart, Take at the true time: %v", d)
			}
		})
	}
}
