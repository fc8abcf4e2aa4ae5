package redisstore

// SetClock makes q read the time of Take, Peek and Sweep from clock: the
// server time to decide at (µs, as TakeAt passes it) and the process's
// time (ns) of one instant. Tests use it to run a fleet on fake clocks.
func SetClock(q *Local, clock func() (now string, local int64)) { q.clock = clock }

// SweeperDone returns the channel q's background sweeper closes when it
// returns, nil if q has none.
func SweeperDone(q *Local) <-chan struct{} {
	if q.sweeper == nil {
		return nil
	}
	return q.sweeper.done
}

// UseScript makes s run src, a version of ratekit.lua, instead of this
// package's: tests of a fleet whose replicas run different versions give
// one Store an older script (testdata/ratekit-*.lua) and another the
// current one, over the same keys. Call it before s is used.
func UseScript(s *Store, src string) { s.code = newCode(src) }
