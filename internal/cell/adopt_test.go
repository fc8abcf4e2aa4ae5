package cell_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestAdopt: of racing Adopts on a zero Ref exactly one publishes, out of
// line; none publishes on a Ref that has a block.
func TestAdopt(t *testing.T) {
	var r cell.Ref[scaled]
	require.Nil(t, r.Cur())
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if r.Adopt(&scaled{scale: int64(i + 1)}, int64(i), 0) {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, won.Load())
	b, w := r.Load()
	require.Equal(t, b.P.scale, w+1, "the winner's parameters and word, together")
	require.NotSame(t, r.First(), b)
	require.False(t, r.Adopt(&scaled{scale: 9}, 0, 0))

	var s cell.Ref[scaled]
	s.Init(&scaled{scale: 1}, 0, 0)
	require.False(t, s.Adopt(&scaled{scale: 2}, 0, 0))
	require.Same(t, s.First(), s.Cur())
}
