package cell_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestMoveSealsAndCarries: a move publishes the slot's block with the old
// block's words, seals the old block for good (a CAS computed on it fails),
// and MoveOut leaves a slot that is no longer in force alone.
func TestMoveSealsAndCarries(t *testing.T) {
	var r cell.Ref[scaled]
	p := &scaled{scale: 3}
	r.Init(p, 41, 7)
	old := r.Cur()
	var s cell.Slot
	require.True(t, r.MoveIn(&s))
	b := r.Cur()
	require.Same(t, cell.BlockOf[scaled](&s), b)
	require.Same(t, p, b.P)
	require.EqualValues(t, 41, b.W.Load())
	require.EqualValues(t, 7, b.Aux.Load())
	require.False(t, old.W.CompareAndSwap(41, 42), "a stale CAS on the old block")
	require.True(t, old.W.Load() == cell.Sealed)

	r.MoveOut(&s)
	require.True(t, s.Sealed())
	out := r.Cur()
	require.NotSame(t, b, out)
	require.EqualValues(t, 41, out.W.Load())
	r.MoveOut(&s) // not in force: nothing
	require.Same(t, out, r.Cur())

	var zero cell.Ref[scaled]
	var s2 cell.Slot
	require.False(t, zero.MoveIn(&s2), "no block to move")
}

// TestMoveUnderUpdates: increments racing moves between slots are never
// lost: each lands on the block in force or fails and retries there.
func TestMoveUnderUpdates(t *testing.T) {
	cell.MoveHook = runtime.Gosched // widen the window between copy and publish
	defer func() { cell.MoveHook = nil }()
	var r cell.Ref[scaled]
	r.Init(&scaled{scale: 1}, 0, 0)
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					b, w := r.Load()
					if b.W.CompareAndSwap(w, w+1) {
						break
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for moves := 0; ; moves++ {
		select {
		case <-done:
			t.Logf("%d moves", moves)
			_, w := r.Load()
			require.EqualValues(t, workers*each, w)
			return
		default:
		}
		require.True(t, r.MoveIn(new(cell.Slot)))
	}
}
