package otelratekit

import (
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ratekit/ratekit"
)

// KeyedStatser is what ObserveKeyed reads: a *ratekit.Keyed of any key and
// limiter type.
type KeyedStatser interface {
	Stats() ratekit.KeyedStats
}

type keyedSource struct {
	k                     KeyedStatser
	keyed, evIdle, evBusy attribute.Set
}

// ObserveKeyed reports k's Stats at each collection, under AttrKeyed = name:
// ratekit.keyed.keys (Len), ratekit.keyed.evictions with AttrEviction
// "idle" or "busy" (a rising busy count says MaxKeys is too small), and
// ratekit.keyed.swept. It costs k nothing between collections. Keyeds
// observed under the same name add up. It returns a func that stops
// observing k; calling it again does nothing. A nil k (or a nil *Keyed) is
// not observed.
func (m *Metrics) ObserveKeyed(name string, k KeyedStatser) (stop func()) {
	if isNil(k) {
		return func() {}
	}
	s := &keyedSource{
		k:      k,
		keyed:  attribute.NewSet(AttrKeyed.String(name)),
		evIdle: attribute.NewSet(AttrKeyed.String(name), AttrEviction.String("idle")),
		evBusy: attribute.NewSet(AttrKeyed.String(name), AttrEviction.String("busy")),
	}
	return m.watch(s)
}

func (s *keyedSource) collect(m *Metrics, emit func(metric.Int64Observable, attribute.Set, int64)) {
	st := s.k.Stats()
	emit(m.keys, s.keyed, int64(st.Keys))
	emit(m.evictions, s.evIdle, int64(st.EvictedIdle))
	emit(m.evictions, s.evBusy, int64(st.EvictedBusy))
	emit(m.swept, s.keyed, int64(st.Swept))
}

// isNil reports whether v is nil or a nil pointer in an interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
