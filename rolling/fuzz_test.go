package rolling_test

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/rolling"
)

// The values the fuzzer picks from, by index: small limits to reach
// denials often, and 2^40 to make the count field wide and the cell's reach
// short (2 ms), so that windows open in new cells as well as in place;
// MaxLimit makes it shortest (4 µs: a count field of 49 bits), where a
// stale Take, a window of a microsecond, or a Reconfigure down that carries
// a count above the new Limit into widened parameters leaves the reach.
var (
	fuzzLimits  = []int{1, 2, 3, 5, 8, wide(1 << 40), wide(rolling.MaxLimit)}
	fuzzWindows = []time.Duration{1, time.Microsecond, time.Millisecond, time.Second, time.Minute, 30 * 24 * time.Hour}
)

// fuzzStep moves the fuzzer's clock, as a fraction of the window around its
// edges, and sometimes backwards (stale times).
func fuzzStep(b byte, window time.Duration) time.Duration {
	switch b % 16 {
	case 0, 1, 2:
		return 0
	case 3:
		return 1
	case 4:
		return window - 1
	case 5:
		return window
	case 6:
		return window + 1
	case 7:
		return window / 2
	case 8:
		return window / 3
	case 9:
		return 2*window + 7
	case 10:
		return -1
	case 11:
		return -window / 2
	case 12:
		return -window - 1
	case 13:
		return time.Millisecond
	case 14:
		return time.Duration(b) * time.Microsecond
	}
	return 1 << 21 // the reach of a cell at Limit 2^40
}

// fuzzUnits picks n relative to the limit: zero, one, a few, all, too many,
// negative.
func fuzzUnits(b byte, limit int) int {
	switch b % 8 {
	case 0:
		return 0
	case 1, 2:
		return 1
	case 3:
		return 2
	case 4:
		return limit
	case 5:
		return limit + 1
	case 6:
		return -1
	}
	return max(1, limit/2)
}

// FuzzRolling drives a Limiter and the reference model with the same
// operations, three bytes each, and requires identical Decisions, Idle
// answers and OnLimitReached calls. The high bit of an operation's first
// byte, in the first operation, makes the Limiter a Template's, and in a
// restart (op 7), the Limiter restored into; in a Reconfigure (op 6) and a
// restart, its bits 3-6 pick the new Config's Clock (fuzzClock).
func FuzzRolling(f *testing.F) {
	f.Add([]byte{0, 1, 4, 0, 0, 1, 0, 5, 1, 1, 0, 0})
	f.Add([]byte{0x30, 5, 4, 0, 0, 4, 0, 0, 1, 2, 6, 4, 0, 5, 1, 3, 0, 1})
	f.Add([]byte{0x25, 0, 7, 0, 15, 4, 0, 0, 4, 0, 15, 4, 0, 10, 1, 0, 12, 1})
	f.Add([]byte{0, 2, 4, 0, 0, 4, 2, 0, 1, 4, 0, 0, 0, 12, 1, 0, 0, 4})
	// The same two, from a Template, and restored into a Template's limiter.
	f.Add([]byte{0x25, 0x80, 7, 0, 15, 4, 0, 0, 4, 0, 15, 4, 0x87, 10, 1, 0, 12, 1})
	f.Add([]byte{0, 0x82, 4, 0, 0, 4, 2, 0, 1, 0x87, 0, 0, 0x86, 12, 1, 0, 0, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 1 {
			return
		}
		calls := 0
		hook := func(ratekit.Decision) { calls++ }
		cfgFor := func(b byte) rolling.Config {
			cfg := rolling.Config{
				Limit:  fuzzLimits[int(b&0x0f)%len(fuzzLimits)],
				Window: fuzzWindows[int(b>>4)%len(fuzzWindows)],
				Name:   "fuzz",
			}
			if b&0x80 == 0 {
				cfg.OnLimitReached = hook
			}
			return cfg
		}
		cfg := cfgFor(ops[0])
		l := fuzzLimiter(t, cfg, len(ops) > 1 && ops[1]&0x80 != 0)
		m := model.NewRolling(cfg.Limit, cfg.Window, cfg.Name, cfg.OnLimitReached != nil)
		now := t0
		var taken []time.Time // instants of allowed Takes, for refunds
		for i := 1; i+2 < len(ops); i += 3 {
			op, a, b := ops[i], ops[i+1], ops[i+2]
			now = now.Add(fuzzStep(a, cfg.Window))
			n := fuzzUnits(b, cfg.Limit)
			switch op % 8 {
			case 0, 1, 2:
				got, want := l.Take(now, n), m.Take(now, n)
				if got != want {
					t.Fatalf("op %d: Take(+%v, %d) = %v; model %v", i, now.Sub(t0), n, got, want)
				}
				if got.Allowed && n > 0 {
					taken = append(taken, now)
				}
			case 3:
				if got, want := l.Peek(now, n), m.Peek(now, n); got != want {
					t.Fatalf("op %d: Peek(+%v, %d) = %v; model %v", i, now.Sub(t0), n, got, want)
				}
			case 4:
				at := now
				if len(taken) > 0 && b&1 == 0 {
					at = taken[int(b>>1)%len(taken)]
				}
				l.Refund(at, n)
				m.Refund(at, n)
			case 5:
				if got, want := l.Idle(now), m.Idle(now); got != want {
					t.Fatalf("op %d: Idle(+%v) = %v; model %v", i, now.Sub(t0), got, want)
				}
			case 6:
				cfg = cfgFor(b)
				cfg.Clock = fuzzClock(op>>3, now)
				if err := l.Reconfigure(cfg); err != nil {
					t.Fatal(err)
				}
				// The model reads the instant of the change as the limiter
				// did: a shorter Window may restart the window there.
				m.Reconfigure(cfg.Clock.Now(), cfg.Limit, cfg.Window, cfg.Name, cfg.OnLimitReached != nil)
			case 7:
				// A restart: the state moves to a new Limiter, of another
				// epoch if its clock is another.
				state, err := l.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				cfg.Clock = fuzzClock(op>>3, now)
				l = fuzzLimiter(t, cfg, op&0x80 != 0)
				if err := l.UnmarshalBinary(state); err != nil {
					t.Fatalf("op %d: UnmarshalBinary of MarshalBinary's output: %v", i, err)
				}
				m.Restored()
			}
			if calls != m.Notified {
				t.Fatalf("op %d: OnLimitReached called %d times; model %d", i, calls, m.Notified)
			}
		}
	})
}

// fuzzClock returns the Clock a limiter reads its epoch from, by c: a mock
// at the fuzzer's present, a century before it or two after it; and, for c
// from 24 on, one where time.Time.Sub from the epoch saturates at the
// fuzzer's present (so a nanosecond earlier, or later, reads as that
// bound) or three centuries either side of it (so every time the fuzzer
// passes does). Decisions depend only on the times passed in, and on a
// Reconfigure's reading of it, so they must not change with the epoch
// otherwise; two centuries is more than the 146 years a Reconfigure keeps
// the limiter's epoch across, so the state's times are then converted to
// the new epoch, and the limiter moves its epoch to the windows that
// three centuries put beyond its reading (see holds in state.go). Never the real
// clock: a Reconfigure to a shorter Window may restart the window at the
// instant it reads, so its reading decides, and the model must read the
// same one (with the real clock, a window restarted at today's date made
// the corpus pass or fail by the day it ran, and the model's later
// reading missed the limiter's by microseconds).
func fuzzClock(c byte, now time.Time) clock.Clock {
	m := clock.NewMock()
	if c >= 24 {
		switch c % 4 {
		case 0:
			m.Set(now.Add(math.MaxInt64))
		case 1:
			m.Set(now.Add(math.MinInt64))
		case 2:
			m.Set(now.AddDate(-300, 0, 0))
		default:
			m.Set(now.AddDate(300, 0, 0))
		}
		return m
	}
	switch c % 3 {
	case 1:
		m.Set(now.AddDate(-100, 0, 0))
	case 2:
		m.Set(now.AddDate(200, 0, 0))
	default:
		m.Set(now)
	}
	return m
}

// fuzzLimiter returns a new Limiter of cfg: New's, or a Template's made
// after a sibling that has taken all it can, which must not show in the
// Limiter's decisions (the model knows nothing of it).
func fuzzLimiter(t *testing.T, cfg rolling.Config, template bool) *rolling.Limiter {
	if !template {
		return mustNew(t, cfg)
	}
	tmpl := mustTemplate(t, cfg)
	if !tmpl.New().Take(t0, cfg.Limit).Allowed {
		t.Fatal("a new limiter of the Template had no room")
	}
	return tmpl.New()
}

// windowState is a version 3 state: count, the start in Unix seconds and
// nanoseconds, flags and the Window in ns; used gives the header's bytes.
func windowState(used []byte, count uint64, sec int64, nsec, flags, window uint64) []byte {
	b := []byte{used[0], used[1], used[2], 3}
	b = binary.AppendUvarint(b, count)
	b = binary.AppendVarint(b, sec)
	b = binary.AppendUvarint(b, nsec)
	b = binary.AppendUvarint(b, flags)
	return binary.AppendUvarint(b, window)
}

// FuzzUnmarshal feeds UnmarshalBinary arbitrary bytes: it never panics,
// rejects with ErrInvalidState leaving the limiter unchanged, and a state it
// accepts is usable at any time and marshals to a fixed point.
func FuzzUnmarshal(f *testing.F) {
	l := mustNew(f, rolling.Config{Limit: 3, Window: time.Hour})
	fresh, _ := l.MarshalBinary()
	l.Take(t0, 2)
	used, _ := l.MarshalBinary()
	f.Add(fresh)
	f.Add(used)
	v1 := []byte{used[0], used[1], used[2], 1}
	f.Add(append(v1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0x01, 0x00)) // MaxLimit
	// Version 1 as the code before version 3 wrote it: count 2, t0, flags 0.
	f.Add(binary.AppendUvarint(binary.AppendVarint(binary.AppendUvarint(v1, 2), t0.UnixNano()), 0))
	// Version 3: count 2 at t0 saved under a Window of a day, a minute, a
	// nanosecond and 2^63-1 ns.
	for _, w := range []uint64{24 * 3600e9, 60e9, 1, math.MaxInt64} {
		f.Add(windowState(used, 2, t0.Unix(), uint64(t0.Nanosecond()), 0, w))
	}
	f.Add(windowState(used, 3, math.MaxInt64-62_135_596_800, 999_999_999, 1, math.MaxInt64)) // the last instant
	// Version 2: count 1, a start of 2263-01-01 in Unix seconds, 5 ns, flags 1.
	f.Add(binary.AppendUvarint(binary.AppendUvarint(binary.AppendVarint(binary.AppendUvarint(
		[]byte{used[0], used[1], used[2], 2}, 1), time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), 5), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
		l.Take(t0, 1)
		before := l.Peek(t0, 1)
		if err := l.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ratekit.ErrInvalidState) {
				t.Fatalf("error %v does not wrap ErrInvalidState", err)
			}
			if after := l.Peek(t0, 1); after != before {
				t.Fatalf("a rejected state changed the limiter: %v, then %v", before, after)
			}
			return
		}
		for _, now := range []time.Time{{}, t0, t0.Add(100 * 365 * 24 * time.Hour), time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)} {
			for _, n := range []int{0, 1, 3} {
				if d := l.Take(now, n); d.RetryAfter < 0 || d.ResetAfter < 0 || d.Remaining < 0 || d.Remaining > 3 {
					t.Fatalf("after restoring % x: Take(%v, %d) = %v", b, now, n, d)
				}
			}
			l.Refund(now, 1)
			l.Idle(now)
		}
		once, _ := l.MarshalBinary()
		r := mustNew(t, rolling.Config{Limit: 3, Window: time.Hour})
		if err := r.UnmarshalBinary(once); err != nil {
			t.Fatalf("MarshalBinary's own output % x rejected: %v", once, err)
		}
		if twice, _ := r.MarshalBinary(); string(twice) != string(once) {
			t.Fatalf("marshal is not a fixed point: % x, then % x", once, twice)
		}
	})
}
