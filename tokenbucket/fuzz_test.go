package tokenbucket_test

import (
	"math"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

// fuzzClasses are the configurations the fuzz test switches between, in
// classes of like time scale q. A class's span keeps every time
// FuzzTokenBucket uses within 2^59/q ns of the start, so that it stays
// within the fast path's 2^60/q ns of any epoch the limiter moves to;
// FuzzFarSpans widens it.
var fuzzClasses = []struct {
	span time.Duration
	cfgs []tokenbucket.Config
}{
	{ // q <= 7
		span: 1 << 59 / 7,
		cfgs: []tokenbucket.Config{
			{Limit: 10, Window: time.Second, Burst: 10},
			{Limit: 7, Window: 10 * time.Second, Burst: 3},
			{Limit: 3, Window: 10, Burst: 2}, // 3 per 10 ns: an interval of 3.33 ns
			{Limit: 1, Window: 30 * day, Burst: 4},
			{Limit: 1e9, Window: time.Second, Burst: wide(1 << 40)},
			{Limit: 7, Window: time.Minute, Burst: 1},
			{Limit: 60, Window: time.Minute, Burst: 60},
		},
	},
	{ // q near 2^30: the fast path covers about a second
		span: 1 << 59 / 999_999_937,
		cfgs: []tokenbucket.Config{
			{Limit: 999_999_937, Window: time.Second, Burst: 5},
			{Limit: 999_999_937, Window: 3 * time.Second, Burst: 1000},
			{Limit: 1 << 29, Window: 7, Burst: 1 << 20}, // 2^29 per 7 ns
			{Limit: 2, Window: time.Millisecond, Burst: 3},
		},
	},
}

var fuzzSteps = []time.Duration{0, 0, 1, 2, 3, 7, 999, time.Microsecond, 1428571428, 1428571429,
	time.Millisecond, 100 * time.Millisecond, time.Second, time.Minute, time.Hour, 30 * day}

// setClock is a clock.Clock whose Now is set by the test (clock.Mock.Set
// sleeps a millisecond, which would slow the fuzzer down a hundredfold). Only
// Now is implemented: New and Reconfigure read nothing else.
type setClock struct {
	clock.Clock
	now time.Time
}

func (c *setClock) Now() time.Time { return c.now }

// fuzzEpoch returns the clock reading a limiter takes its epoch from,
// chosen by bits 1 to 3 of the input's first byte: the fuzzer's present,
// t0; or one where time.Time.Sub from the epoch saturates at t0 (so a
// nanosecond earlier, or later, reads as that bound); three centuries
// either side of t0 (so every time the fuzzer passes does); or three
// spans either side (every time is beyond the fast range, and the epoch
// not far). Decisions depend only on the times passed in, and on the
// clock's reading at a Reconfigure or a restart (t0 and later), so they
// must not change with it: the limiter moves its epoch back to a Take
// before its fast range, or forward to one after.
func fuzzEpoch(first int, span time.Duration) time.Time {
	switch (first >> 1) & 7 {
	case 1:
		return t0.Add(math.MaxInt64)
	case 2:
		return t0.Add(math.MinInt64)
	case 3:
		return t0.AddDate(300, 0, 0)
	case 4:
		return t0.AddDate(-300, 0, 0)
	case 5:
		return t0.Add(3 * span)
	case 6:
		return t0.Add(-3 * span)
	}
	return t0
}

// FuzzTokenBucket drives a Limiter and the exact model with the same
// operations, decoded from the input, and requires identical Decisions from
// Take and Peek and identical answers from Idle. Reconfigure and a
// MarshalBinary/UnmarshalBinary round trip into a new limiter are among the
// operations; they read the clock, which the test sets to the latest time it
// has used (a clock does not run backwards, though the times passed to Take
// may).
func FuzzTokenBucket(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 4, 5, 0, 3})
	f.Add([]byte{0, 2, 0, 1, 0, 1, 2, 4, 9, 0, 0, 5, 6, 1, 3, 7, 0, 2})
	f.Add([]byte{1, 0, 0, 3, 4, 2, 0, 1, 5, 1, 6, 2, 0, 3, 7, 0})
	f.Add([]byte{0, 4, 0, 4, 0, 1, 4, 1, 0, 5, 2, 4, 8, 0, 3, 6, 4, 7})
	f.Add([]byte{1, 2, 0, 3, 4, 3, 0, 5, 4, 6, 1, 0, 2, 4, 12, 0, 1})
	f.Add([]byte{0x81, 2, 0, 3, 4, 3, 0, 5, 4, 6, 1, 0, 2, 4, 12, 0, 1}) // the same, from a Template
	f.Add([]byte{0x80, 4, 0, 4, 0, 1, 4, 1, 0, 5, 2, 4, 8, 0, 3, 6, 4, 7})
	// Take 1, restore its own state, Take 1, refund 1 at the first Take's
	// instant (marked: nothing comes back), drain.
	f.Add([]byte{0, 0, 3, 0, 1, 8, 0, 3, 0, 1, 5, 0, 1, 0, 3, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) { checkTokenBucket(t, data, 1) })
}

// FuzzFarSpans is FuzzTokenBucket with each class's span 8 times as wide:
// times up to 4 fast ranges (2^60/q ns) either side of the start, so that
// Takes move the epoch forward and back over and over, and Reconfigure,
// Refund and restore (into a new limiter, and into itself) meet TATs,
// stamps and restore marks kept before the fast range (see far.go), which
// the model decides as any others.
func FuzzFarSpans(f *testing.F) {
	f.Add([]byte{1, 0, 0, 3, 4, 2, 0, 1, 5, 1, 6, 2, 0, 3, 7, 0})
	f.Add([]byte{1, 2, 0, 3, 4, 3, 0, 5, 4, 6, 1, 0, 2, 4, 12, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) { checkTokenBucket(t, data, 8) })
}

// checkTokenBucket is the fuzz tests' body: data decodes to a class, a
// configuration and up to 200 operations, at times within widen times the
// class's span of the start.
func checkTokenBucket(t *testing.T, data []byte, widen time.Duration) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	first := next()
	class := fuzzClasses[first%len(fuzzClasses)]
	span := class.span * widen
	cfg := class.cfgs[next()%len(class.cfgs)]
	mock := &setClock{now: fuzzEpoch(first, span)}
	cfg.Clock = mock
	var l *tokenbucket.Limiter
	if first&0x80 == 0 {
		var err error
		if l, err = tokenbucket.New(cfg); err != nil {
			t.Fatal(err)
		}
	} else {
		// The high bit of the first byte: a Template's limiter, made after
		// a sibling that has taken all it can, which must not show in l's
		// decisions (the model knows nothing of it).
		tmpl, err := tokenbucket.NewTemplate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !tmpl.New().Take(t0, cfg.Burst).Allowed {
			t.Fatal("a new limiter of the Template was not full")
		}
		l = tmpl.New()
	}
	mock.now = t0 // the epoch read, the clock is the fuzzer's present
	m := model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	now, latest := t0, t0 // latest: the clock, which never runs backwards
	units := func() int {
		switch v := next(); v % 8 {
		case 0:
			return 0
		case 1, 2:
			return 1
		case 3:
			return cfg.Burst
		case 4:
			return cfg.Burst + 1
		case 5:
			return -1
		case 6:
			return 1 + v%max(1, min(cfg.Burst, 9))
		default:
			return cfg.Burst - 1
		}
	}
	for steps := 0; len(data) > 0 && steps < 200; steps++ {
		op := next() % 9
		d := fuzzSteps[next()%len(fuzzSteps)]
		switch op {
		case 0, 1: // later
			now = now.Add(d)
		case 2: // earlier: a stale time
			now = now.Add(-d)
		}
		if now.Sub(t0) > span {
			now = t0.Add(span)
		} else if now.Sub(t0) < -span {
			now = t0.Add(-span)
		}
		if now.After(latest) {
			latest = now
		}
		switch op {
		case 0, 2, 3:
			n := units()
			if got, want := l.Take(now, n), m.Take(now, n); got != want {
				t.Fatalf("%+v: Take(%v, %d)\n got  %v\n want %v", cfg, now.Sub(t0), n, got, want)
			}
		case 1, 4:
			n := units()
			if got, want := l.Peek(now, n), m.Peek(now, n); got != want {
				t.Fatalf("%+v: Peek(%v, %d)\n got  %v\n want %v", cfg, now.Sub(t0), n, got, want)
			}
		case 5:
			n := units()
			at := now.Add(-fuzzSteps[next()%len(fuzzSteps)] / 4)
			if at.Sub(t0) < -span {
				at = t0.Add(-span)
			}
			l.Refund(at, n)
			m.Refund(at, n)
		case 6:
			if got, want := l.Idle(now), m.Idle(now); got != want {
				t.Fatalf("%+v: Idle(%v) = %v; the model says %v", cfg, now.Sub(t0), got, want)
			}
		case 7:
			nc := class.cfgs[next()%len(class.cfgs)]
			nc.Name = string(rune('a' + next()%3))
			nc.Clock = mock
			mock.now = latest
			if err := l.Reconfigure(nc); err != nil {
				t.Fatal(err)
			}
			m.Reconfigure(latest, nc.Limit, nc.Window, nc.Burst, nc.Name)
			cfg = nc
		case 8:
			b, err := l.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if d == 0 {
				// Restored into itself: the Takes it admitted are marked,
				// and a Refund stamped at or before the latest of them
				// gives nothing back (see UnmarshalBinary), in the model
				// too.
				if err := l.UnmarshalBinary(b); err != nil {
					t.Fatalf("UnmarshalBinary of MarshalBinary's output: %v", err)
				}
				m.Restore(m.Clone())
				break
			}
			mock.now = latest // a restart: the new process's epoch
			r, err := tokenbucket.New(l.Config())
			if err != nil {
				t.Fatal(err)
			}
			if err := r.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary of MarshalBinary's output: %v", err)
			}
			l = r
			// r never took: its state is the restored one, and no Refund
			// stamped before a Take of its own is marked. The model is
			// restored into a new model alike.
			saved := m.Clone()
			m = model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
			m.Restore(saved)
		}
	}
}
