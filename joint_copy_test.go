package ratekit_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
)

// copyOf returns a struct copy of the limiter l points at, as `c := *l`
// makes one (go vet flags that form, so the copy is made by reflection):
// a misuse the Limiter contract forbids, whose copy shares the original's
// state block.
func copyOf(l ratekit.Limiter) ratekit.Limiter {
	v := reflect.ValueOf(l)
	c := reflect.New(v.Type().Elem())
	c.Elem().Set(v.Elem())
	return c.Interface().(ratekit.Limiter)
}

// reconfigureSame reconfigures l to its own Config, which moves its state
// to a block out of line (internal/cell's Replace).
func reconfigureSame(t *testing.T, l ratekit.Limiter) {
	v := reflect.ValueOf(l)
	out := v.MethodByName("Reconfigure").Call(v.MethodByName("Config").Call(nil))
	require.Nil(t, out[0].Interface())
}

// TestTakeAllCopiedMember lists a hand-copied limiter beside its original
// in TakeAll, PeekAll, TakeEach and AllOf. The copy shares the original's
// state word, so the composite must not lock that word twice (the joint
// path did, and hung); it must decide as for the original listed twice,
// which takes the general path. Each member type is tried fresh (its state
// in its inline block) and after a Reconfigure (out of line).
//
// "wide", a rolling window whose every new window needs a new block, is
// only run: in rolling's helping mode the copy and its original each
// publish their own successor of a sealed block, so they part after the
// first window opens (two limiters where one was, what a copy of a
// limiter without a shared block would be from the start).
func TestTakeAllCopiedMember(t *testing.T) {
	clk := clock.NewMock()
	clk.Set(time.Unix(1_700_000_000, 0))
	now := clk.Now()
	for i, name := range []string{"tb", "fw", "sc", "day", "user", "system", "wide"} {
		for _, moved := range []bool{false, true} {
			sub := name
			if moved {
				sub += "-reconfigured"
			}
			t.Run(sub, func(t *testing.T) {
				set, twin := jointSetOn(t, clk), jointSetOn(t, clk)
				eq := func(want, got any, msg string, step int) {
					t.Helper()
					if name != "wide" {
						require.Equal(t, want, got, msg+", step %d", step)
					}
				}
				orig, tw := set[i], twin[i]
				other, tother := set[(i+1)%len(set)], twin[(i+1)%len(twin)]
				if moved {
					reconfigureSame(t, orig)
					reconfigureSame(t, tw)
				}
				cp := copyOf(orig)
				for step := range 4 {
					at := now.Add(time.Duration(step) * 100 * time.Millisecond)
					eq(ratekit.PeekAll(at, 2, tw, tw, tother), ratekit.PeekAll(at, 2, orig, cp, other), "PeekAll", step)
					eq(ratekit.TakeAll(at, 2, tw, tw, tother), ratekit.TakeAll(at, 2, orig, cp, other), "TakeAll", step)
					eq(ratekit.TakeAll(at, 1, tother, tw, tw), ratekit.TakeAll(at, 1, other, cp, orig), "TakeAll reversed", step)
					want, wi := ratekit.TakeEach(at, []ratekit.Ask{{Limiter: tw, N: 1}, {Limiter: tother, N: 1}, {Limiter: tw, N: 2}})
					got, gi := ratekit.TakeEach(at, []ratekit.Ask{{Limiter: orig, N: 1}, {Limiter: other, N: 1}, {Limiter: cp, N: 2}})
					eq(want, got, "TakeEach", step)
					eq(wi, gi, "TakeEach's binding index", step)
					eq(ratekit.AllOf(tw, tother, tw).Take(at, 1), ratekit.AllOf(orig, other, cp).Take(at, 1), "AllOf", step)
					eq(tw.Peek(at, 1), cp.Peek(at, 1), "the copy's state", step)
					eq(tother.Peek(at, 1), other.Peek(at, 1), "the other member's state", step)
				}
			})
		}
	}
}

// TestMemberRefFirst holds every joint member type to the layout that
// cell.StateOf reads: the limiter's cell.Ref is its first field, and the
// Ref's block pointer is the Ref's first word.
func TestMemberRefFirst(t *testing.T) {
	for _, m := range jointSet(t) {
		typ := reflect.TypeOf(m).Elem()
		f := typ.Field(0)
		require.Zero(t, f.Offset, "%v", typ)
		require.True(t, strings.HasPrefix(f.Type.String(), "cell.Ref["), "%v's first field is %v", typ, f.Type)
		cur := f.Type.Field(0)
		require.Zero(t, cur.Offset, "%v", f.Type)
		require.True(t, strings.HasPrefix(cur.Type.String(), "atomic.Pointer["), "%v's first field is %v", f.Type, cur.Type)
	}
}
