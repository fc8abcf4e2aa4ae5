package otelratekit

import (
	"context"
	"errors"

	"github.com/benbjohnson/clock"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ratekit/ratekit"
)

type waitKey struct{ policy, outcome string }

// Wait is ratekit.Wait(ctx, clk, l, n), recording the time it spent, read
// on clk (nil: the real clock), in ratekit.wait.duration, under AttrPolicy
// (the returned Decision's Policy: the binding limiter's Name) and
// AttrOutcome: "allowed", "never" (ErrExceedsLimit), "deadline"
// (ErrWaitExceedsDeadline) or "canceled" (the context ended). Give limiters
// Names from a fixed set, never a key, or the policy attribute grows with
// the keys. It returns what ratekit.Wait returns.
func (m *Metrics) Wait(ctx context.Context, clk clock.Clock, l ratekit.Limiter, n int) (ratekit.Decision, error) {
	if clk == nil {
		clk = clock.New()
	}
	start := clk.Now()
	d, err := ratekit.Wait(ctx, clk, l, n)
	took := clk.Since(start)
	out := OutcomeAllowed
	switch {
	case err == nil:
	case errors.Is(err, ratekit.ErrExceedsLimit):
		out = OutcomeNever
	case errors.Is(err, ratekit.ErrWaitExceedsDeadline):
		out = OutcomeDeadline
	default:
		out = OutcomeCanceled
	}
	m.waitDur.Record(ctx, took.Seconds(), m.waitOption(d.Policy, out))
	return d, err
}

// waitOption returns the attributes of a Wait's record, made once per
// policy and outcome.
func (m *Metrics) waitOption(policy, outcome string) metric.RecordOption {
	k := waitKey{policy, outcome}
	if o, ok := m.waitOpt.Load(k); ok {
		return o.(metric.RecordOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(AttrPolicy.String(policy), AttrOutcome.String(outcome)))
	actual, _ := m.waitOpt.LoadOrStore(k, o)
	return actual.(metric.RecordOption)
}
