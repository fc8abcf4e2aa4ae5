package otelratekit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/otelratekit"
	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/tokenbucket"
)

// ObserveKeyed reports keys held and evictions, idle and busy, until
// stopped; two Keyeds under one name add up.
func TestObserveKeyed(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	cfg := tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	newKeyed := func() *ratekit.Keyed[int, *tokenbucket.Limiter] {
		return ratekit.NewKeyed(func(int) *tokenbucket.Limiter { l, _ := tokenbucket.New(cfg); return l },
			ratekit.KeyedConfig{MaxKeys: 2, Clock: mockAt(t0)})
	}
	a, b := newKeyed(), newKeyed()
	stopA := m.ObserveKeyed("orgs", a)
	m.ObserveKeyed("orgs", b)
	// a: keys 1 and 2 busy, then 3 evicts one of them (busy); a minute
	// later both are idle and 4 evicts an idle one.
	a.Take(t0, 1, 1)
	a.Take(t0, 2, 1)
	a.Take(t0, 3, 1)
	a.Take(t0.Add(time.Minute), 4, 1)
	b.Take(t0, 1, 1)
	b.Take(t0.Add(time.Minute), 1, 1)
	if n := b.Sweep(t0.Add(2 * time.Minute)); n != 1 {
		t.Fatalf("Sweep dropped %d, want 1", n)
	}

	s := collect(t, r)
	s.want(t, "ratekit.keyed.keys", map[string]int64{"ratekit.keyed=orgs": 2})
	s.want(t, "ratekit.keyed.evictions", map[string]int64{
		"ratekit.eviction=idle,ratekit.keyed=orgs": 1,
		"ratekit.eviction=busy,ratekit.keyed=orgs": 1,
	})
	s.want(t, "ratekit.keyed.swept", map[string]int64{"ratekit.keyed=orgs": 1})

	stopA()
	stopA()
	s = collect(t, r)
	s.want(t, "ratekit.keyed.keys", map[string]int64{"ratekit.keyed=orgs": 0})
}

// InstrumentPersist times every checkpoint, ObserveStore counts them and the
// states written; the options' own OnCheckpoint still runs.
func TestPersist(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, r := newMetrics(t, otelratekit.Config{})
		var own int
		opts := persist.Options{NoSync: true, CheckpointInterval: -1,
			OnCheckpoint: func(time.Duration, error) { own++ }}
		m.InstrumentPersist("quota", &opts)
		store, err := persist.Open(filepath.Join(t.TempDir(), "q.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		m.ObserveStore("quota", store)
		l := &slowLimiter{Limiter: mustBucket(t), took: 2 * time.Second}
		if err := store.Attach("l", l); err != nil {
			t.Fatal(err)
		}
		l.Take(t0, 1)
		if err := store.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		l.fail = true
		if err := store.Checkpoint(); err == nil {
			t.Fatal("checkpoint of an unmarshallable limiter succeeded")
		}
		l.fail = false
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		if own != 3 {
			t.Errorf("the options' own OnCheckpoint ran %d times, want 3", own)
		}
		s := collect(t, r)
		if got := s.hists["ratekit.persist.checkpoint.duration"]; len(got) != 2 ||
			got["ratekit.outcome=ok,ratekit.store=quota"] != (hist{2, 4}) ||
			got["ratekit.outcome=failed,ratekit.store=quota"] != (hist{1, 2}) {
			t.Errorf("checkpoint durations %+v, want two ok and one failed, 2s each", got)
		}
		s.want(t, "ratekit.persist.checkpoints", map[string]int64{
			"ratekit.outcome=ok,ratekit.store=quota":     2,
			"ratekit.outcome=failed,ratekit.store=quota": 1,
		})
		s.want(t, "ratekit.persist.states.written", map[string]int64{"ratekit.store=quota": 1})
		s.want(t, "ratekit.persist.states.deleted", map[string]int64{"ratekit.store=quota": 0})
	})
}

// slowLimiter's state takes took (of the synctest bubble's time) to
// marshal, and fails to while fail is set.
type slowLimiter struct {
	*tokenbucket.Limiter
	took time.Duration
	fail bool
}

func (s *slowLimiter) MarshalBinary() ([]byte, error) {
	time.Sleep(s.took)
	if s.fail {
		return nil, errors.New("cannot marshal")
	}
	return s.Limiter.MarshalBinary()
}

func mustBucket(tb testing.TB) *tokenbucket.Limiter {
	l, err := tokenbucket.New(tokenbucket.Config{Limit: 10, Window: time.Minute, Burst: 10, Name: "b"})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

type policy string

func (p policy) String() string { return string(p) }

// OnStoreError counts errors by kind and policy, never by key.
func TestOnStoreError(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	onErr := m.OnStoreError("redis", policy("FailFallback"))
	onErr("tok_1", fmt.Errorf("call: %w", context.DeadlineExceeded))
	onErr("tok_2", context.DeadlineExceeded)
	onErr("tok_1", context.Canceled)
	onErr("tok_3", errors.New("redisstore: Redis failed recently"))
	m.OnStoreError("other", nil)("k", errors.New("x"))
	s := collect(t, r)
	s.want(t, "ratekit.store.errors", map[string]int64{
		"error.type=timeout,ratekit.on_failure=FailFallback,ratekit.store=redis":  2,
		"error.type=canceled,ratekit.on_failure=FailFallback,ratekit.store=redis": 1,
		"error.type=other,ratekit.on_failure=FailFallback,ratekit.store=redis":    1,
		"error.type=other,ratekit.store=other":                                    1,
	})
}

// Wait records how long it waited, on the clock it was given, and how it
// ended.
func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, r := newMetrics(t, otelratekit.Config{})
		l := mustBucket(t) // 10 a minute: a token every 6s
		now := time.Now()
		l.Take(now, 10)
		if d, err := m.Wait(context.Background(), nil, l, 1); err != nil || !d.Allowed {
			t.Fatalf("Wait: %+v, %v", d, err)
		}
		if _, err := m.Wait(context.Background(), nil, l, 11); !errors.Is(err, ratekit.ErrExceedsLimit) {
			t.Fatalf("Wait for 11: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := m.Wait(ctx, nil, l, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait past the deadline: %v", err)
		}
		s := collect(t, r)
		got := s.hists["ratekit.wait.duration"]
		want := map[string]hist{
			"ratekit.outcome=allowed,ratekit.policy=b":  {1, 6},
			"ratekit.outcome=never,ratekit.policy=b":    {1, 0},
			"ratekit.outcome=deadline,ratekit.policy=b": {1, 0},
		}
		if len(got) != len(want) {
			t.Errorf("wait durations %+v, want %+v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("wait.duration{%s} = %+v, want %+v", k, got[k], v)
			}
		}
	})
}

// Bucket boundaries that do not increase are the provider's error, from New.
func TestBadBuckets(t *testing.T) {
	r := sdkmetric.NewManualReader()
	_, err := otelratekit.New(otelratekit.Config{
		MeterProvider:     sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)),
		RetryAfterBuckets: []float64{5, 1},
	})
	if err == nil {
		t.Fatal("New accepted decreasing bucket boundaries")
	}
}

// Nil arguments are left alone rather than failing at collection.
func TestNils(t *testing.T) {
	m, r := newMetrics(t, otelratekit.Config{})
	m.InstrumentHTTP(nil)
	m.InstrumentPersist("p", nil)
	m.ObserveKeyed("k", nil)()
	var keyed *ratekit.Keyed[string, *tokenbucket.Limiter]
	m.ObserveKeyed("k", keyed)
	var store *persist.Store
	m.ObserveStore("s", store)
	s := collect(t, r)
	if len(s.values) != 0 {
		t.Errorf("series %v from nil sources", s.values)
	}
}
