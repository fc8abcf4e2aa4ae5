package otelratekit

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ratekit/ratekit/persist"
)

// InstrumentPersist wires m into opts, options about to be passed to
// persist.Open: it sets OnCheckpoint (calling one already set afterwards)
// to record every checkpoint's duration in
// ratekit.persist.checkpoint.duration, under AttrStore = name and
// AttrOutcome "ok" or "failed". Pair it with ObserveStore for the counts.
// A nil opts is left alone.
func (m *Metrics) InstrumentPersist(name string, opts *persist.Options) {
	if opts == nil {
		return
	}
	ok := metric.WithAttributeSet(attribute.NewSet(AttrStore.String(name), AttrOutcome.String(OutcomeOK)))
	failed := metric.WithAttributeSet(attribute.NewSet(AttrStore.String(name), AttrOutcome.String(OutcomeFailed)))
	user := opts.OnCheckpoint
	opts.OnCheckpoint = func(took time.Duration, err error) {
		opt := ok
		if err != nil {
			opt = failed
		}
		m.ckptDur.Record(context.Background(), took.Seconds(), opt)
		if user != nil {
			user(took, err)
		}
	}
}

// StoreStatser is what ObserveStore reads: a *persist.Store.
type StoreStatser interface {
	Stats() persist.Stats
}

type storeSource struct {
	s                 StoreStatser
	store, ok, failed attribute.Set
}

// ObserveStore reports s's Stats at each collection, under AttrStore = name:
// ratekit.persist.checkpoints by AttrOutcome ("ok", "failed"),
// ratekit.persist.states.written and ratekit.persist.states.deleted. A
// rising failed count means states are not being saved: a crash would lose
// more than one checkpoint interval. It returns a func that stops observing
// s. A nil s (or a nil *persist.Store) is not observed.
func (m *Metrics) ObserveStore(name string, s StoreStatser) (stop func()) {
	if isNil(s) {
		return func() {}
	}
	src := &storeSource{
		s:      s,
		store:  attribute.NewSet(AttrStore.String(name)),
		ok:     attribute.NewSet(AttrStore.String(name), AttrOutcome.String(OutcomeOK)),
		failed: attribute.NewSet(AttrStore.String(name), AttrOutcome.String(OutcomeFailed)),
	}
	return m.watch(src)
}

func (s *storeSource) collect(m *Metrics, emit func(metric.Int64Observable, attribute.Set, int64)) {
	st := s.s.Stats()
	emit(m.ckpts, s.ok, int64(st.Checkpoints))
	emit(m.ckpts, s.failed, int64(st.Failures))
	emit(m.written, s.store, int64(st.Written))
	emit(m.deleted, s.store, int64(st.Deleted))
}
