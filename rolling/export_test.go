package rolling

import "sync/atomic"

// SameParams reports whether a and b decide with one parameter set, as the
// limiters of equal Configs do until one of them is reconfigured.
func SameParams(a, b *Limiter) bool { return a.c.Cur().P == b.c.Cur().P }

// InFirstCell reports whether l still has its state in the block it was
// made with, inline: nothing since has allocated a new one.
func InFirstCell(l *Limiter) bool { return l.c.Cur() == l.c.First() }

// Interned returns how many parameter sets New shares.
func Interned() int { return interned.Len() }

// Block returns the block in force, to tell whether anything published a
// successor.
func Block(l *Limiter) any { return l.c.Cur() }

// CountJointSteps counts the Steps Joint decides from now on (not Slow),
// until the returned function stops it and returns the count.
func CountJointSteps() func() int64 {
	var n atomic.Int64
	jointSteps = &n
	return func() int64 { jointSteps = nil; return n.Load() }
}

// ResetInterned empties the intern table (cell.Interner.Reset: under its
// lock), for a test that asserts which limiters share parameters across
// Configs it makes: a table that other tests left near cell.MaxInterned
// would start a new generation midway.
func ResetInterned() {
	interned.Reset()
}
