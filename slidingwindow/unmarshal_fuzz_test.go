package slidingwindow_test

import (
	"encoding"
	"math"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/slidingwindow"
)

// restorable is the Log and the Counter as this fuzzer drives them.
type restorable interface {
	ratekit.Limiter
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// FuzzUnmarshalCrafted feeds arbitrary bytes to the Log's and the
// Counter's UnmarshalBinary, in limiters that have taken. A state it
// accepts must leave a limiter that never panics, reports Remaining in
// [0, Limit], admits at most Limit units at any one instant (a restored
// state may be over-full, never more than empty), and whose MarshalBinary
// is a fixed point: restored into a new limiter and marshalled again, it
// is the same bytes, and that limiter decides every Peek as the first does,
// at stale instants too (the Log saves every unit its ring holds and its
// lost mark, so a restore forgets nothing a stale time counts). Seeds are
// real states, which the fuzzer mutates, a Log's with a lost mark (format
// version 2) among them.
func FuzzUnmarshalCrafted(f *testing.F) {
	const limit, window = 5, time.Minute
	cfg := slidingwindow.Config{Limit: limit, Window: window}
	newLog := func(tb testing.TB) restorable {
		l, err := slidingwindow.NewLog(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return l
	}
	newCounter := func(tb testing.TB) restorable {
		c, err := slidingwindow.NewCounter(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	for _, mk := range []func(testing.TB) restorable{newLog, newCounter} {
		for _, at := range []time.Duration{0, window / 2, 3 * window} {
			l := mk(f)
			l.Take(fuzzStart, 2)
			l.Take(fuzzStart.Add(at), 3)
			b, err := l.MarshalBinary()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, byte(0))
			f.Add(b, byte(1))
		}
	}
	// A Log with a lost mark: its ring full at fuzzStart, one unit taken
	// two windows on overwrites a unit, whose instant is the mark.
	lost := newLog(f)
	lost.Take(fuzzStart, limit)
	lost.Take(fuzzStart.Add(2*window), 1)
	b, err := lost.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, byte(0))
	// Counter states of other Windows, which a restore carries as
	// Reconfigure does: a second's and an hour's, and one whose window
	// ends past the last int64 Unix nanosecond.
	for _, w := range []time.Duration{time.Second, time.Hour} {
		other, err := slidingwindow.NewCounter(slidingwindow.Config{Limit: 9, Window: w})
		if err != nil {
			f.Fatal(err)
		}
		other.Take(fuzzStart.Add(-w), 4)
		other.Take(fuzzStart, 5)
		b, err := other.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, byte(1))
	}
	f.Add(counterState(time.Second, math.MaxInt64/int64(time.Second)*int64(time.Second), 1, 0), byte(1))
	// A Counter's last window, which never ends (a Take 80 years ahead, a
	// clock glitch): version 2 with flag 4 (cutLast); a Log's units at its
	// last instant: version 3, with and without a lost mark.
	for i, mk := range []func(testing.TB) restorable{newLog, newCounter} {
		glitch := mk(f)
		glitch.Take(fuzzStart, 2)
		glitch.Take(fuzzStart.AddDate(80, 0, 0), 3)
		if b, err = glitch.MarshalBinary(); err != nil {
			f.Fatal(err)
		}
		f.Add(b, byte(i))
	}
	lostGlitch := newLog(f)
	lostGlitch.Take(fuzzStart, limit)
	lostGlitch.Take(fuzzStart.Add(2*window), 1)
	lostGlitch.Take(fuzzStart.AddDate(80, 0, 0), 2)
	if b, err = lostGlitch.MarshalBinary(); err != nil {
		f.Fatal(err)
	}
	f.Add(b, byte(0))
	instants := []time.Time{
		fuzzStart, fuzzStart.Add(-window / 2), fuzzStart.Add(window / 3), fuzzStart.Add(2 * window),
		fuzzStart.AddDate(-80, 0, 0), fuzzStart.AddDate(80, 0, 0), {},
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, b []byte, which byte) {
		mk := newLog
		if which&1 == 1 {
			mk = newCounter
		}
		l := mk(t)
		l.Take(fuzzStart, 1)
		if err := l.UnmarshalBinary(b); err != nil {
			return
		}
		saved, err := l.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary after restoring %x: %v", b, err)
		}
		twin := mk(t)
		if err := twin.UnmarshalBinary(saved); err != nil {
			t.Fatalf("UnmarshalBinary of MarshalBinary's output %x (restored from %x): %v", saved, b, err)
		}
		if again, err := twin.MarshalBinary(); err != nil || string(again) != string(saved) {
			t.Fatalf("restored from %x: MarshalBinary %x; restored from that and marshalled again, %x (%v)", b, saved, again, err)
		}
		for _, at := range instants {
			for n := 0; n <= limit; n++ {
				d := l.Peek(at, n)
				if d.Remaining < 0 || d.Remaining > limit {
					t.Fatalf("restored from %x: Peek(%v, %d) = %v: Remaining outside [0, %d]", b, at, n, d, limit)
				}
				if td := twin.Peek(at, n); td != d {
					t.Fatalf("restored from %x: Peek(%v, %d) = %v; restored from its MarshalBinary %x, %v", b, at, n, d, saved, td)
				}
			}
		}
		for _, at := range instants {
			got := 0
			for l.Take(at, 1).Allowed {
				if got++; got > limit {
					t.Fatalf("restored from %x: more than Limit %d admitted at %v", b, limit, at)
				}
			}
			l.Refund(at, got)
		}
	})
}
