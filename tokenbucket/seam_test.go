package tokenbucket_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestNewSharesParams: New with equal Configs shares one parameter set, so
// that a factory calling New per key costs what a Template's limiter does;
// Configs that differ in anything (the Clock included) do not share.
func TestNewSharesParams(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 600, Window: time.Minute, Burst: 20, Name: "per-user", Clock: atT0()}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.NotSame(t, a, b)
	require.True(t, tokenbucket.SameParams(a, b), "equal Configs share")
	require.True(t, tokenbucket.SameParams(a, mustTemplate(t, cfg).New()), "a Template's limiters are New's")

	for name, other := range map[string]tokenbucket.Config{
		"Limit":  {Limit: 601, Window: time.Minute, Burst: 20, Name: "per-user", Clock: atT0()},
		"Window": {Limit: 600, Window: time.Hour, Burst: 20, Name: "per-user", Clock: atT0()},
		"Burst":  {Limit: 600, Window: time.Minute, Burst: 21, Name: "per-user", Clock: atT0()},
		"Name":   {Limit: 600, Window: time.Minute, Burst: 20, Name: "per-org", Clock: atT0()},
		"Clock":  {Limit: 600, Window: time.Minute, Burst: 20, Name: "per-user", Clock: mockAt(t0)},
	} {
		c := mustNew(t, other)
		require.False(t, tokenbucket.SameParams(a, c), name)
		require.Equal(t, other, c.Config(), name)
	}

	// Sharing parameters is sharing nothing else.
	require.True(t, a.Take(t0, 20).Allowed)
	require.False(t, a.Take(t0, 1).Allowed)
	require.Equal(t, 20, b.Peek(t0, 0).Remaining)
}

// TestReconfigureLeavesSiblings: a limiter's Reconfigure moves its state to
// the parameters of its new Config (interned: shared with New's limiters of
// that Config) and out of its inline block; its siblings, which shared its
// old parameters, are as they were.
func TestReconfigureLeavesSiblings(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 6, Name: "a", Clock: atT0()}
	cfg2 := tokenbucket.Config{Limit: 120, Window: time.Minute, Burst: 12, Name: "b", Clock: atT0()}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.True(t, tokenbucket.Inline(a))
	require.True(t, a.Take(t0, 4).Allowed)
	require.True(t, b.Take(t0, 1).Allowed)

	require.NoError(t, a.Reconfigure(cfg2))
	require.False(t, tokenbucket.Inline(a), "the state moved out of line")
	require.True(t, tokenbucket.Inline(b))
	require.True(t, tokenbucket.SameParams(a, mustNew(t, cfg2)), "a has cfg2's shared parameters")
	require.True(t, tokenbucket.SameParams(b, mustNew(t, cfg)), "b keeps cfg's")
	require.Equal(t, cfg2, a.Config())
	require.Equal(t, cfg, b.Config())
	require.Equal(t, 12-4, a.Peek(t0, 0).Remaining, "a's 4 taken units stay counted")
	require.Equal(t, 6-1, b.Peek(t0, 0).Remaining, "b is unchanged")
	require.Equal(t, 6, b.Peek(t0, 0).Limit)

	// Back to cfg: a shares cfg's parameters again, in a new block.
	require.NoError(t, a.Reconfigure(cfg))
	require.True(t, tokenbucket.SameParams(a, b))
	require.Equal(t, 6-4, a.Peek(t0, 0).Remaining)
	require.False(t, tokenbucket.Inline(a))
}

// TestNewMemory: New per key costs a 32-byte limiter, one allocation, its
// parameters shared (#17: no more per key than a Template's).
func TestNewMemory(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 600, Window: time.Minute, Burst: 600, Name: "per-key"}
	mustNew(t, cfg) // interned once
	require.EqualValues(t, 1, testing.AllocsPerRun(100, func() { _, _ = tokenbucket.New(cfg) }))
	perKey := conformance.BytesPer(100_000, func() *tokenbucket.Limiter {
		l, _ := tokenbucket.New(cfg)
		return l
	})
	t.Logf("%.1f bytes per New limiter", perKey)
	require.LessOrEqual(t, perKey, 33.0)
}

// TestInternBounded: distinct Configs beyond the intern table's bound do
// not grow it without end (a Config per key, say named by its key), and
// every limiter still decides by its own Config.
func TestInternBounded(t *testing.T) {
	var ls []*tokenbucket.Limiter
	for i := range cell.MaxInterned + 100 {
		ls = append(ls, mustNew(t, tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1 + i%7, Name: fmt.Sprint(i)}))
	}
	require.LessOrEqual(t, tokenbucket.Interned(), cell.MaxInterned)
	for i, l := range ls {
		require.Equal(t, 1+i%7, l.Peek(t0, 0).Limit)
		require.Equal(t, fmt.Sprint(i), l.Peek(t0, 0).Policy)
	}
}

// unhashableClock is a clock.Clock whose dynamic value cannot be a map key.
type unhashableClock struct {
	clock.Clock
	tags []string
}

// TestNewUnhashableClock: a Config whose Clock cannot be hashed is not
// interned, and New neither panics nor fails.
func TestNewUnhashableClock(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 2, Clock: unhashableClock{Clock: atT0(), tags: []string{"unhashable"}}}
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	require.False(t, tokenbucket.SameParams(a, b))
	require.True(t, a.Take(t0, 2).Allowed)
	require.False(t, a.Take(t0, 1).Allowed)
	require.True(t, b.Allow())
}

// TestReconfigureRacingTakes: Takes at one instant race Reconfigures that
// switch the limiter between two rates (and so between two time scales and
// parameter sets, each swap a replacement through internal/cell) with the
// same Burst. Nothing refills at one instant, and the rates' intervals are
// whole multiples of each other, so the carried state is exact: exactly
// Burst units are admitted in all, none lost or minted by a CAS landing on
// a replaced state.
func TestReconfigureRacingTakes(t *testing.T) {
	const burst = 4000
	slow := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: burst, Clock: atT0()}
	slower := tokenbucket.Config{Limit: 1, Window: 3 * time.Hour, Burst: burst, Clock: atT0()}
	for round := range 5 {
		l := mustNew(t, slow)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		stop, started := make(chan struct{}), make(chan struct{})
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-started // after the first replacement, so that Takes race the later ones
				for {
					select {
					case <-stop:
						return
					default:
					}
					if l.Take(t0, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if admitted.Load() >= burst {
					close(stop)
					return
				}
				cfg := slow
				if i%2 == 0 {
					cfg = slower
				}
				if err := l.Reconfigure(cfg); err != nil {
					t.Error(err)
				}
				if i == 0 {
					close(started)
				}
			}
		}()
		wg.Wait()
		require.False(t, tokenbucket.Inline(l), "round %d: replaced", round)
		require.Equal(t, int64(burst), admitted.Load(), "round %d: admitted", round)
		require.False(t, l.Take(t0, 1).Allowed, "round %d: drained", round)
	}
}
