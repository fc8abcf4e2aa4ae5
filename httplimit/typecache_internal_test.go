package httplimit

import (
	"net/http"
	"sync"
	"testing"
)

// wrapped is a distinct ResponseWriter type per T, for filling writerKinds.
type wrapped[T any] struct{ http.ResponseWriter }

// unwrapping is one with Unwrap, which outerLink must look behind.
type unwrapping struct{ http.ResponseWriter }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestKindOfBeyondTheTable checks that kindOf answers the same for a
// writer type whether it is cached, being cached by racing requests, or
// one of more types than the table holds, and that it flags the types
// outerLink must look behind.
func TestKindOfBeyondTheTable(t *testing.T) {
	u := &allWriter{h: make(http.Header)}
	all := optFlusher | optHijacker | optReaderFrom | optPusher
	cases := []struct {
		w    http.ResponseWriter
		want uint8
	}{
		{u, uint8(all)},
		{wrapped[int]{u}, 0},
		{wrapped[int8]{u}, 0},
		{wrapped[int16]{u}, 0},
		{wrapped[int32]{u}, 0},
		{wrapped[int64]{u}, 0},
		{wrapped[uint]{u}, 0},
		{wrapped[uint8]{u}, 0},
		{wrapped[uint16]{u}, 0},
		{wrapped[uint32]{u}, 0},
		{unwrapping{u}, optChain},
		{rwFP{&recorder{w: u}}, optFlusher | optPusher | optChain},
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				for _, c := range cases {
					if got := kindOf(c.w); got != c.want {
						t.Errorf("%T: kind %#x, want %#x", c.w, got, c.want)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range cases { // cached or beyond the table
		if n := testing.AllocsPerRun(100, func() { kindOf(c.w) }); n != 0 {
			t.Errorf("kindOf(%T): %v allocations", c.w, n)
		}
	}
}
