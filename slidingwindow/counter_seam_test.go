package slidingwindow_test

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/slidingwindow"
)

// TestDivMod: the reciprocal division Take uses agrees with a hardware
// division on every dividend whose quotient fits 64 bits, at the edges of
// the divisors a Counter has (a Window, 1 ns to MaxWindow) and beyond.
func TestDivMod(t *testing.T) {
	seed := conformance.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	divisors := []uint64{1, 2, 3, 7, 1 << 20, 1<<20 + 1, uint64(time.Second), uint64(time.Minute),
		uint64(24 * time.Hour), uint64(slidingwindow.MaxWindow), 1<<63 - 1, 1 << 63, math.MaxUint64}
	for range 200 {
		divisors = append(divisors, rng.Uint64N(uint64(slidingwindow.MaxWindow))+1, rng.Uint64()|1)
	}
	for _, d := range divisors {
		dividends := [][2]uint64{{0, 0}, {0, 1}, {0, d - 1}, {0, math.MaxUint64}, {d - 1, math.MaxUint64}, {d - 1, 0}}
		for range 200 {
			hi := rng.Uint64N(d) // quotient fits
			if rng.IntN(2) == 0 {
				hi = 0
			}
			dividends = append(dividends, [2]uint64{hi, rng.Uint64()})
			// prev·(Window-e), as weighted divides it.
			prev, a := rng.Uint64N(1<<31), rng.Uint64N(d)+1
			h, l := bits.Mul64(prev, a)
			dividends = append(dividends, [2]uint64{h, l})
		}
		for _, u := range dividends {
			wq, wr := bits.Div64(u[0], u[1], d)
			q, r := slidingwindow.DivMod(d, u[0], u[1])
			if q != wq || r != wr {
				t.Fatalf("seed %d: (%d·2^64+%d)/%d = %d rem %d; want %d rem %d", seed, u[0], u[1], d, q, r, wq, wr)
			}
		}
	}
}

// TestCounterWordNeverSealed: a Counter's word is never cell.Sealed, the
// mark of a retired block, on which every call would wait for ever. A
// plain packing made it so for an empty window whose index is the top bit
// of the index field alone, in the range of a day's Window (about 16 years
// after the epoch) and of every Window whose index field has no spare top
// bit: reached here by a Take and its Refund in that window.
func TestCounterWordNeverSealed(t *testing.T) {
	reached := 0
	for _, w := range []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour,
		7 * 24 * time.Hour, 1000 * time.Hour, slidingwindow.MaxWindow, 3 * time.Nanosecond, 1717 * time.Millisecond} {
		c := mustCounter(t, slidingwindow.Config{Limit: 1, Window: w})
		at, ok := slidingwindow.CounterSealRisk(c)
		if !ok {
			continue
		}
		reached++
		require.True(t, c.Take(at, 1).Allowed, "window %v", w)
		c.Refund(at, 1)
		require.NotEqual(t, int64(cell.Sealed), slidingwindow.CounterWord(c), "window %v", w)
		require.True(t, c.Peek(at, 1).Allowed, "window %v", w)
		require.True(t, c.Idle(at.Add(2*w)), "window %v", w)
	}
	require.NotZero(t, reached, "no Window reaches the risky index")
}

// TestCounterInterning: NewCounter shares parameters between the Counters
// of equal Configs, and only theirs (see conformance.Interning).
func TestCounterInterning(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 6, Window: time.Minute, Name: "a"}
	with := func(f func(*slidingwindow.Config)) slidingwindow.Config { c := cfg; f(&c); return c }
	conformance.Interning[slidingwindow.Config, *slidingwindow.Counter]{
		New: slidingwindow.NewCounter, SameParams: slidingwindow.CounterSameParams, Interned: slidingwindow.CounterInterned,
		Start:  minute0,
		Config: cfg,
		Others: map[string]slidingwindow.Config{
			"Limit":  with(func(c *slidingwindow.Config) { c.Limit = 7 }),
			"Window": with(func(c *slidingwindow.Config) { c.Window = time.Hour }),
			"Name":   with(func(c *slidingwindow.Config) { c.Name = "other" }),
		},
		Numbered: func(i int) slidingwindow.Config {
			return slidingwindow.Config{Limit: 1 + i%7, Window: time.Second, Name: fmt.Sprint(i)}
		},
		Template:    func(c slidingwindow.Config) *slidingwindow.Counter { return mustCounterTemplate(t, c).New() },
		Reconfigure: (*slidingwindow.Counter).Reconfigure,
		Inline:      slidingwindow.CounterInline,
		// The same Limit: a Counter whose Limit went down keeps parameters
		// of its own (forgot: what a window it no longer knows may hold,
		// see Reconfigure), so the round trip to Config and back would not
		// share again if either step lowered the Limit.
		Config2: slidingwindow.Config{Limit: 6, Window: time.Minute, Name: "b"},
	}.Run(t)
}

// TestCounterRestoreInPlace: a restore into a Counter that has counted sets
// a refund mark (see UnmarshalBinary) without allocating: the mark is
// raised in the Aux of the block in force and the word swapped in place,
// so a restored Counter stays one 64-byte allocation, its block inline.
func TestCounterRestoreInPlace(t *testing.T) {
	cfg := slidingwindow.Config{Limit: 10, Window: time.Minute}
	saved := mustCounter(t, cfg)
	saved.Take(t0, 10)
	state, err := saved.MarshalBinary()
	require.NoError(t, err)
	c := mustCounter(t, cfg)
	c.Take(t0, 1)
	require.EqualValues(t, 0, testing.AllocsPerRun(100, func() {
		require.NoError(t, c.UnmarshalBinary(state))
	}))
	// The mark holds: a refund of the Take before the restore gives
	// nothing back, and the restored window is drained.
	c.Refund(t0, 1)
	require.False(t, c.Peek(t0, 1).Allowed)
}
