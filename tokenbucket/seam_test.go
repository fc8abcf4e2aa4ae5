package tokenbucket_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestInterning: New shares parameters between the limiters of equal
// Configs, and only theirs (see conformance.Interning).
func TestInterning(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 60, Window: time.Minute, Burst: 6, Name: "a", Clock: atT0()}
	with := func(f func(*tokenbucket.Config)) tokenbucket.Config { c := cfg; f(&c); return c }
	conformance.Interning[tokenbucket.Config, *tokenbucket.Limiter]{
		New: tokenbucket.New, SameParams: tokenbucket.SameParams, Interned: tokenbucket.Interned, Start: t0,
		Config: cfg,
		Others: map[string]tokenbucket.Config{
			"Limit":  with(func(c *tokenbucket.Config) { c.Limit = 61 }),
			"Window": with(func(c *tokenbucket.Config) { c.Window = time.Hour }),
			"Burst":  with(func(c *tokenbucket.Config) { c.Burst = 7 }),
			"Name":   with(func(c *tokenbucket.Config) { c.Name = "per-org" }),
			"Clock":  with(func(c *tokenbucket.Config) { c.Clock = mockAt(t0) }),
		},
		Numbered: func(i int) tokenbucket.Config {
			return tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 1 + i%7, Name: fmt.Sprint(i)}
		},
		Template: func(c tokenbucket.Config) *tokenbucket.Limiter { return mustTemplate(t, c).New() },
		Unhashable: &tokenbucket.Config{Limit: 1, Window: time.Second, Burst: 2,
			Clock: unhashableClock{Clock: atT0(), tags: []string{"unhashable"}}},
		Reconfigure: (*tokenbucket.Limiter).Reconfigure,
		Inline:      tokenbucket.Inline,
		Config2:     tokenbucket.Config{Limit: 120, Window: time.Minute, Burst: 12, Name: "b", Clock: atT0()},
		PerKey:      33,
	}.Run(t)
}

// unhashableClock is a clock.Clock whose dynamic value cannot be a map key.
type unhashableClock struct {
	clock.Clock
	tags []string
}

// TestReconfigureRacingTakes: Takes at one instant race Reconfigures that
// switch the limiter between two rates (and so between two time scales and
// parameter sets, each swap a replacement through internal/cell) with the
// same Burst. Nothing refills at one instant, and the rates' intervals are
// whole multiples of each other, so the carried state is exact: exactly
// Burst units are admitted in all, none lost or minted by a CAS landing on
// a replaced state.
func TestReconfigureRacingTakes(t *testing.T) {
	const burst = 4000
	slow := tokenbucket.Config{Limit: 1, Window: time.Hour, Burst: burst, Clock: atT0()}
	slower := tokenbucket.Config{Limit: 1, Window: 3 * time.Hour, Burst: burst, Clock: atT0()}
	for round := range 5 {
		l := mustNew(t, slow)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		stop, started := make(chan struct{}), make(chan struct{})
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-started // after the first replacement, so that Takes race the later ones
				for {
					select {
					case <-stop:
						return
					default:
					}
					if l.Take(t0, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if admitted.Load() >= burst {
					close(stop)
					return
				}
				cfg := slow
				if i%2 == 0 {
					cfg = slower
				}
				if err := l.Reconfigure(cfg); err != nil {
					t.Error(err)
				}
				if i == 0 {
					close(started)
				}
			}
		}()
		wg.Wait()
		require.False(t, tokenbucket.Inline(l), "round %d: replaced", round)
		require.Equal(t, int64(burst), admitted.Load(), "round %d: admitted", round)
		require.False(t, l.Take(t0, 1).Allowed, "round %d: drained", round)
	}
}
