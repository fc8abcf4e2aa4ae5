package cell_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestOutOfLine: only blocks that Replace, MoveOut and Adopt make are out
// of line; the inline first block, a slot's block (whatever the bytes
// before it) and no block are not.
func TestOutOfLine(t *testing.T) {
	var none cell.Ref[scaled]
	require.False(t, none.OutOfLine(), "no block")
	require.True(t, none.Adopt(&scaled{scale: 1}, 0, 0))
	require.True(t, none.OutOfLine(), "Adopt's block")

	var r cell.Ref[scaled]
	p := &scaled{scale: 3}
	r.Init(p, 41, 7)
	require.False(t, r.OutOfLine(), "the inline block")
	// A slot preceded by bytes of every value but the mark's.
	var slot struct {
		before [8]byte
		s      cell.Slot
	}
	for i := range slot.before {
		slot.before[i] = 0xff
	}
	require.True(t, r.MoveIn(&slot.s))
	require.False(t, r.OutOfLine(), "a slot's block")
	r.MoveOut(&slot.s)
	require.True(t, r.OutOfLine(), "MoveOut's block")
	b, _ := r.Load()
	require.True(t, r.Replace(b, func(w, aux int64) (*scaled, int64, int64) { return p, w, aux }))
	require.True(t, r.OutOfLine(), "Replace's block")
}
