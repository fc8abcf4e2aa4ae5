package fixedwindow

import "unsafe"

// SameParams reports whether a and b decide with one parameter set, as the
// limiters of a Template do until one of them is reconfigured.
func SameParams(a, b *Limiter) bool { return a.cur.Load().p == b.cur.Load().p }

// Lines returns the addresses of l's cur, and of the parameters' pointer and
// the word of its state in force, divided by 64: the cache lines they are on
// if the allocator placed l as New means it to be placed.
func Lines(l *Limiter) (cur, p, word uintptr, wordAligned bool) {
	st := l.cur.Load()
	w := uintptr(unsafe.Pointer(&st.word))
	return uintptr(unsafe.Pointer(&l.cur)) / 64, uintptr(unsafe.Pointer(&st.p)) / 64, w / 64, w%64 == 0
}
