package cell_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestLockHelping: a helping-mode lock stores cell.Locked, and Final,
// Renew, LockHelping and LoadHelping wait until the unlock, then see the
// word it stored, in the same block; none of them reads Locked as a
// sealed final word (1<<62) or publishes a successor of the locked block.
func TestLockHelping(t *testing.T) {
	p := &scaled{scale: 1}
	for name, op := range map[string]func(r *cell.Ref[scaled]) int64{
		"Final": func(r *cell.Ref[scaled]) int64 { _, w := r.Final(); return w },
		"Renew": func(r *cell.Ref[scaled]) int64 {
			var seen int64
			r.Renew(func(q *scaled, w, aux int64) (*scaled, int64, int64) { seen = w; return q, w + 1, aux })
			return seen
		},
		"LockHelping": func(r *cell.Ref[scaled]) int64 {
			b, w := r.LockHelping()
			cell.Unlock(b, w)
			return w
		},
		"LoadHelping": func(r *cell.Ref[scaled]) int64 { _, w := r.LoadHelping(); return w },
	} {
		t.Run(name, func(t *testing.T) {
			var r cell.Ref[scaled]
			r.Init(p, 5, 0)
			b, w := r.LockHelping()
			require.Equal(t, int64(5), w)
			require.Equal(t, cell.Locked, b.W.Load())
			hooked := make(chan struct{}, 1)
			cell.LockedHook = func() {
				select {
				case hooked <- struct{}{}:
				default:
				}
			}
			defer func() { cell.LockedHook = nil }()
			done := make(chan int64, 1)
			go func() { done <- op(&r) }()
			select {
			case <-hooked:
			case w := <-done:
				t.Fatalf("%s returned %d on a locked word without waiting", name, w)
			}
			require.Same(t, r.First(), r.Cur(), "nothing published a successor")
			cell.Unlock(b, 7)
			require.Equal(t, int64(7), <-done, "the word the unlock stored")
			require.Same(t, r.First(), r.Cur())
		})
	}
}

// TestLoadHelpingWaitsForSuccessor: a joint decision that meets a sealed
// block waits for its successor (every seal is followed by its Help) and
// loads that, rather than deciding on a block that is retired.
func TestLoadHelpingWaitsForSuccessor(t *testing.T) {
	p := &scaled{scale: 1}
	var r cell.Ref[scaled]
	r.Init(p, 5, 0)
	b := r.Cur()
	require.True(t, cell.Seal(&b.W, 5))
	done := make(chan int64, 2)
	go func() { _, w := r.LoadHelping(); done <- w }()
	go func() {
		nb, w := r.LockHelping()
		cell.Unlock(nb, w)
		done <- w
	}()
	require.True(t, r.Help(b, p, 9, 0))
	require.Equal(t, int64(9), <-done)
	require.Equal(t, int64(9), <-done)
	require.Equal(t, int64(9), r.Cur().W.Load(), "the lock stored its word back in the successor")
}
