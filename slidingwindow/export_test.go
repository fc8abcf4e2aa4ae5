package slidingwindow

import (
	"math/bits"
	"time"
)

// CounterSameParams reports whether a and b decide with one parameter set,
// as Counters of equal Configs do until one is reconfigured.
func CounterSameParams(a, b *Counter) bool { return a.c.Cur().P == b.c.Cur().P }

// CounterInline reports whether c's state is still in its first, inline
// block.
func CounterInline(c *Counter) bool { return c.c.Cur() == c.c.First() }

// CounterInterned returns how many parameter sets NewCounter shares.
func CounterInterned() int { return interned.Len() }

// CounterWord returns c's word in force, as stored.
func CounterWord(c *Counter) int64 { _, w := c.c.Load(); return w }

// DivMod is the quotient and remainder of hi·2^64+lo by d, computed as a
// Counter's Take computes them.
func DivMod(d, hi, lo uint64) (q, r uint64) { return newRecip(d).divmod(hi, lo) }

// LogSameParams reports whether a and b decide with one parameter set, as
// Logs of equal Configs do until one is reconfigured.
func LogSameParams(a, b *Log) bool { return a.s.Load().p == b.s.Load().p }

// CounterSealRisk returns, for a Counter, the instant at which the window
// starts whose index is the top bit of the word's index field alone (the
// window whose empty word a plain packing would make cell.Sealed), and
// whether that window is within the Counter's range.
func CounterSealRisk(c *Counter) (time.Time, bool) {
	p := c.c.Cur().P
	rel := uint64(1) << (63 - p.shift)
	return p.epoch.Add(time.Duration(p.start0 + int64(rel)*p.window)), rel <= p.maxRel()
}

// WeightQuo is floor(prev·e/d), computed as a Counter's Take computes it
// for the previous window's weight (e < d).
func WeightQuo(d, prev, e uint64) uint64 {
	r := newRecip(d)
	hi, lo := bits.Mul64(prev, e<<r.s)
	return r.quo(hi, lo)
}

// ResetInterned empties the intern table (cell.Interner.Reset: under its
// lock), for a test that asserts which limiters share parameters across
// Configs it makes: a table that other tests left near cell.MaxInterned
// would start a new generation midway.
func ResetInterned() {
	interned.Reset()
	internedLogs.Reset()
}
