package persist_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// algorithm is a ratekit algorithm as the round-trip tests use it.
type algorithm struct {
	name string
	// new returns a fresh limiter with a window of window (if it has one).
	new func(tb testing.TB, window time.Duration) persist.Limiter
	// exercise takes from l around t0 so that its state is not fresh.
	exercise func(l persist.Limiter)
	// timed: decisions depend on time (not a concurrency limit, whose held
	// units belong to the process and are not saved).
	timed bool
}

// algorithms lists every algorithm on this branch.
var algorithms = []algorithm{
	{
		name: "rolling",
		new: func(tb testing.TB, w time.Duration) persist.Limiter {
			return mustRolling(tb, 10, w)
		},
		exercise: func(l persist.Limiter) {
			l.Take(t0, 3)
			l.Take(t0.Add(time.Second), 4)
		},
		timed: true,
	},
	{
		name: "fixedwindow",
		new: func(tb testing.TB, w time.Duration) persist.Limiter {
			l, err := fixedwindow.New(fixedwindow.Config{Limit: 10, Window: w, Name: "window"})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		},
		exercise: func(l persist.Limiter) {
			l.Take(t0, 4)
			l.Take(t0.Add(20*time.Minute), 3)
		},
		timed: true,
	},
	{
		name: "tokenbucket",
		new: func(tb testing.TB, w time.Duration) persist.Limiter {
			l, err := tokenbucket.New(tokenbucket.Config{Limit: 10, Window: w, Burst: 5, Name: "bucket"})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		},
		exercise: func(l persist.Limiter) {
			l.Take(t0, 4)
			l.Take(t0.Add(6*time.Minute), 2)
		},
		timed: true,
	},
	{
		name: "slidingwindow.Log",
		new: func(tb testing.TB, w time.Duration) persist.Limiter {
			l, err := slidingwindow.NewLog(slidingwindow.Config{Limit: 10, Window: w, Name: "log"})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		},
		exercise: func(l persist.Limiter) {
			for i := range 7 {
				l.Take(t0.Add(time.Duration(i)*7*time.Minute), 1)
			}
		},
		timed: true,
	},
	{
		name: "slidingwindow.Counter",
		new: func(tb testing.TB, w time.Duration) persist.Limiter {
			l, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 10, Window: w, Name: "counter"})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		},
		exercise: func(l persist.Limiter) {
			l.Take(t0, 4)
			l.Take(t0.Add(50*time.Minute), 3)
			l.Take(t0.Add(70*time.Minute), 2)
		},
		timed: true,
	},
	{
		name: "concurrency",
		new: func(tb testing.TB, _ time.Duration) persist.Limiter {
			l, err := concurrency.New(concurrency.Config{Limit: 10})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		},
		exercise: func(l persist.Limiter) {
			// Holds of 2s each build a hold-time estimate, which is saved.
			c := l.(*concurrency.Limiter)
			for i := range 50 {
				c.Take(t0.Add(time.Duration(i)*time.Second), 1)
				if i >= 2 {
					c.Release(1)
				}
			}
		},
	},
}

// Every algorithm's state survives a restart through a real bbolt file, as
// a single limiter and in a keyed set: the restored limiter marshals to the
// same bytes and decides as the original does, now and after its windows
// end (downtime counts as elapsed time).
func TestAlgorithmsRoundTrip(t *testing.T) {
	const window = time.Hour
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			path := tempPath(t)
			s := mustOpen(t, path, persist.Options{})
			single := alg.new(t, window)
			set := newSet(func(string) persist.Limiter { return alg.new(t, window) })
			if err := s.Attach("single", single); err != nil {
				t.Fatal(err)
			}
			if err := persist.AttachKeyed(s, "set", set, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			alg.exercise(single)
			alg.exercise(set.Get("a"))
			set.Get("fresh")
			mustClose(t, s)

			s = mustOpen(t, path, persist.Options{})
			single2 := alg.new(t, window)
			set2 := newSet(func(string) persist.Limiter { return alg.new(t, window) })
			if err := s.Attach("single", single2); err != nil {
				t.Fatal(err)
			}
			if err := persist.AttachKeyed(s, "set", set2, persist.StringKey{}); err != nil {
				t.Fatal(err)
			}
			if set2.Len() != 2 {
				t.Errorf("restored %d keys, want 2", set2.Len())
			}
			pairs := []struct {
				name          string
				was, restored persist.Limiter
			}{
				{"single", single, single2},
				{"key a", set.Get("a"), set2.Get("a")},
				{"fresh key", set.Get("fresh"), set2.Get("fresh")},
			}
			for _, p := range pairs {
				b1, _ := p.was.MarshalBinary()
				b2, _ := p.restored.MarshalBinary()
				if !bytes.Equal(b1, b2) {
					t.Errorf("%s: restored state %x, saved %x", p.name, b2, b1)
				}
				if !alg.timed {
					continue
				}
				for _, at := range []time.Duration{0, time.Second, 30 * time.Minute, window, window + 2*time.Second, 30 * 24 * time.Hour} {
					for _, n := range []int{0, 1, 3, 10} {
						now := t0.Add(at)
						if got, want := p.restored.Peek(now, n), p.was.Peek(now, n); got != want {
							t.Errorf("%s: Peek(t0+%v, %d) = %v, want %v", p.name, at, n, got, want)
						}
					}
				}
			}
		})
	}
}

// The state of one algorithm, restored into another (the program changed a
// name's algorithm between runs), is skipped with an error wrapping
// ratekit.ErrInvalidState, and the limiter is left fresh.
func TestAlgorithmsRejectForeignStates(t *testing.T) {
	for _, from := range algorithms {
		for _, to := range algorithms {
			if from.name == to.name {
				continue
			}
			t.Run(from.name+"→"+to.name, func(t *testing.T) {
				path := tempPath(t)
				s := mustOpen(t, path, persist.Options{})
				l := from.new(t, time.Hour)
				s.Attach("x", l)
				from.exercise(l)
				mustClose(t, s)

				s = mustOpen(t, path, persist.Options{})
				l = to.new(t, time.Hour)
				err := s.Attach("x", l)
				if !errors.Is(err, persist.ErrSkipped) || !errors.Is(err, ratekit.ErrInvalidState) {
					t.Fatalf("Attach: %v, want an error wrapping ErrSkipped and ErrInvalidState", err)
				}
				got, _ := l.MarshalBinary()
				fresh, _ := to.new(t, time.Hour).MarshalBinary()
				if !bytes.Equal(got, fresh) {
					t.Errorf("the limiter changed: %x, fresh %x", got, fresh)
				}
			})
		}
	}
}
