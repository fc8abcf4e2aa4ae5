package otelratekit

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// OnStoreError returns a func to pass as the OnError of a shared store's
// limiter (redisstore.AdapterConfig.OnError): it counts each call the store
// did not answer in ratekit.store.errors, under AttrStore = store,
// AttrOnFailure = onFailure.String() (pass the adapter's
// redisstore.FailurePolicy; nil leaves the attribute out) and AttrErrorType:
// "timeout" (context.DeadlineExceeded), "canceled" (context.Canceled) or
// "other", which includes redisstore's ErrCoolingDown. Each such call was
// decided by the failure policy: with FailFallback, by the local fallback
// limiter, so the count with AttrOnFailure "FailFallback" is the number of
// fallback decisions. The key is never recorded.
//
// This module does not import redisstore, so that it does not bring go-redis
// to users who do not use it.
func (m *Metrics) OnStoreError(store string, onFailure fmt.Stringer) func(key string, err error) {
	var opts [3]metric.AddOption
	for i, kind := range [3]string{"timeout", "canceled", "other"} {
		kv := []attribute.KeyValue{AttrStore.String(store), AttrErrorType.String(kind)}
		if onFailure != nil {
			kv = append(kv, AttrOnFailure.String(onFailure.String()))
		}
		opts[i] = metric.WithAttributeSet(attribute.NewSet(kv...))
	}
	return func(_ string, err error) {
		i := 2
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			i = 0
		case errors.Is(err, context.Canceled):
			i = 1
		}
		m.storeErrors.Add(context.Background(), 1, opts[i])
	}
}
