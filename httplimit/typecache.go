package httplimit

import (
	"sync/atomic"
	"unsafe"
)

// typeCache remembers a few bits about each of the dynamic types an
// interface has held, found by its type word, so that a request pays one
// comparison instead of interface checks that it would repeat with the
// same answers (which optional interfaces a ResponseWriter has). A
// process sees few such types (net/http's HTTP/1 and HTTP/2 writers, a
// wrapper or two), so the table is small; entries are added, never replaced,
// allocating once per type, and a type beyond the table is checked every
// time.
type typeCache [8]atomic.Pointer[typeBits]

type typeBits struct {
	itab unsafe.Pointer
	bits uint8
}

// typeWord returns the type word of a non-empty interface value at p: its
// itab, one per pair of interface and dynamic type, so that equal words
// mean the same dynamic type.
func typeWord(p unsafe.Pointer) unsafe.Pointer { return (*[2]unsafe.Pointer)(p)[0] }

// find returns the bits of the type whose type word is t, if cached.
func (c *typeCache) find(t unsafe.Pointer) (uint8, bool) {
	for i := range c {
		e := c[i].Load()
		if e == nil {
			break
		}
		if e.itab == t {
			return e.bits, true
		}
	}
	return 0, false
}

// add caches bits for the type whose type word is t, if there is room,
// and returns bits.
func (c *typeCache) add(t unsafe.Pointer, bits uint8) uint8 {
	for i := range c {
		e := c[i].Load()
		if e == nil {
			e = &typeBits{itab: t, bits: bits}
			if c[i].CompareAndSwap(nil, e) {
				return bits
			}
			e = c[i].Load() // another goroutine took the entry
		}
		if e.itab == t {
			return bits
		}
	}
	return bits
}
