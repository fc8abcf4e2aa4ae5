package fixedwindow_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/model"
)

// fuzzEpochs are the clocks New reads to place a limiter's epoch: t0, and
// instants far from the times the fuzzer asks about (the zero time among
// them), where locate must work q out in 128 bits.
var fuzzEpochs = func() []*clock.Mock {
	var ms []*clock.Mock
	for _, at := range []time.Time{t0, {}, time.Unix(0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), t0.Add(-1000 * 24 * time.Hour)} {
		m := clock.NewMock()
		m.Set(at)
		ms = append(ms, m)
	}
	return ms
}()

// fuzzInput hands out the fuzzer's bytes as small choices; past the end it
// hands out zeros.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func pick[T any](in *fuzzInput, from []T) T { return from[int(in.byte())%len(from)] }

var (
	day = 24 * time.Hour
	// With the epoch at t0, every Limit goes, up to 1<<31, and Windows of a
	// second or more: the span is then at least 34 years either side, wider
	// than the ±30 years the fuzzer's clock wanders.
	nearLimits  = []int{1, 2, 3, 5, 60, 1000, wide(1 << 31)}
	nearWindows = []time.Duration{time.Second, 1500 * time.Millisecond, time.Minute, 5 * time.Minute,
		30 * time.Minute, time.Hour, day, 7 * day, 30 * day}
	// With the epoch far away, Limits up to 1000 leave a span of 2^52
	// windows, so a millisecond Window goes too.
	farLimits  = []int{1, 2, 3, 5, 60, 1000}
	farWindows = append([]time.Duration{time.Millisecond}, nearWindows...)
	// Offsets of both signs (the zone's offset east of UTC), beyond the
	// Window, and the extremes, whose negation the phase must not compute.
	offsets = []time.Duration{0, 0, time.Second, 250 * time.Millisecond, 5 * time.Hour, -time.Hour,
		-19 * time.Hour, 3*day + 5*time.Hour, 59 * time.Second, -1, -5 * time.Hour, -250 * time.Millisecond,
		math.MinInt64, math.MaxInt64}
	steps = []time.Duration{0, 0, 0, 1, time.Millisecond, 250 * time.Millisecond, 999 * time.Millisecond,
		time.Second, 7 * time.Second, 59 * time.Second, time.Minute, time.Hour, day, 7 * day, 30 * day, 400 * day,
		-1, -time.Millisecond, -time.Second, -time.Minute, -time.Hour, -day, -40 * day, -3 * 8766 * time.Hour}
)

// FuzzFixedWindow drives a Limiter and the reference model with the same
// operations at the same instants and requires the same Decisions, Idle
// answers and OnLimitReached calls. Reconfigure and a MarshalBinary round
// trip into a new limiter are among the operations.
func FuzzFixedWindow(f *testing.F) {
	f.Add([]byte{0, 4, 1, 1, 0, 0, 1, 1, 0, 7, 0, 8, 2, 0, 7, 3, 0, 1, 0, 9, 8, 5, 2, 3, 4, 6, 0, 0, 1, 10, 7})
	f.Add([]byte{1, 3, 2, 2, 1, 1, 0, 0, 0, 7, 0, 0, 1, 0, 7, 0, 16, 1, 0, 17, 7, 5, 4, 4, 4, 6, 12, 1})
	f.Add([]byte{0, 6, 6, 4, 1, 0, 0, 6, 0, 7, 0, 8, 0, 5, 1, 1, 6, 0, 2, 1, 18, 6, 0, 21, 2, 4, 22, 0, 0, 23, 7})
	f.Add([]byte{1, 1, 0, 9, 0, 0, 0, 1, 0, 1, 1, 0, 19, 3, 5, 0, 0, 6, 5, 0, 1, 7, 2, 9, 1, 0, 4, 7})
	// Daily windows of UTC+5 (Offset 5h, from 19:00 UTC) and UTC-5 (Offset
	// -5h, from 05:00 UTC), two units a day, one Take an hour: the sign of
	// Offset decides every ResetAfter.
	f.Add([]byte{0, 1, 6, 4, 1, 0, 0, 1, 0, 11, 1, 0, 11, 1, 0, 11, 1, 0, 11, 1, 0, 11, 1, 0, 11, 1, 0, 11, 1})
	f.Add([]byte{0, 1, 6, 10, 0, 0, 0, 1, 0, 12, 1, 0, 11, 1, 0, 11, 1, 0, 11, 1, 2, 11, 1, 0, 11, 1, 0, 11, 1})
	// The first and third again, from a Template (the high bit of the
	// first byte), and a far one that restores into a Template's limiter.
	f.Add([]byte{0x80, 4, 1, 1, 0, 0, 1, 1, 0, 7, 0, 8, 2, 0, 7, 3, 0, 1, 0, 9, 8, 5, 2, 3, 4, 6, 0, 0, 1, 10, 7})
	f.Add([]byte{0x80, 6, 6, 4, 1, 0, 0, 6, 0, 7, 0, 8, 0, 5, 1, 1, 6, 0, 2, 1, 18, 6, 0, 21, 2, 4, 22, 0, 0, 23, 7})
	f.Add([]byte{0x81, 1, 0, 9, 0, 0, 0, 1, 0, 1, 1, 0, 19, 3, 5, 0, 0, 6, 5, 0, 1, 7, 2, 9, 1, 0, 4, 7})
	f.Fuzz(fuzzFixedWindow)
}

func fuzzFixedWindow(t *testing.T, data []byte) {
	// The trace of operations is logged only with -v: formatting it costs
	// more than the operations. Re-run a failing input with -v to see it.
	logf := func(string, ...any) {}
	if testing.Verbose() {
		logf = t.Logf
	}
	in := &fuzzInput{b: data}
	first := in.byte()
	far := first%2 == 1
	// The high bit of the first byte: the limiter is a Template's, made
	// after a sibling that has used up its window and had OnLimitReached
	// called, none of which may show in l's decisions or notices.
	fromTemplate := first&0x80 != 0
	limits, windows, epoch := nearLimits, nearWindows, fuzzEpochs[0]
	if far {
		limits, windows, epoch = farLimits, farWindows, pick(in, fuzzEpochs)
	}
	calls := 0
	config := func() fixedwindow.Config {
		cfg := fixedwindow.Config{Limit: pick(in, limits), Window: pick(in, windows), Offset: pick(in, offsets),
			Name: "fuzz", Clock: epoch}
		if in.byte()%2 == 0 {
			cfg.OnLimitReached = func(ratekit.Decision) { calls++ }
		}
		return cfg
	}
	newLimiter := func(cfg fixedwindow.Config) *fixedwindow.Limiter {
		if !fromTemplate {
			l, err := fixedwindow.New(cfg)
			if err != nil {
				t.Fatalf("New(%+v): %v", cfg, err)
			}
			return l
		}
		tmpl, err := fixedwindow.NewTemplate(cfg)
		if err != nil {
			t.Fatalf("NewTemplate(%+v): %v", cfg, err)
		}
		sibling := tmpl.New()
		if !sibling.Take(t0, cfg.Limit).Allowed || sibling.Take(t0, 1).Allowed {
			t.Fatal("a new limiter of the Template was not fresh")
		}
		calls = 0 // the sibling's notice, which the model knows nothing of
		return tmpl.New()
	}
	cfg := config()
	l := newLimiter(cfg)
	m := model.NewFixedWindow(cfg.Limit, cfg.Window, cfg.Offset, cfg.Name, cfg.OnLimitReached != nil)
	logf("%+v, epoch %v", cfg, epoch.Now())

	now := t0
	const wander = 30 * 8766 * time.Hour
	for op := 0; len(in.b) > 0 && op < 100; op++ {
		kind, step, nsel := in.byte()%8, pick(in, steps), in.byte()
		if next := now.Add(step); next.Sub(t0) < wander && t0.Sub(next) < wander {
			now = next
		}
		limit := m.Peek(now, 0).Limit
		n := []int{0, 1, 1, 1, 2, 3, limit - 1, limit, limit + 1, -1, limit / 2}[int(nsel)%11]
		switch kind {
		case 0, 1:
			got, want := l.Take(now, n), m.Take(now, n)
			if got != want {
				t.Fatalf("op %d: Take(%v, %d)\n got  %v\n want %v", op, now, n, got, want)
			}
		case 2:
			got, want := l.Peek(now, n), m.Peek(now, n)
			if got != want {
				t.Fatalf("op %d: Peek(%v, %d)\n got  %v\n want %v", op, now, n, got, want)
			}
		case 3:
			l.Refund(now, n)
			m.Refund(now, n)
			logf("op %d: Refund(%v, %d)", op, now, n)
		case 4:
			if got, want := l.Idle(now), m.Idle(now); got != want {
				t.Fatalf("op %d: Idle(%v) = %v, want %v", op, now, got, want)
			}
		case 5:
			cfg = config()
			if err := l.Reconfigure(cfg); err != nil {
				t.Fatalf("op %d: Reconfigure(%+v): %v", op, cfg, err)
			}
			m.Reconfigure(cfg.Clock.Now(), cfg.Limit, cfg.Window, cfg.Offset, cfg.Name, cfg.OnLimitReached != nil)
			logf("op %d: Reconfigure(%+v)", op, cfg)
		case 6:
			b, err := l.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			restored := cfg
			restored.Clock = pick(in, fuzzEpochs)
			if !far {
				restored.Clock = fuzzEpochs[0]
			}
			notices := calls
			l = newLimiter(restored)
			calls = notices
			if err := l.UnmarshalBinary(b); err != nil {
				t.Fatalf("op %d: UnmarshalBinary(% x): %v", op, b, err)
			}
			logf("op %d: restored % x", op, b)
		case 7:
			got, want := l.Take(now, n), m.Take(now, n)
			if got != want {
				t.Fatalf("op %d: Take(%v, %d)\n got  %v\n want %v", op, now, n, got, want)
			}
			back := now.Add(-pick(in, steps[:10]))
			l.Refund(back, n)
			m.Refund(back, n)
		}
		if calls != m.Notices() {
			t.Fatalf("op %d: OnLimitReached called %d times, the model says %d", op, calls, m.Notices())
		}
	}
}

// FuzzUnmarshalBinary feeds arbitrary bytes to UnmarshalBinary. Whatever it
// accepts must leave a limiter whose Decisions are well-formed, and whose
// own encoding restores to the same decisions; whatever it rejects must
// wrap ratekit.ErrInvalidState and change nothing.
func FuzzUnmarshalBinary(f *testing.F) {
	f.Add(state(3, 1773838860, 0, uint64(time.Minute), 60))
	f.Add(state(1, -62135596800, 5, 1, 1<<31))
	f.Add(state(0, 0, 0, 0, 0))
	f.Add(state(1, 1<<62, 999999999, 1<<63-1, 1<<62))
	cfg := fixedwindow.Config{Limit: 60, Window: time.Minute, OnLimitReached: func(ratekit.Decision) {}}
	// The second round trip restores into a Template's limiter, which
	// keeps the shared parameters when the count fits them.
	tmpl := mustTemplate(f, cfg)
	f.Fuzz(func(t *testing.T, b []byte) {
		l := mustNew(t, cfg)
		l.Take(t0, 7)
		if err := l.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ratekit.ErrInvalidState) {
				t.Fatalf("error %v does not wrap ErrInvalidState", err)
			}
			if d := l.Peek(t0, 0); d.Remaining != 53 {
				t.Fatalf("a rejected state changed the limiter: %v", d)
			}
			return
		}
		again, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		r := tmpl.New()
		if err := r.UnmarshalBinary(again); err != nil {
			t.Fatalf("own encoding % x of accepted % x rejected: %v", again, b, err)
		}
		for _, at := range []time.Time{{}, t0.Add(-time.Hour), t0, t0.Add(time.Minute), t0.Add(1e6 * time.Hour)} {
			for _, n := range []int{0, 1, 60} {
				d, e := l.Peek(at, n), r.Peek(at, n)
				if d != e {
					t.Fatalf("Peek(%v, %d): %v, after a second round trip %v", at, n, d, e)
				}
				if d.Remaining < 0 || d.Remaining > 60 || d.Allowed != (d.RetryAfter == 0) || d.ResetAfter < 0 || d.RetryAfter < 0 {
					t.Fatalf("Peek(%v, %d): malformed %v", at, n, d)
				}
			}
			l.Take(at, 1)
			l.Refund(at, 1)
			l.Idle(at)
		}
	})
}
