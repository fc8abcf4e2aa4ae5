package slidingwindow

import "unsafe"

// CounterSameParams reports whether a and b decide with one parameter set,
// as the Counters of a CounterTemplate do until one is reconfigured.
func CounterSameParams(a, b *Counter) bool { return a.s.Load().p == b.s.Load().p }

// LogSameParams reports whether a and b decide with one parameter set, as
// the Logs of a LogTemplate do until one is reconfigured.
func LogSameParams(a, b *Log) bool { return a.s.Load().p == b.s.Load().p }

// CounterLines returns the cache lines (address/64) of c's word in force
// and of the rest that every Take reads: c.s, the state's parameter pointer.
func CounterLines(c *Counter) (word uintptr, read []uintptr) {
	st := c.s.Load()
	return line(&st.w), []uintptr{line(&c.s), line(&st.p), line(&c.s0.p)}
}

// LogLines is CounterLines for a Log: its read-mostly fields are l.s and
// the state's parameters, floor and ring header.
func LogLines(l *Log) (word uintptr, read []uintptr) {
	st := l.s.Load()
	return line(&st.word), []uintptr{line(&l.s), line(&st.p), line(&st.floor), line(&st.slots), line(&l.s0.p)}
}

func line[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) / 64 }
