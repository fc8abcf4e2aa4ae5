package tokenbucket

// DivCeil exposes the multiply-shift divider to the black-box tests:
// ceil(x/d) computed as Take computes it.
func DivCeil(d uint64, x int64) int64 { return newDivider(d).ceil(x) }

// DivFloor is floor(x/d) computed as Take computes it.
func DivFloor(d uint64, x uint64) uint64 { return newDivider(d).div(x) }

// SameParams reports whether a and b decide with one parameter set, as the
// limiters of equal Configs do until one of them is reconfigured.
func SameParams(a, b *Limiter) bool { return a.c.Cur().P == b.c.Cur().P }

// Inline reports whether l's state is still in its first, inline block.
func Inline(l *Limiter) bool { return l.c.Cur() == l.c.First() }

// Interned returns how many parameter sets New shares.
func Interned() int { return interned.Len() }
