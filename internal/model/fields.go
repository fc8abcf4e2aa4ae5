package model

import (
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// The models' Clone and State (lincheck.go) are built on these two
// functions, which walk a model struct's fields by reflection. Unexported
// fields are reached with reflect.NewAt; the models are test support, never
// part of a limiter.

var (
	mutexType = reflect.TypeFor[sync.Mutex]()
	ratType   = reflect.TypeFor[*big.Rat]()
	intType   = reflect.TypeFor[*big.Int]()
	timeType  = reflect.TypeFor[time.Time]()
)

// field returns the i-th field of the struct v (addressable), readable and
// settable even if unexported.
func field(v reflect.Value, i int) reflect.Value {
	f := v.Field(i)
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// copyFields makes *dst a deep copy of *src, field by field: a mutex is
// left zero, *big.Rat and *big.Int are copied, slices are cloned, and
// values of every other copyable kind are assigned. A field of a kind it
// cannot copy (a map, a pointer to anything else, a func) panics, so that
// a model gaining one must say how it is copied.
func copyFields[T any](dst, src *T) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := range d.NumField() {
		df, sf := field(d, i), field(s, i)
		copyValue(df, sf, d.Type().Field(i).Name)
	}
}

func copyValue(df, sf reflect.Value, name string) {
	switch t := sf.Type(); {
	case t == mutexType:
	case t == ratType:
		if !sf.IsNil() {
			df.Set(reflect.ValueOf(new(big.Rat).Set(sf.Interface().(*big.Rat))))
		}
	case t == intType:
		if !sf.IsNil() {
			df.Set(reflect.ValueOf(new(big.Int).Set(sf.Interface().(*big.Int))))
		}
	case t.Kind() == reflect.Slice:
		if !sf.IsNil() {
			c := reflect.MakeSlice(t, sf.Len(), sf.Len())
			for j := range sf.Len() {
				copyValue(c.Index(j), sf.Index(j), name)
			}
			df.Set(c)
		}
	case t.Kind() == reflect.Struct && t != timeType:
		for j := range t.NumField() {
			copyValue(field(df, j), field(sf, j), name+"."+t.Field(j).Name)
		}
	case shallow(t):
		df.Set(sf)
	default:
		panic(fmt.Sprintf("model: copyFields: field %s of type %v: say how to copy it", name, t))
	}
}

// shallow reports whether a value of t is copied by assignment.
func shallow(t reflect.Type) bool {
	if t == timeType {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return true
	}
	return false
}

// describeFields describes every field of *m but the mutex and those named
// in skip, as name=value in declaration order: *big.Rat as a fraction,
// time.Time as Unix ns (zero: "zero"), nil pointers as nil. Equal
// descriptions mean equal models (but for the fields skipped).
func describeFields[T any](m *T, skip ...string) string {
	v := reflect.ValueOf(m).Elem()
	var b strings.Builder
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if v.Field(i).Type() == mutexType || slices.Contains(skip, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
		b.WriteByte('=')
		describeValue(&b, field(v, i), name)
	}
	return b.String()
}

func describeValue(b *strings.Builder, f reflect.Value, name string) {
	switch t := f.Type(); {
	case t == ratType:
		if f.IsNil() {
			b.WriteString("nil")
		} else {
			b.WriteString(f.Interface().(*big.Rat).RatString())
		}
	case t == intType:
		if f.IsNil() {
			b.WriteString("nil")
		} else {
			b.WriteString(f.Interface().(*big.Int).String())
		}
	case t == timeType:
		if tm := f.Interface().(time.Time); tm.IsZero() {
			b.WriteString("zero")
		} else {
			fmt.Fprint(b, tm.UnixNano())
		}
	case t.Kind() == reflect.Slice:
		b.WriteByte('[') // nil and empty alike
		for j := range f.Len() {
			if j > 0 {
				b.WriteByte(' ')
			}
			describeValue(b, f.Index(j), name)
		}
		b.WriteByte(']')
	case t.Kind() == reflect.Struct:
		b.WriteByte('{')
		for j := range t.NumField() {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t.Field(j).Name + ":")
			describeValue(b, field(f, j), name+"."+t.Field(j).Name)
		}
		b.WriteByte('}')
	case t.Kind() == reflect.String:
		fmt.Fprintf(b, "%q", f.String())
	case shallow(t):
		fmt.Fprint(b, f.Interface())
	default:
		panic(fmt.Sprintf("model: describeFields: field %s of type %v: say how to describe it", name, t))
	}
}
