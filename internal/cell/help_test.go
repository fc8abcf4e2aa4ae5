package cell_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// span is how many units a block of the helping-mode toy holds before a
// unit must go to a successor: the toy's count is Aux + W/scale, and W
// counts at most span-1 units, as rolling's offset reaches only so far
// from its base.
const span = 16

// count is the toy's logical count in block b with (unsealed) word w.
func count(b *cell.Block[scaled], w int64) int64 { return b.Aux.Load() + w/b.P.scale }

// helpIncr adds one unit to r in helping mode: in place while the block
// holds it, else by sealing the block and publishing a successor; a block
// found sealed is decided on by its final word and its successor
// published by whoever gets there. It never waits.
func helpIncr(r *cell.Ref[scaled]) {
	for {
		b := r.Cur()
		w := b.W.Load()
		sealed := w < 0
		if sealed {
			if r.Cur() != b {
				continue
			}
			w &^= cell.SealBit
		}
		u := w/b.P.scale + 1
		if u < span && !sealed {
			if b.W.CompareAndSwap(w, u*b.P.scale) {
				return
			}
			continue
		}
		if !sealed && !cell.Seal(&b.W, w) {
			continue
		}
		// The successor holds the final count plus this unit, rebased.
		c := count(b, w) + 1
		if r.Help(b, b.P, 0, c) {
			return
		}
	}
}

// TestHelpRacingUpdates: goroutines add units, moving to a successor block
// every span units (any of them may publish it), while others Renew the
// parameters under them. Every unit is counted exactly once: no update
// lands on a retired block, none is lost from a final word.
func TestHelpRacingUpdates(t *testing.T) {
	var r cell.Ref[scaled]
	r.Init(&scaled{scale: 1}, 0, 0)
	const adders, renewers, swaps = 4, 2, 100
	var wg, rg sync.WaitGroup
	var added atomic.Int64
	var done atomic.Bool
	for range adders {
		wg.Go(func() {
			// Bounded: Renew is lock-free, not wait-free, and on a loaded
			// machine endless adders could hold the renewers off a long time.
			for i := 0; i < 20_000 && !done.Load(); i++ {
				helpIncr(&r)
				added.Add(1)
			}
		})
	}
	for i := range renewers {
		rg.Go(func() {
			for j := range swaps {
				np := &scaled{scale: int64(2 + (i*swaps+j)%7)}
				r.Renew(func(p *scaled, w, aux int64) (*scaled, int64, int64) {
					if j%10 == 0 {
						// Widen the window between reading the final word
						// and publishing, now and then (always would starve
						// the Renew: every add it lets in makes it retry).
						runtime.Gosched()
					}
					return np, w / p.scale * np.scale, aux
				})
			}
		})
	}
	rg.Wait()
	done.Store(true)
	wg.Wait()
	b, w := r.Final()
	require.GreaterOrEqual(t, w, int64(0))
	require.Equal(t, added.Load(), count(b, w), "units counted")
	require.Equal(t, int64(0), w%b.P.scale, "the word is in its block's scale")
	require.Greater(t, added.Load(), int64(span), "successors were published")
}

// TestHelpDoesNotWait: a block sealed by a goroutine that never publishes
// (preempted for good) stalls nobody: the next update decides on its final
// word and publishes the successor itself. Final reads the final word
// meanwhile; the retired block stays sealed, and a late Help loses.
func TestHelpDoesNotWait(t *testing.T) {
	var r cell.Ref[scaled]
	p := &scaled{scale: 1}
	r.Init(p, 5, 100)
	b0 := r.Cur()
	require.True(t, cell.Seal(&b0.W, 5))
	require.False(t, cell.Seal(&b0.W, 5), "sealed once")
	require.False(t, b0.W.CompareAndSwap(5, 6), "a CAS computed before the seal fails")
	b, w := r.Final()
	require.Same(t, b0, b)
	require.Equal(t, int64(5), w, "the final word, readable")

	helpIncr(&r) // would hang if it waited for the sealer
	b1, w := r.Final()
	require.NotSame(t, b0, b1)
	require.Equal(t, int64(106), count(b1, w))
	require.Less(t, b0.W.Load(), int64(0), "the retired block stays sealed")
	require.False(t, r.Help(b0, p, 0, 0), "the sealer's late publication loses")
	require.Same(t, b1, r.Cur())
}

// TestRenewInPlace: Renew with the same parameters and Aux stores the word
// in place, keeping the inline block; anything else seals it and moves to
// a successor.
func TestRenewInPlace(t *testing.T) {
	var r cell.Ref[scaled]
	p := &scaled{scale: 1}
	r.Init(p, 3, 0)
	r.Renew(func(q *scaled, w, aux int64) (*scaled, int64, int64) { return q, w + 1, aux })
	b, w := r.Final()
	require.Same(t, r.First(), b)
	require.Equal(t, int64(4), w)
	r.Renew(func(q *scaled, w, aux int64) (*scaled, int64, int64) { return q, w, aux + 1 })
	b, w = r.Final()
	require.NotSame(t, r.First(), b)
	require.Equal(t, int64(5), count(b, w))
	require.Less(t, r.First().W.Load(), int64(0))
	require.Equal(t, int64(4), r.First().W.Load()&^cell.SealBit, "sealed at its final word")
}
