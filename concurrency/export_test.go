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
// hold-time sampler counts them (the word's count mod 64 and its carries),
// and whether it could tell (no carry under way).
func (l *Limiter) AdmittedCount() (uint64, bool) { return l.admittedCount() }

// SetCarryHook makes every admission that carries the count of admitted
// units past a multiple of 64 call h after its CAS and before it adds
// the carry to Limiter.admitted, so that a test can run another admission
// in that window. It returns a func that removes the hook. Not safe to
// call while admissions run.
func SetCarryHook(h func()) (restore func()) {
	carryHook = h
	return func() { carryHook = nil }
}

// NextSample is the earliest time, in ns since the Limiter's epoch, at
// which an admission samples the hold time (math.MinInt64: the next one);
// an admission before it skips the sampler without try-locking it.
func (l *Limiter) NextSample() int64 { return l.next.Load() }
