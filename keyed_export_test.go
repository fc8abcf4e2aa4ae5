package ratekit

import "hash/maphash"

// KeyedSlotOnly looks key up in k as Get does, but compares only the hash
// bits kept in the slots' meta words, never the key itself: it touches the
// table slot and nothing the slot points to. It exists for
// BenchmarkKeyedMisses, which times the memory accesses of a Take one by
// one, and is wrong for any other use (two keys whose hashes agree in those
// bits would be one key to it).
func KeyedSlotOnly[K comparable, L Limiter](k *Keyed[K, L], key K) (L, bool) {
	var zero L
	h := maphash.Comparable(k.seed, key)
	t := k.tabs[h&k.smask%maxShards].Load()
	if t == nil {
		return zero, false
	}
	want := h&metaHash | metaLive
	for i := t.home(h); ; {
		s := &t.slots[i]
		m := s.meta.Load()
		if m == metaEmpty {
			return zero, false
		}
		if m&^stampMask == want {
			return s.lim, true
		}
		if i++; i == t.size {
			i = 0
		}
	}
}
