package cell

import (
	"sync"
	"time"
	"unsafe"

	"github.com/benbjohnson/clock"
)

// Key is an algorithm's Config made comparable, the key of its Interner:
// the fields the algorithm's Config has, the others zero, and its
// OnLimitReached by identity (see HookOf).
type Key struct {
	Limit          int
	Window, Offset time.Duration
	Name           string
	Clock          clock.Clock
	Hook           unsafe.Pointer
}

// HookOf returns the identity of f, a func value: the pointer to its
// closure. Equal pointers are one closure, which behaves as itself; two
// closures of the same code are not one.
func HookOf[F any](f F) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&f)) }

// MaxInterned bounds the parameter sets an Interner keeps: a program with
// more distinct Configs than this (a Config per key, say by naming each
// limiter after its key) starts a new generation of shared parameters
// every MaxInterned new Configs, rather than keeping them all.
const MaxInterned = 1024

// Interner shares one immutable parameter set among the limiters of equal
// Configs, so that a factory calling New per key costs one Ref per key and
// no parameters: the intern table of an algorithm package, keyed by its
// Config. The zero Interner is ready to use; it is safe for concurrent use.
// Lookups take a read lock (an atomic add) and allocate nothing; a new
// Config takes the write lock once.
//
// Interned parameters are never changed: a limiter's Reconfigure looks up
// (or makes) the parameters of its new Config and replaces its own block,
// so its siblings keep theirs.
type Interner[K comparable, P any] struct {
	mu sync.RWMutex
	m  map[K]*P
}

// Get returns the parameters interned for k, if fresh accepts them (nil
// fresh accepts any), or else those build returns, interned for k in their
// place; or build's error (an invalid Config), interning nothing. build is
// called without the lock held. A k whose hash panics (a Config holding a
// value of an incomparable dynamic type in an interface field) is not
// interned: Get returns build's parameters, private to the caller.
func (t *Interner[K, P]) Get(k K, fresh func(*P) bool, build func() (*P, error)) (*P, error) {
	if p, ok := t.lookup(k); ok && (fresh == nil || fresh(p)) {
		return p, nil
	}
	p, err := build()
	if err != nil {
		return nil, err
	}
	t.store(k, p)
	return p, nil
}

// lookup returns the parameters interned for k. ok is false if there are
// none, or if k cannot be hashed.
func (t *Interner[K, P]) lookup(k K) (p *P, ok bool) {
	defer func() {
		if recover() != nil {
			p, ok = nil, false
		}
	}()
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok = t.m[k]
	return p, ok
}

// store interns p for k, replacing what was there (a refresh of stale
// parameters); when the table is full it starts over empty, which changes
// nothing for the limiters already made (each holds its parameters).
func (t *Interner[K, P]) store(k K, p *P) {
	defer func() { _ = recover() }() // k cannot be hashed: p stays private
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[k]; !ok && len(t.m) >= MaxInterned || t.m == nil {
		t.m = make(map[K]*P)
	}
	t.m[k] = p
}

// Reset empties the table, for tests that assert which limiters share
// parameters across Configs they make (a table that other tests left near
// MaxInterned would start a new generation midway). It takes the write
// lock, so it is safe beside concurrent Gets; limiters already made keep
// their parameters.
func (t *Interner[K, P]) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = nil
}

// Len returns how many parameter sets are interned, for tests.
func (t *Interner[K, P]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
