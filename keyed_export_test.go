package ratekit

import "hash/maphash"

// KeyedSlotOnly looks key up in k as Get does, but compares only the hash
// bits kept in the slots' meta words, never the key itself: it touches the
// table slot and nothing the slot points to. It exists for
// BenchmarkKeyedMisses, which times the memory accesses of a Take one by
// one, and is wrong for any other use (two keys whose hashes agree in those
// bits would be one key to it).
func KeyedSlotOnly[K comparable, L Limiter](k *Keyed[K, L], key K) (L, bool) {
	s := slotOnly(k, key)
	if s == nil {
		var zero L
		return zero, false
	}
	return s.lim, true
}

// KeyedSlotCAS is KeyedSlotOnly followed by a compare-and-swap of the
// slot's meta word with itself (which changes nothing): what a Take would
// touch if the key's state word sat in its table slot. It reports whether
// key's slot was found and the CAS succeeded. For BenchmarkKeyedMisses
// only, like KeyedSlotOnly.
func KeyedSlotCAS[K comparable, L Limiter](k *Keyed[K, L], key K) bool {
	s := slotOnly(k, key)
	if s == nil {
		return false
	}
	m := s.meta.Load()
	return s.meta.CompareAndSwap(m, m)
}

// KeyedFindCAS is Get's lookup, the key compared, followed by the same
// compare-and-swap of the found slot's meta word with itself: what a Take
// would touch if the key's state word sat in its slot but its bytes did
// not. For BenchmarkKeyedMisses only.
func KeyedFindCAS[K comparable, L Limiter](k *Keyed[K, L], key K) bool {
	h := maphash.Comparable(k.seed, key)
	t := k.tabs[h&k.smask%maxShards].Load()
	if t == nil {
		return false
	}
	s := t.find(h, key, false)
	if s == nil {
		return false
	}
	m := s.meta.Load()
	return s.meta.CompareAndSwap(m, m)
}

func slotOnly[K comparable, L Limiter](k *Keyed[K, L], key K) *slot[K, L] {
	h := maphash.Comparable(k.seed, key)
	t := k.tabs[h&k.smask%maxShards].Load()
	if t == nil {
		return nil
	}
	want := h&metaHash | metaLive
	for i := t.home(h); ; {
		s := t.at(i)
		m := s.meta.Load()
		if m == metaEmpty {
			return nil
		}
		if m&^stampMask == want {
			return s
		}
		if i++; i == t.size {
			i = 0
		}
	}
}
