package tokenbucket

import "time"

// SameParams reports whether a and b decide with one parameter set, as the
// limiters of equal Configs do until one of them is reconfigured.
func SameParams(a, b *Limiter) bool { return a.c.Cur().P == b.c.Cur().P }

// Inline reports whether l's state is still in its first, inline block.
func Inline(l *Limiter) bool { return l.c.Cur() == l.c.First() }

// Interned returns how many parameter sets New shares.
func Interned() int { return interned.Len() }

// ResetInterned empties the intern table (cell.Interner.Reset: under its
// lock), for a test that asserts which limiters share parameters across
// Configs it makes: a table that other tests left near cell.MaxInterned
// would start a new generation midway.
func ResetInterned() {
	interned.Reset()
}

// Rebase moves l's epoch forward to now, if now is after it, as a Take
// past the fast range or a Wait does before it stores (see rebase); it
// stores nothing of its own.
func Rebase(l *Limiter, now time.Time) {
	b, _ := l.load()
	l.rebase(b, now, 0)
}

// MoveBack moves l's epoch back to now, if now is before its fast range,
// as a Wait does before it stores (see moveBack), and reports whether it
// did; it stores nothing of its own.
func MoveBack(l *Limiter, now time.Time) bool {
	b, _ := l.load()
	return l.moveBack(b, now, b.P.since(now))
}
