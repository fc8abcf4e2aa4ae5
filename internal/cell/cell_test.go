package cell_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/cell"
)

// scaled is a toy algorithm: W is a count in units of scale, so a word is
// only meaningful with the parameters it was written under. A CAS that
// succeeded against a block whose parameters had changed would add a unit
// in the wrong scale, and the count would come out wrong.
type scaled struct{ scale int64 }

// incr adds one to r's count with the hot path of the package doc, and
// raises Aux to stamp.
func incr(r *cell.Ref[scaled], stamp int64) {
	for {
		b := r.Cur()
		w := b.W.Load()
		if w == cell.Sealed {
			b, w = r.Wait()
		}
		next := (w/b.P.scale + 1) * b.P.scale
		cell.Raise(&b.Aux, stamp)
		if b.W.CompareAndSwap(w, next) {
			return
		}
	}
}

// TestReplaceRacingUpdates: goroutines add units while others replace the
// parameters (and so the word's scale) under them. Every unit is counted
// exactly once, whatever the interleaving: no update lands on a retired
// block (no ABA), and none is lost in a conversion. Aux ends at least at
// every stamp raised.
func TestReplaceRacingUpdates(t *testing.T) {
	var r cell.Ref[scaled]
	r.Init(&scaled{scale: 1}, 0, -1)
	const adders, replacers, swaps = 4, 2, 300
	var wg, rg sync.WaitGroup
	var stamp, added atomic.Int64
	var done atomic.Bool
	for range adders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				incr(&r, stamp.Add(1))
				added.Add(1)
			}
		}()
	}
	for i := range replacers {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for j := range swaps {
				np := &scaled{scale: int64(2 + (i*swaps+j)%7)}
				for {
					b, _ := r.Load()
					if r.Replace(b, func(w, aux int64) (*scaled, int64, int64) {
						// Widen the window between reading the old word
						// and publishing: a CAS that got in here, on the
						// old block, would be lost.
						runtime.Gosched()
						return np, w / b.P.scale * np.scale, aux
					}) {
						break
					}
				}
			}
		}()
	}
	rg.Wait()
	done.Store(true)
	wg.Wait()
	b, w := r.Load()
	require.Equal(t, added.Load(), w/b.P.scale, "units counted")
	require.Equal(t, int64(0), w%b.P.scale, "the word is in its block's scale")
	require.Equal(t, stamp.Load(), b.Aux.Load(), "Aux is the latest stamp")
	require.NotSame(t, r.First(), r.Cur(), "replaced")
}

// TestRetiredBlocksStaySealed: the inline first block, once replaced, is
// never used again, and a replacement of a sealed block reports false
// without publishing.
func TestRetiredBlocksStaySealed(t *testing.T) {
	var r cell.Ref[scaled]
	p := &scaled{scale: 1}
	r.Init(p, 5, 0)
	b0, w := r.Load()
	require.Same(t, r.First(), b0)
	require.Equal(t, int64(5), w)
	require.True(t, r.Replace(b0, func(w, aux int64) (*scaled, int64, int64) { return p, w + 1, aux }))
	require.Equal(t, int64(cell.Sealed), b0.W.Load())
	require.False(t, b0.W.CompareAndSwap(5, 7), "a CAS computed before the seal fails")
	b1, w := r.Load()
	require.NotSame(t, b0, b1)
	require.Equal(t, int64(6), w)
	// A replacer holding the retired block loses, and finds the new one.
	require.False(t, r.Replace(b0, func(w, aux int64) (*scaled, int64, int64) {
		t.Fatal("next called on a sealed block")
		return nil, 0, 0
	}))
	require.Same(t, b1, r.Cur())
}

func TestRaise(t *testing.T) {
	var a atomic.Int64
	a.Store(-10)
	cell.Raise(&a, -20)
	require.Equal(t, int64(-10), a.Load(), "never lowered")
	cell.Raise(&a, 3)
	require.Equal(t, int64(3), a.Load())
}

type key struct {
	n   int
	any any
}

func TestInterner(t *testing.T) {
	var in cell.Interner[key, scaled]
	builds := 0
	build := func(s int64) func() (*scaled, error) {
		return func() (*scaled, error) { builds++; return &scaled{scale: s}, nil }
	}
	a, err := in.Get(key{n: 1}, nil, build(1))
	require.NoError(t, err)
	b, _ := in.Get(key{n: 1}, nil, build(1))
	require.Same(t, a, b, "equal keys share")
	c, _ := in.Get(key{n: 2}, nil, build(2))
	require.NotSame(t, a, c, "different keys do not")
	require.Equal(t, 2, builds)

	// A stale entry is replaced for later callers; earlier ones keep theirs.
	d, _ := in.Get(key{n: 1}, func(*scaled) bool { return false }, build(1))
	require.NotSame(t, a, d)
	e, _ := in.Get(key{n: 1}, nil, build(1))
	require.Same(t, d, e)

	// An unhashable key is not interned, and does not panic.
	f, err := in.Get(key{any: []int{1}}, nil, build(3))
	require.NoError(t, err)
	g, _ := in.Get(key{any: []int{1}}, nil, build(3))
	require.NotSame(t, f, g)

	// Bounded.
	for i := range 3 * cell.MaxInterned {
		_, _ = in.Get(key{n: 100 + i}, nil, build(1))
	}
	require.LessOrEqual(t, in.Len(), cell.MaxInterned)
}
