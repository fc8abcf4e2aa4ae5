package tokenbucket_test

import (
	"context"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/tokenbucket"
)

// These tests hold the TAT a Reconfigure or a Refund leaves before the
// fast range (more than 2^60/q ns before the epoch: 1.15
// s at q = 999999937), which the limiter keeps exactly for the times
// before that range (see far.go): each compares the limiter with the exact
// model at a time there, where a TAT dropped as "full since forever" admits
// a whole Burst the model denies.

// fineCfg is a bucket whose fast range is 1152921577 ns either side of
// its epoch: an interval of 1e9/999999937 ns, Burst 50 (50.000003 ns).
func fineCfg(clk clock.Clock) tokenbucket.Config {
	return tokenbucket.Config{Limit: 999_999_937, Window: time.Second, Burst: 50, Name: "fine", Clock: clk}
}

// fineRange is fineCfg's fast range in ns: 2^60/999999937, rounded down.
const fineRange = 1152921577

// farTwin is a limiter and the model of the same Config, driven together.
type farTwin struct {
	t   *testing.T
	l   *tokenbucket.Limiter
	m   *model.TokenBucket
	clk *clock.Mock
}

func newFarTwin(t *testing.T, at time.Time) *farTwin {
	clk := clock.NewMock()
	clk.Set(at)
	cfg := fineCfg(clk)
	return &farTwin{t: t, l: mustNew(t, cfg), m: model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0), clk: clk}
}

// take requires the limiter's Take to decide as the model's.
func (f *farTwin) take(at time.Time, n int) ratekit.Decision {
	f.t.Helper()
	got, want := f.l.Take(at, n), f.m.Take(at, n)
	require.Equal(f.t, want, got, "Take(t0 + %v, %d)", at.Sub(t0), n)
	return got
}

// peek requires the limiter's Peek and Idle to answer as the model's.
func (f *farTwin) peek(at time.Time, n int) {
	f.t.Helper()
	require.Equal(f.t, f.m.Peek(at, n), f.l.Peek(at, n), "Peek(t0 + %v, %d)", at.Sub(t0), n)
	require.Equal(f.t, f.m.Idle(at), f.l.Idle(at), "Idle(t0 + %v)", at.Sub(t0))
}

// TestFarPastThroughReconfigure: a Reconfigure 10 s after a drained
// bucket's Take, to Burst 40 at the same rate, carries its TAT (t0 + 50
// ns) to before the new parameters' range (their epoch is the Clock's
// reading).
func TestFarPastThroughReconfigure(t *testing.T) {
	f := reconfiguredFar(t)
	for _, at := range []time.Duration{-1, 0, 10, 30, 40, 41} {
		f.peek(t0.Add(at), 40)
		f.peek(t0.Add(at), 19)
	}
	require.False(t, f.take(t0.Add(30), 20).Allowed, "20 ns of the bucket are empty at t0+30ns")
	require.True(t, f.take(t0.Add(30), 19).Allowed)
	f.peek(t0.Add(31), 1)
}

// reconfiguredFar is a bucket drained at t0 (full at t0 + 50 ns) and
// reconfigured to Burst 40 at t0 + 10 s: full at t0 + 50 ns still, before
// the new parameters' fast range.
func reconfiguredFar(t *testing.T) *farTwin {
	f := newFarTwin(t, t0)
	require.True(t, f.take(t0, 50).Allowed)
	f.clk.Set(t0.Add(10 * time.Second))
	cfg := fineCfg(f.clk)
	cfg.Burst = 40
	require.NoError(t, f.l.Reconfigure(cfg))
	f.m.Reconfigure(f.clk.Now(), cfg.Limit, cfg.Window, cfg.Burst, cfg.Name)
	return f
}

// TestFarPastMarshal: the TAT kept before the fast range is what
// MarshalBinary writes, not a bucket full since forever.
func TestFarPastMarshal(t *testing.T) {
	f := reconfiguredFar(t)
	b, err := f.l.MarshalBinary()
	require.NoError(t, err)
	r := newFarTwin(t, t0.Add(10*time.Second))
	require.NoError(t, r.l.UnmarshalBinary(b))
	r.m.Restore(f.m.Clone())
	r.peek(t0.Add(30), 50)
	require.False(t, r.take(t0.Add(30), 31).Allowed, "20 ns of the bucket are empty at t0+30ns")
	require.True(t, r.take(t0.Add(30), 29).Allowed)
}

// TestFarPastRefund: a Refund stamped 1 s before a restored limiter's fast
// range gives back 5 units of a TAT just inside it (t0 + 3.16 ns: the
// restored bucket was drained at t0 - 46.84 ns), and leaves the TAT before
// the range, where a Take at t0 - 10 ns finds it still 8 ns from full.
func TestFarPastRefund(t *testing.T) {
	saver := newFarTwin(t, t0)
	require.True(t, saver.take(t0.Add(-50+3), 50).Allowed) // TAT t0 + 3.000003 ns
	b, err := saver.l.MarshalBinary()
	require.NoError(t, err)
	// Restored where the TAT is 1152921574 ns (3 ns less than the range)
	// before the epoch: in range, not moved.
	f := newFarTwin(t, t0.Add(fineRange))
	require.NoError(t, f.l.UnmarshalBinary(b))
	f.m.Restore(saver.m.Clone())
	f.l.Refund(t0.Add(-time.Second), 5)
	f.m.Refund(t0.Add(-time.Second), 5)
	for _, at := range []time.Duration{-20, -10, -3, -2, 0, 3} {
		f.peek(t0.Add(at), 50)
	}
	require.False(t, f.take(t0.Add(-10), 50).Allowed)
	require.True(t, f.take(t0.Add(-10), 40).Allowed)
}

// TestFarPastTakeAll: TakeAll at a time before a member's fast range
// decides as Take does there (Joint defers it to Take), all or none.
func TestFarPastTakeAll(t *testing.T) {
	f, g := reconfiguredFar(t), newFarTwin(t, t0)
	d := ratekit.TakeAll(t0.Add(30), 20, g.l, f.l)
	require.False(t, d.Allowed, "20 ns of f's bucket are empty at t0+30ns: %v", d)
	g.peek(t0.Add(30), 50)
	f.peek(t0.Add(30), 19)
	d = ratekit.TakeAll(t0.Add(30), 19, g.l, f.l)
	require.True(t, d.Allowed, "%v", d)
	require.True(t, f.m.Take(t0.Add(30), 19).Allowed)
	require.True(t, g.m.Take(t0.Add(30), 19).Allowed)
	f.peek(t0.Add(30), 1)
	g.peek(t0.Add(30), 31)
}

// TestFarPastRestoreMarked: a state drained at t0 restored, at t0 + 10 s,
// into a limiter that took at t0 + 10 s, more than 3*2^60/q units after the
// state's TAT (3.46 s): the epoch cannot move back to the TAT and keep the
// restore mark in range, so it stays, and the TAT is kept before the fast
// range, exactly: the saver's times admit what the saver's would (on main
// they admitted nothing), and the marked Take's refund gives nothing.
func TestFarPastRestoreMarked(t *testing.T) {
	saver := newFarTwin(t, t0)
	require.True(t, saver.take(t0, 50).Allowed)
	b, err := saver.l.MarshalBinary()
	require.NoError(t, err)
	f := newFarTwin(t, t0.Add(10*time.Second))
	require.True(t, f.take(t0.Add(10*time.Second), 1).Allowed)
	require.NoError(t, f.l.UnmarshalBinary(b))
	f.m.Restore(saver.m.Clone())
	f.l.Refund(t0.Add(10*time.Second), 1)
	f.m.Refund(t0.Add(10*time.Second), 1)
	for _, at := range []time.Duration{0, 30, 50, 51} {
		f.peek(t0.Add(at), 29)
		f.peek(t0.Add(at), 50)
	}
	require.False(t, f.take(t0.Add(30), 31).Allowed)
	require.True(t, f.take(t0.Add(30), 29).Allowed)
	f.peek(t0.Add(10*time.Second), 50)
}

// TestFarPastWaitExceeds: Wait of more than Burst, its Clock reading a time
// before the fast range (reconfiguredFar's, set back to t0 + 30 ns),
// returns ErrExceedsLimit with the denial Take meets there: 19 remain,
// full in 21 ns.
func TestFarPastWaitExceeds(t *testing.T) {
	f := reconfiguredFar(t)
	f.clk.Set(t0.Add(30))
	for _, n := range []int{41, -1} {
		d, err := f.l.Wait(context.Background(), n)
		require.ErrorIs(t, err, ratekit.ErrExceedsLimit)
		require.Equal(t, f.m.Peek(t0.Add(30), n), d, "Wait(%d)", n)
	}
}

// TestFarPastKeyed: Keyed.Take, which decides in the table's slot, defers
// a time before the fast range to the Limiter's Take (TakeSlot declines
// it). A key made at t0 + 10 s (by Get: a Take that makes the key is
// the Limiter's own) takes 25 at t0 and then 25 at t0 - 1 s, a stale
// time: the model denies the second (the bucket is empty from 1 s before
// the first); a slot that read both times at the range's bound took them
// as one instant and admitted it.
func TestFarPastKeyed(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(t0.Add(10 * time.Second))
	cfg := fineCfg(clk)
	k := ratekit.NewKeyed(func(string) *tokenbucket.Limiter { return mustNew(t, cfg) }, ratekit.KeyedConfig{})
	k.Get("a")
	m := model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0)
	for _, st := range []struct {
		at time.Duration
		n  int
	}{{0, 25}, {-time.Second, 25}, {-time.Second, 0}, {30, 26}, {30, 25}} {
		at := t0.Add(st.at)
		require.Equal(t, m.Take(at, st.n), k.Take(at, "a", st.n), "Take(t0%+v, %d)", st.at, st.n)
	}
}

// TestFarPastRefundMarked: a Refund stamped before the fast range, of a
// Take from before a restore (its own state, restored into it: the Takes
// before are marked), gives nothing back, as one within the range does.
// Given back, a Burst 50 drained at t0 was full again at t0 - 2 s and so
// at t0 + 10 ns, where the model holds 9.
func TestFarPastRefundMarked(t *testing.T) {
	f := newFarTwin(t, t0)
	require.True(t, f.take(t0, 50).Allowed)
	b, err := f.l.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, f.l.UnmarshalBinary(b))
	f.m.Restore(f.m.Clone())
	f.l.Refund(t0.Add(-2*time.Second), 50)
	f.m.Refund(t0.Add(-2*time.Second), 50)
	f.peek(t0.Add(10), 9)
	f.peek(t0.Add(10), 10)
	require.True(t, f.take(t0.Add(10), 9).Allowed)
}
