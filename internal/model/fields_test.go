package model

import (
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// perturb changes the value f (settable) to a different one of its type,
// in place where it is a pointer or a slice, so that a shallow copy would
// change with it.
func perturb(t *testing.T, f reflect.Value, name string) {
	t.Helper()
	switch typ := f.Type(); {
	case typ == ratType:
		if f.IsNil() {
			f.Set(reflect.ValueOf(big.NewRat(7, 3)))
		} else {
			r := f.Interface().(*big.Rat)
			r.Add(r, big.NewRat(1, 3))
		}
	case typ == intType:
		if f.IsNil() {
			f.Set(reflect.ValueOf(big.NewInt(7)))
		} else {
			v := f.Interface().(*big.Int)
			v.Add(v, big.NewInt(1))
		}
	case typ == timeType:
		f.Set(reflect.ValueOf(f.Interface().(time.Time).Add(time.Nanosecond)))
	case typ.Kind() == reflect.Slice:
		if f.Len() == 0 {
			f.Set(reflect.Append(f, reflect.New(typ.Elem()).Elem()))
		}
		perturb(t, f.Index(0), name+"[0]")
	case typ.Kind() == reflect.Struct:
		perturb(t, field(f, 0), name+"."+typ.Field(0).Name)
	case typ.Kind() == reflect.Bool:
		f.SetBool(!f.Bool())
	case typ.Kind() == reflect.String:
		f.SetString(f.String() + "x")
	case f.CanInt():
		f.SetInt(f.Int() + 1)
	case f.CanUint():
		f.SetUint(f.Uint() + 1)
	default:
		t.Fatalf("field %s of type %v: perturb does not know it", name, typ)
	}
}

// checkFields checks, for each field of the model made by newM, that
// perturbing it changes State unless it is one of skipped (and that those
// exist), that Clone keeps it, and that perturbing the clone's copy leaves
// the original as it was. newM must return a model whose pointer fields
// are set, so that in-place changes are tried.
func checkFields[T any](t *testing.T, newM func() *T, clone func(*T) *T, state func(*T) string, skipped ...string) {
	typ := reflect.TypeFor[T]()
	t.Run(typ.Name(), func(t *testing.T) {
		for _, s := range skipped {
			if _, ok := typ.FieldByName(s); !ok {
				t.Errorf("State skips %s, which %v does not have", s, typ)
			}
		}
		for i := range typ.NumField() {
			sf := typ.Field(i)
			if sf.Type == mutexType {
				continue
			}
			m := newM()
			before := state(m)
			perturb(t, field(reflect.ValueOf(m).Elem(), i), sf.Name)
			after := state(m)
			isSkipped := false
			for _, s := range skipped {
				isSkipped = isSkipped || s == sf.Name
			}
			if after == before && !isSkipped {
				t.Errorf("field %s: changing it leaves State %q unchanged", sf.Name, before)
			}
			c := clone(m)
			if !reflect.DeepEqual(field(reflect.ValueOf(c).Elem(), i).Interface(), field(reflect.ValueOf(m).Elem(), i).Interface()) {
				t.Errorf("field %s: Clone does not keep it", sf.Name)
			}
			perturb(t, field(reflect.ValueOf(c).Elem(), i), sf.Name)
			if got := state(m); got != after {
				t.Errorf("field %s: changing the clone's changed the original's State from %q to %q", sf.Name, after, got)
			}
		}
	})
}

// TestFieldsCovered holds the models' Clone and State to every field: a
// field added to a model is in State (unless deliberately skipped) and
// copied, deeply, by Clone. A linearizability checker whose State misses a
// field merges states that decide differently; one whose Clone misses it
// loses it at every step.
func TestFieldsCovered(t *testing.T) {
	epoch := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	checkFields(t, func() *TokenBucket {
		m := NewTokenBucket(10, time.Second, 4, "a", epoch)
		m.Take(epoch.Add(time.Second), 2)
		return m
	}, (*TokenBucket).Clone, (*TokenBucket).State)
	checkFields(t, func() *FixedWindow {
		m := NewFixedWindow(5, time.Second, 0, "a", true)
		m.Take(epoch, 2)
		return m
	}, (*FixedWindow).Clone, (*FixedWindow).State, "notices")
	checkFields(t, func() *Rolling {
		m := NewRolling(5, time.Second, "a", true)
		m.Take(epoch, 2)
		return m
	}, (*Rolling).Clone, (*Rolling).State, "Notified")
	checkFields(t, func() *SlidingLog {
		m := &SlidingLog{Limit: 3, Window: time.Second, Name: "a"}
		m.Take(time.Second, 2)
		return m
	}, (*SlidingLog).Clone, (*SlidingLog).State)
	checkFields(t, func() *SlidingCounter {
		m := &SlidingCounter{Limit: 3, Window: time.Second, Name: "a"}
		m.Take(epoch, 2)
		return m
	}, (*SlidingCounter).Clone, (*SlidingCounter).State)
	checkFields(t, func() *Concurrency {
		m := NewConcurrency(3, "a", epoch)
		m.Take(epoch, 1)
		return m
	}, (*Concurrency).Clone, (*Concurrency).State, "Epoch")
}

// TestStateNamesFields: State is name=value pairs, so a visualisation can
// be read.
func TestStateNamesFields(t *testing.T) {
	m := NewTokenBucket(10, time.Second, 4, "a", time.Unix(0, 0))
	m.Take(time.Unix(1, 0), 1)
	if s := m.State(); !strings.Contains(s, "seen=1000000000") || !strings.Contains(s, "tat=1100000000") {
		t.Errorf("State = %q, want seen and tat in ns from the epoch", s)
	}
}
