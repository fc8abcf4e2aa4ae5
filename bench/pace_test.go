package bench

import (
	"context"
	"testing"

	uber "go.uber.org/ratelimit"
)

// BenchmarkPace is the blocking form, "wait until one unit may pass", on a
// limiter whose rate no loop reaches, so that no call ever waits: it
// measures what pacing costs when there is nothing to wait for. It is the
// one case go.uber.org/ratelimit can do: its Take always waits for the
// next slot and never refuses, so it has no allow or deny.
//
// Everyone reads the real clock: ratekit's tokenbucket Wait(ctx, 1),
// x/time/rate's Wait(ctx), juju's Wait(1) and uber's Take(), at 1e9 per
// second (uber: New(1e9), a slot per ns with its default slack of 10;
// juju: 1000 tokens per µs holding 2^40). That no call waited is not
// checked per call (it would cost a clock read); the rates make a wait
// impossible on one goroutine, which is why this case is not parallel.
func BenchmarkPace(b *testing.B) {
	ctx := context.Background()
	impls := []struct {
		name string
		new  func() func()
	}{
		{"ratekit", func() func() {
			l := newTokenBucket(false)
			return func() {
				if _, err := l.Wait(ctx, 1); err != nil {
					panic(err)
				}
			}
		}},
		{"xrate", func() func() {
			l := newXrate(false)
			return func() {
				if err := l.Wait(ctx); err != nil {
					panic(err)
				}
			}
		}},
		{"juju", func() func() {
			l := newJuju(false, nil)
			return func() { l.Wait(1) }
		}},
		{"uber", func() func() {
			l := uber.New(1e9)
			return func() { l.Take() }
		}},
	}
	for _, impl := range impls {
		b.Run("never-waits/"+impl.name, func(b *testing.B) {
			wait := impl.new()
			loop(b, impl.name, false, func() bool { wait(); return true })
		})
	}
}
