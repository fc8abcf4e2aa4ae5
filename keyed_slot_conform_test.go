package ratekit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// The whole conformance suite through one key of a Keyed whose limiters
// keep their state in the table slot (keyed_slot.go): Take goes through
// Keyed.Take, which decides in the slot; everything else through Get's
// limiter, whose Reconfigure and UnmarshalBinary move the state out of its
// slot. In the churned variant, every Reconfigure and UnmarshalBinary is
// followed by enough new keys to rebuild the key's table, which moves the
// state back into a new slot, so the suite's checks run across moves.
// (TestKeyedKeyConforms runs the suite over a stand-in limiter that has no
// slot.)

// suiteLimiter is what the suite needs of a key's limiter.
type suiteLimiter interface {
	ratekit.Limiter
	Idle(now time.Time) bool
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// slotView is one key of a Keyed seen as a Limiter.
type slotView[L suiteLimiter] struct {
	k     *ratekit.Keyed[string, L]
	key   string
	churn *int // not nil: insert keys after each slow-path call, from *churn on
}

func (v slotView[L]) Take(now time.Time, n int) ratekit.Decision { return v.k.Take(now, v.key, n) }
func (v slotView[L]) Peek(now time.Time, n int) ratekit.Decision { return v.k.Get(v.key).Peek(now, n) }
func (v slotView[L]) Refund(at time.Time, n int)                 { v.k.Get(v.key).Refund(at, n) }
func (v slotView[L]) Idle(now time.Time) bool                    { return v.k.Get(v.key).Idle(now) }
func (v slotView[L]) MarshalBinary() ([]byte, error)             { return v.k.Get(v.key).MarshalBinary() }
func (v slotView[L]) UnmarshalBinary(b []byte) error {
	err := v.k.Get(v.key).UnmarshalBinary(b)
	v.rebuild()
	return err
}

// rebuild inserts new keys and deletes those inserted before, 16 at a
// time, until the key's state is back in force in a table slot: the shard
// tables grow (a rebuild at each 3/4 full), and tombstones make them
// compact (another rebuild), each rebuild moving the states of live keys
// into its new slots, while the Keyed stays small.
func (v slotView[L]) rebuild() {
	if v.churn == nil {
		return
	}
	// rolling keeps the plain layout (no state in the slot): one round.
	slotted := ratekit.KeyedSlotBytes(v.k) > 40
	for i := 0; i == 0 || slotted && !ratekit.KeyedStateInSlot(v.k, v.key); i++ {
		if i == 1000 {
			panic("16000 inserts and deletes did not bring the key's state back into its slot")
		}
		for j := range 16 {
			v.k.Get("other-" + strconv.Itoa(*v.churn+16+j))
			v.k.Delete("other-" + strconv.Itoa(*v.churn+j))
		}
		*v.churn += 16
	}
}

// slotSubject returns a Subject over a key of a Keyed of limiters that
// newL makes, reconfigured by reconf (which sets the capacity) and rewin
// (which sets the Window, its alignment moved by shift, read at now).
func slotSubject[L suiteLimiter](capacity int, policy string, newL func() L, reconf func(l L, limit int) error,
	rewin func(l L, window, shift time.Duration, now time.Time) error, churn bool) conformance.Subject {
	view := func() slotView[L] {
		cfg := ratekit.KeyedConfig{}
		if churn {
			// One shard (a shard per 64 keys of MaxKeys), so that every
			// 16 inserts and deletes rebuild the key's table; the churn
			// keeps at most 33 keys, so none is evicted.
			cfg.MaxKeys = 64
		}
		v := slotView[L]{k: ratekit.NewKeyed(func(string) L { return newL() }, cfg), key: "org-1"}
		if churn {
			v.churn = new(int)
		}
		return v
	}
	return conformance.Subject{
		New:      func(testing.TB) ratekit.Limiter { return view() },
		Capacity: capacity,
		Policy:   policy,
		Reconfigure: func(l ratekit.Limiter, limit int) error {
			v := l.(slotView[L])
			err := reconf(v.k.Get(v.key), limit)
			v.rebuild()
			return err
		},
		ReconfigureWindow: func(l ratekit.Limiter, window, shift time.Duration, now time.Time) error {
			v := l.(slotView[L])
			err := rewin(v.k.Get(v.key), window, shift, now)
			v.rebuild()
			return err
		},
	}
}

// clockAt returns a mock clock stopped at now, for a Reconfigure that
// reads the time.
func clockAt(now time.Time) *clock.Mock {
	m := clock.NewMock()
	m.Set(now)
	return m
}

func TestKeyedSlotConforms(t *testing.T) {
	start := clock.NewMock()
	start.Set(conformance.DefaultStart)
	tb := tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Name: "bucket", Clock: start}
	fw := fixedwindow.Config{Limit: 10, Window: time.Minute, Name: "window", Clock: start}
	sw := slidingwindow.Config{Limit: 10, Window: time.Minute, Name: "counter", Clock: start}
	rl := rolling.Config{Limit: 10, Window: time.Minute, Name: "rolling", Clock: start}
	for _, mode := range []struct {
		name  string
		churn bool
	}{{"Plain", false}, {"Churned", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Run("tokenbucket", func(t *testing.T) {
				conformance.Run(t, slotSubject(tb.Burst, tb.Name, func() *tokenbucket.Limiter {
					l, err := tokenbucket.New(tb)
					if err != nil {
						panic(err)
					}
					return l
				}, func(l *tokenbucket.Limiter, limit int) error {
					c := tb
					c.Burst = limit
					c.Limit = limit
					return l.Reconfigure(c)
				}, func(l *tokenbucket.Limiter, window, _ time.Duration, now time.Time) error {
					c := tb // Limit == Burst: the Window is the refill of a full bucket
					c.Window, c.Clock = window, clockAt(now)
					return l.Reconfigure(c)
				}, mode.churn))
			})
			t.Run("fixedwindow", func(t *testing.T) {
				conformance.Run(t, slotSubject(fw.Limit, fw.Name, func() *fixedwindow.Limiter {
					l, err := fixedwindow.New(fw)
					if err != nil {
						panic(err)
					}
					return l
				}, func(l *fixedwindow.Limiter, limit int) error {
					c := fw
					c.Limit = limit
					return l.Reconfigure(c)
				}, func(l *fixedwindow.Limiter, window, shift time.Duration, now time.Time) error {
					c := fw
					c.Window, c.Offset, c.Clock = window, fw.Offset+shift, clockAt(now)
					return l.Reconfigure(c)
				}, mode.churn))
			})
			t.Run("counter", func(t *testing.T) {
				conformance.Run(t, slotSubject(sw.Limit, sw.Name, func() *slidingwindow.Counter {
					l, err := slidingwindow.NewCounter(sw)
					if err != nil {
						panic(err)
					}
					return l
				}, func(l *slidingwindow.Counter, limit int) error {
					c := sw
					c.Limit = limit
					return l.Reconfigure(c)
				}, func(l *slidingwindow.Counter, window, _ time.Duration, now time.Time) error {
					c := sw
					c.Window, c.Clock = window, clockAt(now)
					return l.Reconfigure(c)
				}, mode.churn))
			})
			t.Run("rolling", func(t *testing.T) {
				if mode.churn {
					t.Skip("rolling keeps the plain slot: nothing moves (Plain runs it)")
				}
				s := slotSubject(rl.Limit, rl.Name, func() *rolling.Limiter {
					l, err := rolling.New(rl)
					if err != nil {
						panic(err)
					}
					return l
				}, func(l *rolling.Limiter, limit int) error {
					c := rl
					c.Limit = limit
					return l.Reconfigure(c)
				}, func(l *rolling.Limiter, window, _ time.Duration, now time.Time) error {
					c := rl
					c.Window, c.Clock = window, clockAt(now)
					return l.Reconfigure(c)
				}, mode.churn)
				s.Anchored = true
				conformance.Run(t, s)
			})
		})
	}
}
