package bench

import (
	"testing"
	"unsafe"
)

// TestRandomLayout checks that the "random" layout is what it claims: the
// stored keys are every key once, each in an allocation of its own, not
// slices of one buffer, and the keys looked up are other copies.
func TestRandomLayout(t *testing.T) {
	const n = 1000
	stored := randomLayout(n)
	seen := map[string]bool{}
	ptrs := map[*byte]bool{}
	adjacent := 0
	for j, k := range stored {
		seen[k] = true
		p := unsafe.StringData(k)
		ptrs[p] = true
		if j > 0 {
			d := int64(uintptr(unsafe.Pointer(p))) - int64(uintptr(unsafe.Pointer(unsafe.StringData(stored[j-1]))))
			if -32 <= d && d <= 32 {
				adjacent++
			}
		}
	}
	for i := range n {
		if !seen[string(keyName(nil, i))] {
			t.Fatalf("key %d is not stored", i)
		}
	}
	if len(seen) != n || len(ptrs) != n {
		t.Fatalf("%d distinct keys at %d distinct addresses, want %d of each", len(seen), len(ptrs), n)
	}
	// Allocated in a shuffled order, keys stored one after the other are
	// rarely neighbours in memory (in order, nearly all would be).
	if adjacent > n/10 {
		t.Errorf("%d of %d consecutive stored keys are neighbours in memory", adjacent, n)
	}
	// The sequence looked up is made of other copies.
	for _, k := range sequence(n, false)[:n] {
		if !seen[k] {
			t.Fatalf("looked-up key %q is not stored", k)
		}
		if ptrs[unsafe.StringData(k)] {
			t.Fatalf("looked-up key %q is the stored string itself, not a copy", k)
		}
	}
}
