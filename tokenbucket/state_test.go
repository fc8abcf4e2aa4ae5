package tokenbucket_test

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
	"github.com/ratekit/ratekit/tokenbucket"
)

func TestReconfigureCarriesUnits(t *testing.T) {
	mock := mockAt(t0)
	cfg := tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: mock}
	l := mustNew(t, cfg)
	require.True(t, l.Take(t0, 4).Allowed)

	// The 4 units taken stay counted: a bigger bucket holds 16, and
	// refills the 4 at the same rate.
	cfg.Burst = 20
	require.NoError(t, l.Reconfigure(cfg))
	d := l.Peek(t0, 0)
	require.Equal(t, 16, d.Remaining)
	require.Equal(t, 20, d.Limit)
	require.Equal(t, 400*time.Millisecond, d.ResetAfter)

	// A smaller one than the units taken is 1 unit in debt: the next unit
	// waits for two to refill.
	cfg.Burst = 3
	require.NoError(t, l.Reconfigure(cfg))
	d = l.Peek(t0, 1)
	require.False(t, d.Allowed)
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, 200*time.Millisecond, d.RetryAfter)
	require.False(t, l.Idle(t0))

	// Back to 10: as if it had never been lowered.
	cfg.Burst = 10
	require.NoError(t, l.Reconfigure(cfg))
	require.Equal(t, 6, l.Peek(t0, 0).Remaining)

	// A new rate: the 4 units taken refill at 7 per 10 s.
	cfg.Limit, cfg.Window, cfg.Burst = 7, 10*time.Second, 5
	cfg.Name = "slow"
	require.NoError(t, l.Reconfigure(cfg))
	require.True(t, l.Take(t0, 1).Allowed)
	d = l.Take(t0, 1)
	require.Equal(t, ratekit.Decision{Limit: 5, Window: 7142857143, ResetAfter: 7142857143, RetryAfter: 1428571429, Policy: "slow"}, d)

	// A fraction of a unit refilled at the old rate counts whole at a new
	// one: 0.5 of the next unit back at 10 per second, switched to 7 per
	// 10 s, waits a whole unit's 1.43 s. It carried over as 0.5 unit and
	// came back after 0.71 s, where a bucket of 7 per 10 s all along, which
	// had refilled 0.035 unit of it, waits 1.38 s.
	l = mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 1, Clock: mock})
	require.True(t, l.Take(t0, 1).Allowed)
	mock.Add(50 * time.Millisecond) // half a unit back
	require.NoError(t, l.Reconfigure(tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 1, Clock: mock}))
	require.Equal(t, time.Duration(1428571429), l.Peek(mock.Now(), 1).RetryAfter) // ceil(10s/7)

	// Invalid: an error, and nothing changes.
	before := l.Peek(mock.Now(), 1)
	require.ErrorIs(t, l.Reconfigure(tokenbucket.Config{Limit: 0, Window: time.Second, Burst: 1}), ratekit.ErrInvalidConfig)
	require.Equal(t, before, l.Peek(mock.Now(), 1))
}

// TestReconfigureUnderTakes races Takes at one instant against Reconfigures
// that switch the burst between 10 and 20: the units taken stay counted at
// each switch, so no more than 20 are ever admitted at that instant, and
// exactly 20 once the burst ends at 20.
func TestReconfigureUnderTakes(t *testing.T) {
	mock := mockAt(t0)
	cfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 10, Clock: mock}
	for rep := 0; rep < 20; rep++ {
		l := mustNew(t, cfg)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if l.Take(t0, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		// The reconfiguring goroutine is joined before the checks: one
		// still in its last Reconfigure could switch the burst back to 10
		// after the final Reconfigure below, and one that outlived the
		// test raced the next test's ResetInterned.
		var rwg sync.WaitGroup
		rwg.Go(func() {
			c := cfg
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.Burst = 10 + 10*(i%2)
				if err := l.Reconfigure(c); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Wait()
		close(stop)
		rwg.Wait()
		require.LessOrEqual(t, admitted.Load(), int64(20))
		c := cfg
		c.Burst = 20
		require.NoError(t, l.Reconfigure(c))
		require.Equal(t, 20-int(admitted.Load()), l.Peek(t0, 0).Remaining)
	}
}

func TestMarshalWallClock(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 3, Clock: atT0()}
	l := mustNew(t, cfg)
	require.True(t, l.Take(t0, 3).Allowed)
	require.True(t, l.Take(t0.Add(2*time.Second), 1).Allowed) // 1.4 units back, one taken
	b, err := l.MarshalBinary()
	require.NoError(t, err)

	// A process that starts an hour later restores the state: downtime
	// counts as elapsed time, to the fraction of a nanosecond.
	later := mockAt(t0.Add(time.Hour))
	r := mustNew(t, tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 3, Clock: later})
	require.NoError(t, r.UnmarshalBinary(b))
	for _, at := range []time.Duration{2 * time.Second, 3 * time.Second, 4285714285, 4285714286, time.Hour} {
		for _, n := range []int{1, 2, 3} {
			require.Equal(t, l.Peek(t0.Add(at), n), r.Peek(t0.Add(at), n), "+%v n=%d", at, n)
		}
	}
	require.True(t, r.Idle(t0.Add(time.Hour)))

	// A fresh state restores a fresh bucket.
	fb, err := mustNew(t, cfg).MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, []byte{'r', 'k', byte(core.TokenBucket), 1, 0}, fb)
	require.NoError(t, l.UnmarshalBinary(fb))
	require.Equal(t, mustNew(t, cfg).Peek(t0, 3), l.Peek(t0, 3))
	// Full, but its Takes are marked (a refund of one gives nothing back),
	// which a new limiter in its place would not be: idle only once the
	// mark, its latest Take's stamp, is a refill of Burst (4285714286 ns)
	// behind (see TestSweepKeepsRestoreMark, tag adversary).
	require.False(t, l.Idle(t0.Add(2*time.Second+4285714285)))
	require.True(t, l.Idle(t0.Add(2*time.Second+4285714286)))
}

func TestUnmarshalRejects(t *testing.T) {
	l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 2, Clock: atT0()})
	require.True(t, l.Take(t0, 1).Allowed)
	before := l.Peek(t0, 1)
	state := func(kind uint64, fields ...int64) []byte {
		b := core.AppendHeader(nil, core.TokenBucket, 1)
		b = binary.AppendUvarint(b, kind)
		for i, f := range fields {
			if i == 0 {
				b = binary.AppendVarint(b, f)
			} else {
				b = binary.AppendUvarint(b, uint64(f))
			}
		}
		return b
	}
	for name, b := range map[string][]byte{
		"unknown kind":    state(2),
		"zero scale":      state(1, 0, 0, 0),
		"scale too fine":  state(1, 0, 0, 1<<32+1),
		"fraction >= 1":   state(1, 0, 5, 5),
		"missing fields":  state(1, 0),
		"trailing bytes":  append(state(0), 0),
		"other algorithm": core.AppendHeader(nil, core.FixedWindow, 1),
		"newer version":   core.AppendHeader(nil, core.TokenBucket, 3),
	} {
		err := l.UnmarshalBinary(b)
		require.ErrorIs(t, err, ratekit.ErrInvalidState, name)
		require.Equal(t, before, l.Peek(t0, 1), name)
	}
	// Extreme but well-formed instants decode without overflow.
	for _, unix := range []int64{-1 << 63, 1<<63 - 1, 0, t0.UnixNano() + 1<<62} {
		l := mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 2, Clock: atT0()})
		require.NoError(t, l.UnmarshalBinary(state(1, unix, 1<<32-1, 1<<32)))
		for _, at := range []time.Time{{}, t0, t0.AddDate(300, 0, 0)} {
			d := l.Take(at, 1)
			require.GreaterOrEqual(t, d.Remaining, 0)
			require.GreaterOrEqual(t, d.RetryAfter, time.Duration(0))
		}
		b, err := l.MarshalBinary() // after a rebase to 2326: version 2, not an error
		require.NoError(t, err)
		require.NoError(t, l.UnmarshalBinary(b))
	}
	// An instant 100 years ahead denies for 100 years, to the nanosecond.
	require.NoError(t, l.UnmarshalBinary(state(1, t0.Add(100*365*day).UnixNano(), 0, 1)))
	require.Equal(t, 100*365*day-time.Second, l.Peek(t0, 1).RetryAfter)
}

// TestRestoreCarriesRate: a state restored into a limiter of another rate
// is carried from the instant the bucket was last empty (UnmarshalBinary's
// examples). Before version 3 the state was restored as the limiter's own:
// 10 taken at r from 10 a second, restored into 10 per 2 seconds, admitted
// 5 at r+1s where a bucket of the new rate all along admits none.
func TestRestoreCarriesRate(t *testing.T) {
	s := time.Second
	old := tokenbucket.Config{Limit: 10, Window: s, Burst: 10, Clock: atT0()}
	slow := tokenbucket.Config{Limit: 10, Window: 2 * s, Burst: 10, Clock: atT0()}
	fast := tokenbucket.Config{Limit: 20, Window: s, Burst: 10, Clock: atT0()}
	r := t0.Add(time.Hour)
	after := clock.NewMock()
	after.Set(r.Add(s / 2))
	for _, tc := range []struct {
		name  string
		taken int
		into  tokenbucket.Config
		full  time.Duration // after r: the restored bucket is full then, not before
	}{
		{"AllTakenSlower", 10, slow, 2 * s},
		{"OneTakenSlower", 1, slow, 1100 * time.Millisecond}, // the Burst taken 0.9 s before r
		{"AllTakenFaster", 10, fast, s},                      // the instant is kept
		{"OneTakenFaster", 1, fast, 100 * time.Millisecond},
		{"SameRate", 4, tokenbucket.Config{Limit: 10, Window: s, Burst: 3, Clock: atT0()}, 400 * time.Millisecond},
		// Restored 0.5 s after the save on a Clock of the same timeline: the
		// carry does not start at the Clock's reading, as Reconfigure's
		// does, which would be full at r+1.5s (5 units refilled at the old
		// rate in the downtime, carried as refilled) where a bucket of the
		// new rate all along is full at r+2s.
		{"AllTakenSlowerClockAfter", 10, withClock(slow, after), 2 * s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustNew(t, old)
			require.True(t, l.Take(r, tc.taken).Allowed)
			b, err := l.MarshalBinary()
			require.NoError(t, err)
			n := mustNew(t, tc.into)
			require.NoError(t, n.UnmarshalBinary(b))
			require.Equal(t, tc.full, n.Peek(r, 0).ResetAfter, "ResetAfter at r")
			require.Equal(t, tc.into.Burst, n.Peek(r.Add(tc.full), 0).Remaining, "full at r+%v", tc.full)
			require.Less(t, n.Peek(r.Add(tc.full-1), 0).Remaining, tc.into.Burst, "not full 1 ns before")
		})
	}
}
