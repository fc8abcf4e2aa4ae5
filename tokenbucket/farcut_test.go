package tokenbucket_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

// These tests hold the restore mark and the bound on stamps Z when the
// epoch moves back (a Take before the fast range) or a Reconfigure places
// it centuries before them: more than 2^62/q ns after the new epoch, they
// were cut to that bound, and the next move of the epoch forward (a Take
// near them) carried the cut value, below the Takes it stood for. A
// Refund of one of those Takes then gave back units the model keeps.

// yearMax is an instant in the last year time.Time spells, more than 292
// years after t0 (time.Time.Sub saturates).
var yearMax = time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC)

// TestFarMoveKeepsRestoreMark: a limiter that took at yearMax restores a
// full state (its mark: yearMax), then takes in year 1 (the epoch moves
// back; the mark was cut to 4.6 s after year 1) and drains at yearMax +
// 1 ns (the epoch moves forward again; the mark was put at the fast
// range's bound, 1.15 s before). A Refund of the Take at yearMax, from
// before the restore, must give nothing: before the fix it gave back all
// but 1 ns of the drain (49.99 units), so the bucket was full at yearMax +
// 2 ns, where the model admits none.
func TestFarMoveKeepsRestoreMark(t *testing.T) {
	f := newFarTwin(t, t0)
	f.take(yearMax, 1)
	full, err := mustNew(t, fineCfg(atT0())).MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, f.l.UnmarshalBinary(full))
	f.m.Restore(model.NewTokenBucket(999_999_937, time.Second, 50, "fine", t0))
	require.True(t, f.take(time.Time{}, 1).Allowed)
	require.True(t, f.take(yearMax.Add(1), 50).Allowed)
	f.l.Refund(yearMax, 50)
	f.m.Refund(yearMax, 50)
	f.peek(yearMax.Add(2), 50)
	f.peek(yearMax.Add(2), 1)
	require.False(t, f.take(yearMax.Add(2), 1).Allowed, "drained at yearMax + 1 ns; the refunded Take was restored away")
}

// TestFarReconfigureKeepsStamps: a Take 300 years after t0, then a
// Reconfigure to another rate with the clock in year 1: Z, the Take's
// stamp plus the new Burst's refill (see carryZ), was cut to 4.6 s after
// year 1. A drain 1 ns after the Take moved the epoch forward and Z with
// it, to that drain's stamp, so a Refund of the Take from before the change
// gave back all but 1 ns of the 7 units the drain took (the model: none, as
// the change was to the rate): the bucket was full 2 ns after the Take,
// where the model admits none.
func TestFarReconfigureKeepsStamps(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 2, Window: 30 * day, Burst: 4, Name: "z", Clock: atT0()}
	l := mustNew(t, cfg)
	m := model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	far := t0.AddDate(300, 0, 0)
	require.Equal(t, m.Take(far, 1), l.Take(far, 1))
	fine := tokenbucket.Config{Limit: 999_999_937, Window: 3 * time.Second, Burst: 7, Name: "z", Clock: &setClock{now: time.Time{}}}
	require.NoError(t, l.Reconfigure(fine))
	m.Reconfigure(time.Time{}, fine.Limit, fine.Window, fine.Burst, fine.Name)
	d := l.Take(far.Add(1), 7)
	require.Equal(t, m.Take(far.Add(1), 7), d)
	require.True(t, d.Allowed)
	l.Refund(far, 7)
	m.Refund(far, 7)
	for _, n := range []int{1, 6, 7} {
		require.Equal(t, m.Peek(far.Add(2), n), l.Peek(far.Add(2), n), "Peek(far + 2ns, %d)", n)
	}
	require.False(t, l.Take(far.Add(2), 1).Allowed, "drained at far + 1 ns; the refunded Take is from before the change of rate")
}

// TestFarWaitKeepsRestoreMark is TestFarMoveKeepsRestoreMark with the
// Take in year 1 made by Wait, on a clock there: it moved the epoch back
// as Take did, cutting the mark alike.
func TestFarWaitKeepsRestoreMark(t *testing.T) {
	f := newFarTwin(t, t0)
	f.take(yearMax, 1)
	full, err := mustNew(t, fineCfg(atT0())).MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, f.l.UnmarshalBinary(full))
	f.m.Restore(model.NewTokenBucket(999_999_937, time.Second, 50, "fine", t0))
	f.clk.Set(time.Time{})
	d, err := f.l.Wait(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, f.m.Take(time.Time{}, 1), d)
	require.True(t, f.take(yearMax.Add(1), 50).Allowed)
	f.l.Refund(yearMax, 50)
	f.m.Refund(yearMax, 50)
	f.peek(yearMax.Add(2), 1)
}

// These hold a restore mark that a move of the epoch forward leaves before
// the fast range: it was kept at the range's bound, later than the Takes
// it stands for, so a Refund of a Take stamped between the two, after the
// restore, gave nothing back, and Idle said false at times the mark no
// longer concerns; the model, exact, gives back and says true.

// TestFarPastMarkRefund: a limiter took in year 1 (its mark once
// restored), then restored a state drained 300 years after t0, which moved
// its epoch there, the mark with it, to 36 years before; a Refund of a
// Take stamped in 1770, after the mark, gives back an hour's unit (the
// model), where it gave none.
func TestFarPastMarkRefund(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 2, Name: "m", Clock: atT0()}
	l, m := mustNew(t, cfg), model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	require.Equal(t, m.Take(time.Time{}, 1), l.Take(time.Time{}, 1))
	far := t0.AddDate(300, 0, 0)
	saver, sm := mustNew(t, cfg), model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	require.Equal(t, sm.Take(far, 2), saver.Take(far, 2))
	state, err := saver.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, l.UnmarshalBinary(state))
	m.Restore(sm)
	at := time.Date(1770, 6, 20, 13, 12, 15, 0, time.UTC)
	l.Refund(at, 1)
	m.Refund(at, 1)
	for _, now := range []time.Time{far, far.Add(time.Hour), at} {
		require.Equal(t, m.Peek(now, 1), l.Peek(now, 1), "Peek(%v, 1)", now)
	}
}

// TestFarPastMarkIdle: a limiter that took at t0 restores its own state
// (the mark: t0) and is reconfigured with its clock 300 years on, which
// moves its epoch there and the mark with it; at t0 + 1 day, full and a
// day after the mark, it is idle (the model), where it said false.
func TestFarPastMarkIdle(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 2, Name: "m", Clock: atT0()}
	l, m := mustNew(t, cfg), model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	require.Equal(t, m.Take(t0, 1), l.Take(t0, 1))
	state, err := l.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, l.UnmarshalBinary(state))
	m.Restore(m.Clone())
	far := t0.AddDate(300, 0, 0)
	c := cfg
	c.Clock = &setClock{now: far}
	require.NoError(t, l.Reconfigure(c))
	m.Reconfigure(far, c.Limit, c.Window, c.Burst, c.Name)
	for _, now := range []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(day), far} {
		require.Equal(t, m.Idle(now), l.Idle(now), "Idle(%v)", now)
	}
}

// TestFarAllowNAtClock: AllowN is Take(clock.Now(), n).Allowed at any
// clock reading. Read 292 years and more from the epoch, since saturates,
// and AllowN decided at the epoch plus the saturated reading (1733), not
// at the clock's (year 1): a limiter holding, by a restore it could not
// move its epoch back for (its mark, at t0), a bucket drained an hour into
// year 1 admitted a Burst at year 1, where Take (and the model) deny it.
func TestFarAllowNAtClock(t *testing.T) {
	l, m, clk := drainedInYear1(t)
	y1 := time.Time{}.Add(time.Hour)
	require.Equal(t, m.Peek(clk.now, 3), l.Peek(clk.now, 3))
	require.Equal(t, m.Take(clk.now, 3).Allowed, l.AllowN(3), "AllowN(3) with the clock in year 1, an hour before a drain")
	require.Equal(t, m.Take(clk.now, 1).Allowed, l.Allow(), "Allow with the clock in year 1")
	for _, at := range []time.Time{clk.now, y1, y1.Add(3 * time.Minute), t0.Add(math.MinInt64)} {
		require.Equal(t, m.Peek(at, 3), l.Peek(at, 3), "Peek(%v, 3)", at)
	}
}

// drainedInYear1 returns a limiter of Burst 3, one a minute, that took at
// t0 and then restored a state drained at year 1 + 1 h, its model, and its
// Config's clock, set to year 1: the mark (t0) keeps the epoch at t0, and
// the TAT is kept exactly before the fast range (see past).
func drainedInYear1(t *testing.T) (*tokenbucket.Limiter, *model.TokenBucket, *setClock) {
	cfg := tokenbucket.Config{Limit: 1, Window: time.Minute, Burst: 3, Name: "c"}
	clk := &setClock{now: t0}
	cfg.Clock = clk
	l, m := mustNew(t, cfg), model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	require.Equal(t, m.Take(t0, 1), l.Take(t0, 1))
	y1 := time.Time{}.Add(time.Hour)
	saver, sm := mustNew(t, cfg), model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	require.Equal(t, sm.Take(y1, 3), saver.Take(y1, 3))
	state, err := saver.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, l.UnmarshalBinary(state))
	m.Restore(sm)
	clk.now = time.Time{}
	return l, m, clk
}

// TestFarWaitDecisions: Wait of 0 units, or of more than Burst, reports
// what Take would at the clock's reading, exactly at a time before the
// fast range too. It decided those at the range's bound, where the bucket
// kept before it is full: Remaining 3 and ResetAfter 0 at year 1, an hour
// before a drain, where the model says 0 and 1h3m.
func TestFarWaitDecisions(t *testing.T) {
	l, m, clk := drainedInYear1(t)
	d, err := l.Wait(context.Background(), 0)
	require.NoError(t, err)
	require.Equal(t, m.Peek(clk.now, 0), d, "Wait(0)")
	d, err = l.Wait(context.Background(), 4)
	require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
	require.Equal(t, m.Peek(clk.now, 4), d, "Wait(4)")
}
