package concurrency_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
	"github.com/ratekit/ratekit/internal/core"
	"github.com/ratekit/ratekit/internal/model"
)

// fuzzSteps are the time steps between fuzzed operations: none, tiny,
// around the sampling spacing and hold scales, past the 24h interval cap,
// and backwards.
var fuzzSteps = []time.Duration{
	0, 0, 0, 1, time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	time.Millisecond, 7 * time.Millisecond, 250 * time.Millisecond, time.Second,
	13 * time.Second, time.Minute, time.Hour, 25 * time.Hour,
	-time.Millisecond, -time.Hour,
}

// FuzzModel drives a Limiter and the reference model in internal/model
// with the same operations, Acquire callers included, and requires the same
// Decisions, the same held count and queue, and the same Acquire outcomes.
// Each input runs in a synctest bubble, so every queued Acquire goroutine
// has reached its select (or returned) before the next operation, and the
// bubble fails the input if one is left behind.
func FuzzModel(f *testing.F) {
	f.Add(byte(9), []byte{0, 5, 1, 4, 8, 0, 4, 3, 0, 2, 4, 9, 6, 0, 3, 1, 0, 2, 5, 1, 0, 8, 0, 5}, int64(0))
	f.Add(byte(2), []byte{4, 1, 7, 4, 2, 0, 4, 1, 0, 7, 9, 0, 6, 0, 0, 6, 1, 0, 7, 0, 4}, int64(0))
	f.Add(byte(15), []byte{0, 15, 0, 2, 3, 9, 0, 1, 10, 0, 1, 12, 1, 3, 0, 3, 1, 0, 0, 200, 255}, int64(0))
	f.Add(byte(4), []byte{4, 2, 0, 4, 9, 0, 4, 1, 0, 5, 1, 0, 6, 0, 3, 7, 2, 5, 6, 1, 0, 8, 0, 0, 0, 3, 4}, int64(0))
	// 5 units taken, then TryAcquire(2) and Release(2) 36 times 7ms apart
	// (op 0 with b/17 odd is TryAcquire): the count crosses 64 with units
	// held, so TryAcquire samples the hold time, and Peek's estimates
	// after it are checked against the model's.
	f.Add(byte(9), []byte{0, 6, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1,
		0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0,
		3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3,
		24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24,
		2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1,
		0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0,
		3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 0, 3, 24, 2, 1, 0, 1, 1, 0,
		1, 10, 0}, int64(0))
	// The same with Take(2), 1ms and 7ms apart by turns (b = 7, 8), so
	// that samples differ: the Take that carries the count past 64 must
	// count it, or its interval's sample is lost.
	takes := []byte{0, 6, 0}
	for i := range 36 {
		takes = append(takes, 0, 3, byte(7+i%2), 2, 1, 0)
	}
	f.Add(byte(9), append(takes, 1, 1, 0, 1, 10, 0), int64(0))
	f.Fuzz(func(t *testing.T, limitByte byte, ops []byte, wide int64) {
		if len(ops) > 600 {
			ops = ops[:600]
		}
		synctest.Test(t, func(t *testing.T) { runModel(t, 1+int(limitByte%16), ops, wide) })
	})
}

// fuzzN decodes the count of a Take, Peek or Acquire from its op's byte
// a: below 0xe0 a small count around the limit (-1 to limit+1); the top 32
// values count over the whole int range (issue #16: n near MaxInt wrapped
// held+n), first edge values, then wide rotated, so that one fuzzed int64
// yields counts of every magnitude.
func fuzzN(a byte, wide int64, limit int) int {
	if a < 0xe0 {
		return int(a)%(limit+3) - 1
	}
	edges := [...]int{math.MaxInt, math.MaxInt - 1, math.MaxInt/2 + 1, math.MaxInt - limit,
		math.MaxInt - limit + 1, math.MinInt, math.MinInt + 1, asInt(1 << 31), 1<<31 - 1,
		asInt(1 << 32), asInt(1<<32 - 1), -limit, math.MinInt + limit}
	k := int(a - 0xe0)
	if k < len(edges) {
		return edges[k]
	}
	return int(bits.RotateLeft64(uint64(wide), 3*(k-len(edges))))
}

// asInt is int(v), wrapped to int's width at run time (the same value on
// 64-bit platforms; on 32-bit ones, where v may not fit, its low bits).
func asInt(v uint64) int { return int(v) }

// fuzzCaller is an Acquire call in FuzzModel.
type fuzzCaller struct {
	*acquirer
	id      int
	holding bool // returned with the units
	ended   bool // returned with an error, or released
}

func runModel(t *testing.T, limit int, ops []byte, wide int64) {
	clk := &testClock{}
	l, err := concurrency.New(concurrency.Config{Limit: limit, Name: "fz", Clock: clk})
	require.NoError(t, err)
	m := model.NewConcurrency(limit, "fz", t0)
	now := t0
	direct := 0 // units held by Takes
	var callers []*fuzzCaller
	find := func(pick byte, want func(*fuzzCaller) bool) *fuzzCaller {
		var cs []*fuzzCaller
		for _, c := range callers {
			if want(c) {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return nil
		}
		return cs[int(pick)%len(cs)]
	}
	queued := func(c *fuzzCaller) bool { return !c.holding && !c.ended }
	// granted checks that exactly the callers ids were let in, in the
	// model's order, by the operation just done.
	granted := func(step int, ids []int) {
		for _, c := range callers {
			if !queued(c) {
				continue
			}
			want := slices.Contains(ids, c.id)
			if c.returned() != want {
				t.Fatalf("step %d: caller %d (n=%d) returned=%v, model granted=%v", step, c.id, c.n, c.returned(), want)
			}
			if want {
				require.NoError(t, c.err, "step %d: caller %d", step, c.id)
				c.holding = true
			}
		}
	}

	for i := 0; i+2 < len(ops); i += 3 {
		op, a, b := ops[i]%9, ops[i+1], ops[i+2]
		now = now.Add(fuzzSteps[int(b)%len(fuzzSteps)])
		at := now
		if b == 255 {
			at = time.Time{}
		}
		clk.Set(now)
		desc := fmt.Sprintf("step %d op %d a %d at +%v", i/3, op, a, at.Sub(t0))
		switch op {
		case 0, 1: // Take, Peek
			n := fuzzN(a, wide, m.Limit)
			var got, want ratekit.Decision
			if op == 0 && b != 255 && b/17%2 == 1 {
				// TryAcquire, timed by the clock: Take's Allowed.
				ok := l.TryAcquire(n)
				require.Equal(t, m.TryAcquire(clk.Now(), n), ok, "%s: TryAcquire(%d)", desc, n)
				if ok && n > 0 {
					direct += n
				}
				break
			}
			if op == 0 {
				got, want = l.Take(at, n), m.Take(at, n)
				if got.Allowed && n > 0 {
					direct += n
				}
			} else {
				got, want = l.Peek(at, n), m.Peek(at, n)
			}
			if got != want {
				t.Fatalf("%s: n=%d\n got  %v\n want %v", desc, n, got, want)
			}
		case 2: // Release units taken by Take
			if direct == 0 {
				continue
			}
			n := 1 + int(a)%direct
			l.Release(n)
			synctest.Wait()
			ids, ok := m.Release(clk.Now(), n)
			require.True(t, ok, desc)
			direct -= n
			granted(i/3, ids)
		case 3: // Release more than held: refused, counted, no change
			n := m.Held + 1 + int(a)%3
			if a%5 == 0 {
				n = -1 - int(a)%3
			}
			if w := fuzzN(a, wide, m.Limit); a >= 0xe0 && (w < 0 || w > m.Held) {
				n = w
			}
			before, rejected := l.Peek(at, 1), l.RejectedReleases()
			require.NotPanics(t, func() { l.Release(n) }, desc)
			synctest.Wait()
			_, ok := m.Release(clk.Now(), n)
			require.False(t, ok, desc)
			require.Equal(t, before, l.Peek(at, 1), desc)
			require.Equal(t, rejected+1, l.RejectedReleases(), desc)
		case 4: // Acquire
			if len(callers) >= 40 {
				continue
			}
			n := fuzzN(a, wide, m.Limit)
			c := &fuzzCaller{acquirer: goAcquire(l, t.Context(), n), id: len(callers)}
			callers = append(callers, c)
			took, fail := m.Enqueue(clk.Now(), c.id, n)
			switch {
			case fail:
				require.True(t, c.returned(), desc)
				require.ErrorIs(t, c.err, ratekit.ErrExceedsLimit, desc)
				c.ended = true
			case took:
				require.True(t, c.returned(), "%s: Acquire(%d) should not wait", desc, n)
				require.NoError(t, c.err, desc)
				c.holding = true
			default:
				require.False(t, c.returned(), "%s: Acquire(%d) should wait", desc, n)
			}
		case 5: // cancel a queued caller
			c := find(a, queued)
			if c == nil {
				continue
			}
			c.cancel()
			synctest.Wait()
			require.True(t, c.returned(), desc)
			require.ErrorIs(t, c.err, context.Canceled, desc)
			c.ended = true
			granted(i/3, m.Cancel(clk.Now(), c.id))
		case 6: // a holding caller releases (twice, sometimes)
			c := find(a, func(c *fuzzCaller) bool { return c.holding && !c.ended })
			if c == nil {
				continue
			}
			c.release()
			if b%2 == 1 {
				c.release()
			}
			c.ended = true
			synctest.Wait()
			ids, ok := m.Release(clk.Now(), c.n)
			require.True(t, ok, desc)
			granted(i/3, ids)
		case 7: // Reconfigure
			limit := 1 + int(a)%16
			require.NoError(t, l.Reconfigure(concurrency.Config{Limit: limit, Name: "fz", Clock: clk}))
			synctest.Wait()
			failed, ids := m.Reconfigure(clk.Now(), limit, "fz")
			for _, c := range callers {
				if slices.Contains(failed, c.id) {
					require.True(t, c.returned(), desc)
					require.ErrorIs(t, c.err, ratekit.ErrExceedsLimit, desc)
					c.ended = true
				}
			}
			granted(i/3, ids)
		case 8: // save and restore the estimate
			saved, err := l.MarshalBinary()
			require.NoError(t, err)
			want := binary.AppendUvarint(core.AppendHeader(nil, core.Concurrency, 1), uint64(m.Hold))
			require.Equal(t, want, saved, desc)
			require.NoError(t, l.UnmarshalBinary(saved))
			m.Restore(m.Hold)
		}
		require.Equal(t, m.Held, l.Held(), desc)
		require.Equal(t, m.Waiting(), l.Waiting(), desc)
		require.Equal(t, m.Idle(), l.Idle(at), desc)
		for _, n := range []int{1, m.Limit} {
			if got, want := l.Peek(at, n), m.Peek(at, n); got != want {
				t.Fatalf("%s: Peek(%d) after it\n got  %v\n want %v", desc, n, got, want)
			}
		}
	}
	// Leave nothing behind: the bubble requires every goroutine to end.
	for _, c := range callers {
		if queued(c) {
			c.cancel()
		}
	}
	synctest.Wait()
	for _, c := range callers {
		if c.holding && !c.ended {
			c.release()
		}
		c.cancel()
	}
}

// FuzzUnmarshalBinary feeds arbitrary bytes to UnmarshalBinary: it never
// panics; it either fails with ErrInvalidState, changing nothing, or
// restores an estimate that the Limiter then uses within its bounds.
func FuzzUnmarshalBinary(f *testing.F) {
	f.Add([]byte("rk\x06\x01\x00"))
	f.Add([]byte("rk\x06\x01\x80\x94\xeb\xdc\x03"))
	f.Add([]byte("rk\x06\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte("rk\x05\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, _ := mustNew(t, 3, "")
		require.True(t, l.Take(t0, 3).Allowed)
		before := l.Peek(t0, 1)
		if err := l.UnmarshalBinary(b); err != nil {
			require.ErrorIs(t, err, ratekit.ErrInvalidState)
			require.Equal(t, before, l.Peek(t0, 1))
			return
		}
		d := l.Peek(t0, 1)
		require.GreaterOrEqual(t, d.RetryAfter, ratekit.MinRetry)
		require.LessOrEqual(t, d.RetryAfter, 24*time.Hour)
		require.Equal(t, 3, l.Held())
		again, err := l.MarshalBinary()
		require.NoError(t, err)
		r, _ := mustNew(t, 3, "")
		require.NoError(t, r.UnmarshalBinary(again))
		require.True(t, r.Take(t0, 3).Allowed)
		require.Equal(t, d, r.Peek(t0, 1))
	})
}
