package redisstore

// SetClock makes q read the time of Take, Peek and Sweep from clock: the
// server time to decide at (µs, as TakeAt passes it) and the process's
// time (ns) of one instant. Tests use it to run a fleet on fake clocks.
func SetClock(q *Local, clock func() (now string, local int64)) { q.clock = clock }
