package rolling

// SameParams reports whether a and b decide with one parameter set, as the
// limiters of a Template do until one of them is reconfigured.
func SameParams(a, b *Limiter) bool { return a.cur.Load().p == b.cur.Load().p }

// InFirstCell reports whether l, made by a Template, still has its state in
// the cell it was made with: nothing since has allocated a new one.
func InFirstCell(l *Limiter) bool { return l.cur.Load() == &l.c0 }
