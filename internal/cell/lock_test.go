package cell_test

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// TestLockExcludes: a Load, and a Replace, that start while a lock is held
// see only what the lock stores back, in the same block: they waited.
func TestLockExcludes(t *testing.T) {
	var r cell.Ref[scaled]
	r.Init(&scaled{scale: 1}, 5, 0)
	b, w := r.Lock()
	require.Equal(t, int64(5), w)
	require.Same(t, r.First(), b)
	require.Equal(t, int64(cell.Sealed), b.W.Load())

	// A Load and a Replace started while the lock is held either wait for
	// it or, if the scheduler runs them only after Unlock, find what Unlock
	// stored: never the word the lock took (5), whichever order they run in.
	loaded := make(chan int64)
	go func() { _, w := r.Load(); loaded <- w }()
	replaced := make(chan bool)
	go func() {
		replaced <- r.Replace(b, func(w, aux int64) (*scaled, int64, int64) { return &scaled{scale: 2}, w * 2, aux })
	}()
	runtime.Gosched()
	cell.Unlock(b, 7)
	lw, rep := <-loaded, <-replaced
	nb, w := r.Load()
	if rep {
		// The Replace ran after Unlock and converted the word Unlock stored.
		require.NotSame(t, b, nb)
		require.Equal(t, int64(14), w, "a Replace during the lock converted a word the lock did not store")
		require.Contains(t, []int64{7, 14}, lw, "a Load during the lock returned a word the lock did not store")
		nb, w = r.Load()
	} else {
		// The Replace found the block locked: it waited and published nothing.
		require.Same(t, b, nb, "the lock stores back into the block in force; a Replace racing it published nothing")
		require.Equal(t, int64(7), w)
		require.Equal(t, int64(7), lw, "a Load during the lock returned a word the lock did not store")
		require.True(t, r.Replace(nb, func(w, aux int64) (*scaled, int64, int64) { return &scaled{scale: 2}, w * 2, aux }))
		nb, w = r.Load()
	}
	require.Equal(t, int64(14), w)

	// Replaced, the first block is retired for good: a Lock moves on.
	lb, w := r.Lock()
	require.Same(t, nb, lb)
	require.NotSame(t, b, lb)
	require.Equal(t, int64(14), w)
	require.Equal(t, int64(cell.Sealed), b.W.Load(), "a retired block stays sealed")
	cell.Unlock(lb, w)
}

// TestLockRacingUpdates: lockers add two units at a time under the lock,
// while adders CAS one at a time on the hot path and replacers change the
// scale. Every unit is counted once: a lock excludes the hot path and
// Replace, and is exclusive between lockers.
func TestLockRacingUpdates(t *testing.T) {
	var r cell.Ref[scaled]
	r.Init(&scaled{scale: 1}, 0, -1)
	const rounds = 400
	var wg sync.WaitGroup
	var added atomic.Int64
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	for range 2 {
		run(func() {
			for range rounds {
				b, w := r.Lock()
				runtime.Gosched() // hold it: an update that got in now would be lost
				cell.Unlock(b, (w/b.P.scale+2)*b.P.scale)
				added.Add(2)
			}
		})
		run(func() {
			for i := range rounds {
				incr(&r, int64(i))
				added.Add(1)
			}
		})
	}
	run(func() {
		for i := range rounds / 4 {
			np := &scaled{scale: int64(2 + i%5)}
			for {
				b, _ := r.Load()
				if r.Replace(b, func(w, aux int64) (*scaled, int64, int64) { return np, w / b.P.scale * np.scale, aux }) {
					break
				}
			}
		}
	})
	wg.Wait()
	b, w := r.Load()
	require.Equal(t, added.Load(), w/b.P.scale)
}

// TestSinceIsSub: EpochOf(epoch).Since(Wall(now)) is int64(now.Sub(epoch))
// whenever it answers, for nows with and without a monotonic reading,
// against epochs with and without one, near and far from each other, at
// the edges of Wall's reach (2^32 s either way of 1970, where two times
// are 2^33 s apart) and at the ends of what time.Time holds (where Unix
// wraps and Sub saturates); and it answers for every two times within its
// reach with no monotonic reading on now.
func TestSinceIsSub(t *testing.T) {
	wall := time.Date(2026, 12, 7, 1, 2, 3, 456789012, time.UTC)
	mono := time.Now()
	times := []time.Time{
		{}, wall, mono, mono.Round(0), mono.Add(-3 * time.Hour), mono.Add(time.Nanosecond).Round(0),
		wall.Add(-1), wall.Add(999_999_999), wall.AddDate(271, 0, 0), wall.AddDate(273, 0, 0), wall.AddDate(-300, 0, 0),
		time.Unix(1<<33, 0), time.Unix(-1<<33, 5), time.Unix(1<<33-1, 999_999_999), time.Unix(1<<62-1, 0), time.Unix(1<<62, 0),
		time.Unix(-1<<62, 0), time.Unix(1<<63-1, 999_999_999), time.Unix(1<<32-1, 999_999_999), time.Unix(1<<32, 0),
		time.Unix(-1<<32+1, 0), time.Unix(-1<<32, 999_999_999), time.Unix(-1<<32+1, -1), time.Unix(-1<<63, 0), time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Unix(0, 0).In(time.FixedZone("x", -5*3600)),
	}
	// The earliest time.Time (Add saturates there): its Unix seconds wrap
	// to near the largest int64, a few seconds from another time's.
	first := time.Unix(-1<<63, 0)
	for range 8 {
		first = first.Add(-1 << 63)
	}
	times = append(times, first, time.Unix(first.Unix()-5, 0))
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		times = append(times, time.Unix(r.Int64N(1<<35)-1<<34, r.Int64N(1e9)), wall.Add(time.Duration(r.Int64())))
	}
	within := func(t time.Time) bool { return -1<<32 < t.Unix() && t.Unix() < 1<<32 }
	answered := 0
	for _, now := range times {
		for _, epoch := range times {
			got, ok := cell.EpochOf(epoch).Since(cell.Wall(now))
			if want := within(now) && within(epoch) && !cell.Monotonic(now); ok != want {
				t.Fatalf("Since(Wall(%v)) of epoch %v answers %v, want %v", now, epoch, ok, want)
			}
			if !ok {
				continue
			}
			answered++
			if want := int64(now.Sub(epoch)); got != want {
				t.Fatalf("Since(Wall(%v)) of epoch %v = %d, Sub %d", now, epoch, got, want)
			}
		}
	}
	require.Greater(t, answered, 10_000) // of 46,010 pairs, most of the random ones out of reach
	_, ok := cell.Epoch{}.Since(cell.Wall(wall))
	require.False(t, ok, "the zero Epoch serves no time")
	require.Equal(t, int64(cell.NoWall), cell.Wall(mono))
	require.True(t, cell.Monotonic(mono))
	require.False(t, cell.Monotonic(wall))
	require.False(t, cell.Monotonic(mono.Round(0)))
}
