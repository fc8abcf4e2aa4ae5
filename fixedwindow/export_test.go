package fixedwindow

import "github.com/ratekit/ratekit/internal/cell"

// SameParams reports whether a and b decide with one parameter set, as the
// limiters of equal Configs do until one of them is reconfigured.
func SameParams(a, b *Limiter) bool { return a.c.Cur().P == b.c.Cur().P }

// Inline reports whether l's state is still in its first, inline block.
func Inline(l *Limiter) bool { return l.c.Cur() == l.c.First() }

// Interned returns how many parameter sets New shares.
func Interned() int { return interned.Len() }

// IsSealed reports whether l's block in force reads as sealed.
func IsSealed(l *Limiter) bool { return l.c.Cur().W.Load() == cell.Sealed }

// ResetInterned empties the intern table (cell.Interner.Reset: under its
// lock), for a test that asserts which limiters share parameters across
// Configs it makes: a table that other tests left near cell.MaxInterned
// would start a new generation midway.
func ResetInterned() {
	interned.Reset()
}
