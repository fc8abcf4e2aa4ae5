package conformance

import (
	"reflect"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// copiedBeside holds the composites to the copy rule of ratekit.Limiter: a
// struct copy of a limiter in use (which the contract forbids and go vet
// reports), given to a composite beside its original, must neither hang
// it nor panic. TakeAll's joint path, which told members apart by address,
// locked the state word the two share twice and waited for itself. What
// the copy decides is undefined (it may share its original's state, or
// part of it), so the check asks only that every call returns, and that
// the original alone still answers as a limiter: Peek as Take.
func (s Subject) copiedBeside(t *testing.T) {
	l := s.New(t)
	v := reflect.ValueOf(l)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		t.Logf("%T is not a pointer to a struct: it has no struct copy to misuse", l)
		return
	}
	first := l.Take(s.Start, 1)
	if !first.Allowed {
		t.Fatalf("the first Take(1) at Start was denied: %v", first)
	}
	step := max(first.Window/4, time.Millisecond) // a concurrency limit has no Window
	cv := reflect.New(v.Type().Elem())
	cv.Elem().Set(v.Elem())
	c := cv.Interface().(ratekit.Limiter)
	for i := range 3 {
		at := s.Start.Add(time.Duration(i) * step)
		ratekit.PeekAll(at, 1, l, c)
		ratekit.TakeAll(at, 1, l, c)
		ratekit.TakeAll(at, 1, c, l)
		ratekit.TakeEach(at, []ratekit.Ask{{Limiter: c, N: 1}, {Limiter: l, N: 1}})
		ratekit.AllOf(l, c).Take(at, 1)
		ratekit.AllOf(c, l).Peek(at, 1)
	}
	at := s.Start.Add(3 * step)
	if p, d := l.Peek(at, 1), l.Take(at, 1); p != d {
		t.Fatalf("after composites over it and its copy, the original's Peek(1) = %v but its Take(1) = %v", p, d)
	}
}
