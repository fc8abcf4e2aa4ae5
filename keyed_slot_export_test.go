package ratekit

import (
	"hash/maphash"
	"weak"
)

// KeyedStateInSlot reports whether key is present in k and its limiter's
// state is in force in its table slot (keyed_slot.go): Keyed.Take then
// decides there, without the limiter.
func KeyedStateInSlot[K comparable, L Limiter](k *Keyed[K, L], key K) bool {
	h := maphash.Comparable(k.seed, key)
	t := k.tabs[h&k.smask%maxShards].Load()
	if t == nil || t.blk == 0 {
		return false
	}
	s := t.find(h, key, false)
	return s != nil && !t.blockOf(s).Sealed()
}

// KeyedSlotBytes returns the size of one slot of k's tables.
func KeyedSlotBytes[K comparable, L Limiter](k *Keyed[K, L]) uintptr { return k.lay.stride }

// KeyedTableOf returns a weak pointer to the slots of the table that holds
// key (zero if none), to see when the garbage collector frees them.
func KeyedTableOf[K comparable, L Limiter](k *Keyed[K, L], key K) weak.Pointer[byte] {
	h := maphash.Comparable(k.seed, key)
	t := k.tabs[h&k.smask%maxShards].Load()
	if t == nil {
		return weak.Pointer[byte]{}
	}
	return weak.Make((*byte)(t.base))
}
