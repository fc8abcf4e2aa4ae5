package model

import (
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// Keyed is the reference model of ratekit.Keyed: a Go map under a mutex.
// It has no cap and no eviction policy of its own; a test that drives a
// ratekit.Keyed with MaxKeys mirrors each eviction it observes with Drop,
// and checks the real one's choice separately.
type Keyed[K comparable, L ratekit.Limiter] struct {
	mu         sync.Mutex
	newLimiter func(K) L
	m          map[K]L
}

// NewKeyed returns an empty model whose limiters newLimiter makes.
func NewKeyed[K comparable, L ratekit.Limiter](newLimiter func(K) L) *Keyed[K, L] {
	return &Keyed[K, L]{newLimiter: newLimiter, m: make(map[K]L)}
}

// Get returns key's limiter, making it on first use.
func (k *Keyed[K, L]) Get(key K) L {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.m[key]
	if !ok {
		l = k.newLimiter(key)
		k.m[key] = l
	}
	return l
}

// Take is Get(key).Take(now, n).
func (k *Keyed[K, L]) Take(now time.Time, key K, n int) ratekit.Decision {
	return k.Get(key).Take(now, n)
}

// Has reports whether key has a limiter.
func (k *Keyed[K, L]) Has(key K) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.m[key]
	return ok
}

// Idle reports whether key has a limiter that says it is idle at now.
func (k *Keyed[K, L]) Idle(key K, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	il, ok := any(k.m[key]).(interface{ Idle(time.Time) bool })
	return ok && il.Idle(now)
}

// Sweep drops every limiter that says it is idle at now, and returns how
// many it dropped.
func (k *Keyed[K, L]) Sweep(now time.Time) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for key, l := range k.m {
		if il, ok := any(l).(interface{ Idle(time.Time) bool }); ok && il.Idle(now) {
			delete(k.m, key)
			n++
		}
	}
	return n
}

// Drop removes key's limiter and reports whether it had one: Delete, and
// the mirror of an eviction.
func (k *Keyed[K, L]) Drop(key K) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.m[key]
	delete(k.m, key)
	return ok
}

// Len returns the number of keys.
func (k *Keyed[K, L]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// Keys returns the keys, in no particular order.
func (k *Keyed[K, L]) Keys() []K {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]K, 0, len(k.m))
	for key := range k.m {
		keys = append(keys, key)
	}
	return keys
}
