package core

import "reflect"

// IsNil reports whether v is nil or holds a nil pointer, interface, map,
// slice, func, channel or unsafe.Pointer: a nil limiter, set or codec in
// an interface, whose methods would fail on use. It reflects; keep it off
// hot paths (httplimit tests the interface's data word first).
func IsNil(v any) bool {
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Invalid:
		return true // v == nil
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return r.IsNil()
	}
	return false
}
