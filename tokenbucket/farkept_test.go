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

// keptStampCfg refills one unit in 2^58 ns (9.1 years), Burst 1: tau is
// 2^58 ns and the fast range 2^60 ns either side of the epoch (q = 1).
func keptStampCfg(clk clock.Clock) tokenbucket.Config {
	return tokenbucket.Config{Limit: 1, Window: 1 << 58, Burst: 1, Name: "kept", Clock: clk}
}

// keptStampTwin is a bucket of 12 units at 1 a ns, drained at t0, then
// reconfigured at t0 to keptStampCfg: the 12 units carry as a debt of 12
// intervals (full at t0 + 3*2^60 ns) and, the rate having changed, the
// bound on stamps Z goes to t0 + 2^58 ns, so that no Take from before the
// change gets anything back (see Reconfigure). A Take of 1 at t0 + 2.5*2^60
// ns then moves the epoch forward (rebase) and is denied: it stores
// nothing, and Z is left 1.25*2^60 ns before the new epoch, before its
// fast range, where it is kept in pastZ.
func keptStampTwin(t *testing.T) *farTwin {
	clk := clock.NewMock()
	clk.Set(t0)
	cfg := tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: 12, Name: "kept", Clock: clk}
	f := &farTwin{t: t, l: mustNew(t, cfg), m: model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0), clk: clk}
	require.True(t, f.take(t0, 12).Allowed)
	nc := keptStampCfg(clk)
	require.NoError(t, f.l.Reconfigure(nc))
	f.m.Reconfigure(t0, nc.Limit, nc.Window, nc.Burst, nc.Name)
	require.False(t, f.take(t0.Add(5<<59), 1).Allowed, "full only at t0 + 3*2^60 ns")
	return f
}

// refundDrained refunds one unit of the Takes drained at t0 and requires
// the limiter to decide as the model at and around the instant it is full
// again: Z, 2^58 ns after t0, leaves nothing to give back.
func (f *farTwin) refundDrained() {
	f.t.Helper()
	f.l.Refund(t0, 1)
	f.m.Refund(t0, 1)
	full := t0.Add(3 << 60)
	for _, at := range []time.Time{full.Add(-2 << 58), full.Add(-1 << 58), full.Add(-1), full} {
		f.peek(at, 1)
	}
}

// TestFarRebaseKeepsPastZ: a Take that moves the epoch forward and stores
// nothing keeps Z, left before the new fast range, in pastZ; a Refund at
// t0, before that range, reads it there. (With rebase's pastZ dropped, the
// Refund gave back a unit, 2^58 ns: Peek at t0 + 2.5*2^60 ns reported
// ResetAfter 2^58 ns where the model says 2^59.)
func TestFarRebaseKeepsPastZ(t *testing.T) {
	keptStampTwin(t).refundDrained()
}

// TestFarMoveBackKeepsPastZ: a Wait whose clock reads before the fast
// range moves the epoch back to that reading (moveBack), finds the bucket
// in debt there, and returns at once for its context's deadline: the move
// stores nothing, and Z, 1.125*2^60 ns before the new epoch, is kept in
// pastZ for the Refund at t0. (With movedTo's pastZ dropped, the Refund
// gave back a unit, as in TestFarRebaseKeepsPastZ.)
func TestFarMoveBackKeepsPastZ(t *testing.T) {
	f := keptStampTwin(t)
	f.clk.Set(t0.Add(11 << 57)) // 1.125*2^60 ns before the epoch the Take moved
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := f.l.Wait(ctx, 1)
	require.ErrorIs(t, err, ratekit.ErrWaitExceedsDeadline)
	f.peek(f.clk.Now(), 1)
	f.refundDrained()
}

// TestFarRestoreMarksPastZ: a restore into itself marks the Takes it
// counted, Z included when Z is before the fast range (pastZ): the Refund
// of one drained at t0 gives nothing back. (With restore's mark taken from
// the word's Z alone, the Refund gave back a unit.)
func TestFarRestoreMarksPastZ(t *testing.T) {
	f := keptStampTwin(t)
	b, err := f.l.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, f.l.UnmarshalBinary(b))
	f.m.Restore(f.m.Clone())
	f.refundDrained()
}

// TestFarMovesKeepPast: moves of the epoch that store nothing (as a
// Take's or a Wait's before it stores, or one a racing caller sees in
// between) keep a TAT they leave before the new fast range in past: a
// bucket drained at t0 (12 units, full at t0 + 12 ns) is moved forward to
// t0 + 3*2^60 ns, then back to t0 + 2^61 ns, and is still empty at t0.
// (With rebase's past dropped, or movedTo's, Peek(t0, 1) admitted with 11
// remaining where the model denies.)
func TestFarMovesKeepPast(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(t0)
	cfg := tokenbucket.Config{Limit: 1e9, Window: time.Second, Burst: 12, Name: "past", Clock: clk}
	f := &farTwin{t: t, l: mustNew(t, cfg), m: model.NewTokenBucket(cfg.Limit, cfg.Window, cfg.Burst, cfg.Name, t0), clk: clk}
	require.True(t, f.take(t0, 12).Allowed)
	check := func() {
		t.Helper()
		for _, at := range []time.Duration{0, 5, 11, 12} {
			f.peek(t0.Add(at), 1)
			f.peek(t0.Add(at), 6)
		}
	}
	tokenbucket.Rebase(f.l, t0.Add(3<<60))
	check()
	require.True(t, tokenbucket.MoveBack(f.l, t0.Add(2<<60)), "the state fits from t0 + 2^61 ns")
	check()
}
