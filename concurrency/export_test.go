package concurrency

// SetReconfigureHook makes every Reconfigure call h while it holds the
// queue's mutex, after it has published part of the new configuration and
// before it has finished, so that a test can interleave Take and Peek at
// the one point where a torn configuration could show. It returns a func
// that removes the hook. Not safe to call while Reconfigure runs.
func SetReconfigureHook(h func()) (restore func()) {
	reconfigureHook = h
	return func() { reconfigureHook = nil }
}

// AdmittedCount is admittedCount: the units ever admitted, as the
// hold-time sampler counts them (the word's count mod 64 and its carries).
func (l *Limiter) AdmittedCount() uint64 { return l.admittedCount() }
