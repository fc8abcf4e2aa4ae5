package ratekit_test

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/cell"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// A joint decision's lock on a Keyed key's state, step by step: the test
// holds the lock itself, through the member's Joint (what TakeAll calls
// first), while a Delete, an eviction, a rebuild or a Sweep reaches the
// key, so each move meets the lock on every run, not only when the
// scheduler happens to interleave them.

// jointKeyLimiter is an algorithm limiter that keeps its state in a Keyed
// slot and joins joint decisions.
type jointKeyLimiter interface {
	ratekit.Limiter
	cell.Member
	Idle(now time.Time) bool
}

// jointKeyed returns a maker of Keyeds whose limiters newL makes. L must
// be the limiters' concrete type: a Keyed of an interface type keeps the
// plain slot, with no state in it.
func jointKeyed[L jointKeyLimiter](newL func() L) func(maxKeys int) *ratekit.Keyed[string, L] {
	return func(maxKeys int) *ratekit.Keyed[string, L] {
		return ratekit.NewKeyed(func(string) L { return newL() }, ratekit.KeyedConfig{MaxKeys: maxKeys, Clock: fixedNow(t0)})
	}
}

// jointKeyeds returns makers of Keyeds of each algorithm whose state a
// Keyed keeps in its slots, of capacity 10 per hour, and of rolling, whose
// state stays in the limiter (helping mode: a joint decision locks it with
// cell.Locked, and nothing moves it).
func jointKeyeds() (func(int) *ratekit.Keyed[string, *tokenbucket.Limiter],
	func(int) *ratekit.Keyed[string, *fixedwindow.Limiter], func(int) *ratekit.Keyed[string, *slidingwindow.Counter],
	func(int) *ratekit.Keyed[string, *rolling.Limiter]) {
	mk := fixedNow(t0)
	tcfg := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: 10, Name: "key", Clock: mk}
	fcfg := fixedwindow.Config{Limit: 10, Window: time.Hour, Name: "key", Clock: mk}
	scfg := slidingwindow.Config{Limit: 10, Window: time.Hour, Name: "key", Clock: mk}
	rcfg := rolling.Config{Limit: 10, Window: time.Hour, Name: "key", Clock: mk}
	return jointKeyed(func() *tokenbucket.Limiter { l, _ := tokenbucket.New(tcfg); return l }),
		jointKeyed(func() *fixedwindow.Limiter { l, _ := fixedwindow.New(fcfg); return l }),
		jointKeyed(func() *slidingwindow.Counter { l, _ := slidingwindow.NewCounter(scfg); return l }),
		jointKeyed(func() *rolling.Limiter { l, _ := rolling.New(rcfg); return l })
}

// slotted reports whether a Keyed keeps l's state in its table slots
// (rolling's stays in the limiter: keyed_slot.go).
func slotted(l any) bool { return cell.SlotterFor(reflect.TypeOf(l)) != nil }

// lockJoint locks l's state as TakeAll does for a member it locks, deciding
// a Take of n at t0, which must be admitted.
func lockJoint(t *testing.T, l jointKeyLimiter, n int) (cell.Hold, cell.Move) {
	t.Helper()
	h, mv, v := l.Joint(l, true, t0, cell.Wall(t0), n)
	require.False(t, h.Slow(), "the joint path declined")
	require.True(t, v.OK, "%+v", v)
	return h, mv
}

// TestKeyedJointMoveWaitsForLock: a Delete, an eviction or a rebuild that
// reaches a key whose state a joint decision holds locked waits for the
// unlock, then moves the state the decision committed: nothing is moved
// out from under the lock (no unit lost, none taken from a copy moved
// away), no lock travels into the new place (every later call returns),
// and while the shard's writer waits, Takes of the shard's other keys do
// not. For Delete, that the move reaches the lock before it is released
// is observed (Delete makes the key's slot a tombstone before it moves the
// state), not left to the scheduler; an eviction and a rebuild leave no
// mark before they wait (an eviction waits in the key's Idle), and there
// the checks after the commit hold whichever came first.
//
// The Keyed here has one shard (MaxKeys 64), so the rebuild that the
// seventh key's insert triggers moves the locked key.
func TestKeyedJointMoveWaitsForLock(t *testing.T) {
	tb, fw, sc, _ := jointKeyeds()
	for _, how := range []string{"Delete", "Evict", "Rebuild"} {
		t.Run("tokenbucket/"+how, func(t *testing.T) { moveUnderLock(t, tb, how) })
		t.Run("fixedwindow/"+how, func(t *testing.T) { moveUnderLock(t, fw, how) })
		t.Run("counter/"+how, func(t *testing.T) { moveUnderLock(t, sc, how) })
	}
}

func moveUnderLock[L jointKeyLimiter](t *testing.T, newKeyed func(int) *ratekit.Keyed[string, L], how string) {
	maxKeys := 64
	if how == "Evict" {
		maxKeys = 1 // the next new key evicts "u", the only one
	}
	k := newKeyed(maxKeys)
	l := k.Get("u")
	require.True(t, k.Take(t0, "u", 2).Allowed)
	require.True(t, ratekit.KeyedStateInSlot(k, "u"))
	if how != "Evict" {
		k.Get("x") // a bystander in the same shard
	}
	mover, tab := moverOf(t, l), ratekit.KeyedTableOf(k, "u")

	h, mv := lockJoint(t, l, 3)
	done := make(chan struct{})
	go func() {
		defer close(done)
		switch how {
		case "Delete":
			if !k.Delete("u") {
				t.Error("Delete did not find u")
			}
		case "Evict":
			k.Get("v")
		case "Rebuild":
			for i := range 6 {
				k.Get(fmt.Sprint("r", i))
			}
		}
	}()
	if how == "Delete" {
		// The slot is a tombstone once Delete is about to move the state
		// out. (An eviction first asks the key's Idle, which waits for
		// the lock, and a rebuild leaves no mark before its move.)
		for {
			if _, found := ratekit.KeyedSlotOnly(k, "u"); !found {
				break
			}
			runtime.Gosched()
		}
	}
	for i := range 100 {
		runtime.Gosched()
		require.False(t, mover.OutOfLine(), "the state left its slot under the lock")
		require.True(t, ratekit.KeyedTableOf(k, "u") == tab, "a table without the locked state's move was published")
		select {
		case <-done:
			t.Fatalf("the %s finished while the key's state was locked", how)
		default:
		}
		if i == 0 && how != "Evict" {
			require.True(t, k.Take(t0, "x", 1).Allowed, "a Take of another key waited for the shard's writer")
		}
	}
	h.Commit(mv.Next, mv.Stamp)
	<-done

	require.Equal(t, 5, l.Peek(t0, 0).Remaining, "the committed Take, or the 2 before, was lost in the move")
	switch how {
	case "Delete", "Evict":
		require.True(t, mover.OutOfLine(), "the dropped key's state is still in the table")
		nl := k.Get("u")
		require.NotSame(t, l, nl)
		require.Equal(t, 10, nl.Peek(t0, 0).Remaining, "the key's next limiter is fresh")
		if how == "Evict" {
			require.EqualValues(t, 1, k.Stats().EvictedBusy)
		}
	case "Rebuild":
		require.True(t, ratekit.KeyedTableOf(k, "u") != tab, "no rebuild")
		require.True(t, ratekit.KeyedStateInSlot(k, "u"), "the rebuild did not move the state into its new slot")
		require.Same(t, l, k.Get("u"))
		require.True(t, k.Take(t0, "u", 5).Allowed)
		require.False(t, k.Take(t0, "u", 1).Allowed)
	}
	// No lock was left behind: the limiter decides again.
	require.True(t, ratekit.TakeAll(t0, 0, l, k.Get("z")).Allowed)
}

// TestKeyedJointSweepWaitsForLock: Sweep judges a key whose state a joint
// decision holds locked only once it is unlocked: if the decision commits
// a Take, the key is busy and stays, with its unit; if it is released (a
// denial elsewhere stores the word back), the key is idle and is dropped.
// Deterministic: Sweep starts after the lock is taken, and its Idle waits
// for the unlock.
func TestKeyedJointSweepWaitsForLock(t *testing.T) {
	tb, fw, sc, ro := jointKeyeds()
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprint("tokenbucket/commit=", commit), func(t *testing.T) { sweepUnderLock(t, tb, commit) })
		t.Run(fmt.Sprint("fixedwindow/commit=", commit), func(t *testing.T) { sweepUnderLock(t, fw, commit) })
		t.Run(fmt.Sprint("counter/commit=", commit), func(t *testing.T) { sweepUnderLock(t, sc, commit) })
		t.Run(fmt.Sprint("rolling/commit=", commit), func(t *testing.T) { sweepUnderLock(t, ro, commit) })
	}
}

func sweepUnderLock[L jointKeyLimiter](t *testing.T, newKeyed func(int) *ratekit.Keyed[string, L], commit bool) {
	k := newKeyed(64)
	l := k.Get("u")
	require.True(t, l.Idle(t0))
	h, mv := lockJoint(t, l, 1)
	swept := make(chan int)
	go func() { swept <- k.Sweep(t0) }()
	for range 100 {
		runtime.Gosched()
		select {
		case n := <-swept:
			t.Fatalf("Sweep finished (%d dropped) while the key's state was locked", n)
		default:
		}
	}
	if commit {
		h.Commit(mv.Next, mv.Stamp)
		require.Equal(t, 0, <-swept, "Sweep dropped a key a committed Take made busy")
		require.Same(t, l, k.Get("u"))
		require.Equal(t, slotted(l), ratekit.KeyedStateInSlot(k, "u"))
		require.Equal(t, 9, k.Get("u").Peek(t0, 0).Remaining)
		return
	}
	h.Release()
	require.Equal(t, 1, <-swept, "Sweep kept an idle key")
	if slotted(l) {
		require.True(t, moverOf(t, l).OutOfLine(), "the swept key's state is still in the table")
	}
	require.NotSame(t, l, k.Get("u"))
}

// TestKeyedJointDroppedMember: a limiter kept from Get after its key was
// dropped (Delete, eviction, Sweep) is, as Keyed documents, a limiter of
// its own: TakeAll over it and a live key's limiter is still all or none
// and still counts what the dropped limiter took before, while the key's
// next limiter starts fresh (the key is then limited by two limiters). An
// AllOf planned before the drop keeps deciding on the limiter it was given.
func TestKeyedJointDroppedMember(t *testing.T) {
	tb, fw, sc, ro := jointKeyeds()
	for _, how := range []string{"Delete", "Evict", "Sweep"} {
		t.Run("tokenbucket/"+how, func(t *testing.T) { droppedMember(t, tb, how) })
		t.Run("fixedwindow/"+how, func(t *testing.T) { droppedMember(t, fw, how) })
		t.Run("counter/"+how, func(t *testing.T) { droppedMember(t, sc, how) })
		t.Run("rolling/"+how, func(t *testing.T) { droppedMember(t, ro, how) })
	}
}

func droppedMember[L jointKeyLimiter](t *testing.T, newKeyed func(int) *ratekit.Keyed[string, L], how string) {
	maxKeys := 64
	if how == "Evict" {
		maxKeys = 1
	}
	k, sys := newKeyed(maxKeys), newKeyed(64)
	s := sys.Get("sys") // capacity 10, shared
	l := k.Get("u")
	all := ratekit.AllOf(l, s)
	require.True(t, ratekit.TakeAll(t0, 3, l, s).Allowed)
	switch how {
	case "Delete":
		require.True(t, k.Delete("u"))
	case "Evict":
		k.Get("v")
		require.EqualValues(t, 1, k.Stats().EvictedBusy)
	case "Sweep":
		// Sweep drops only idle keys: give the units back first.
		l.Refund(t0, 3)
		s.Refund(t0, 3)
		require.Equal(t, 1, k.Sweep(t0))
		require.True(t, ratekit.TakeAll(t0, 3, l, s).Allowed)
	}
	if slotted(l) {
		require.True(t, moverOf(t, l).OutOfLine(), "the dropped key's state is still in the table")
	}
	nl := k.Get("u")
	require.NotSame(t, l, nl, "the key kept its limiter")
	require.Equal(t, 10, nl.Peek(t0, 0).Remaining, "the key's next limiter starts fresh")

	// The kept limiter counts its own units, all or none.
	d := ratekit.TakeAll(t0, 5, s, l)
	require.True(t, d.Allowed, "%+v", d)
	require.Equal(t, 2, d.Remaining) // s: 10-3-5
	d = all.Take(t0, 3)
	require.False(t, d.Allowed, "%+v", d)
	require.Equal(t, 2, l.Peek(t0, 0).Remaining, "the kept limiter")
	require.Equal(t, 2, s.Peek(t0, 0).Remaining, "a denial counted against the live member")
	d = all.Take(t0, 2)
	require.True(t, d.Allowed, "%+v", d)
	require.Equal(t, 0, l.Peek(t0, 0).Remaining)
	require.Equal(t, 0, s.Peek(t0, 0).Remaining)
	require.Equal(t, 10, nl.Peek(t0, 0).Remaining, "the key's next limiter saw the kept one's Takes")
}
