package lincheck

import (
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit/internal/model"
)

// TestSearchBudget holds budgeted to its promise: within the budget,
// porcupine's verdicts stand (a linearizable history is Ok, a violation
// Illegal, each having taken the same number of steps every time, so that
// whether a history fits the budget depends on it alone); a search cut by
// the budget ends Illegal with more steps than the budget, which check
// takes for no verdict rather than for a violation.
func TestSearchBudget(t *testing.T) {
	apply := func(m *model.TokenBucket, in input) output { return applyBucket(m, in) }
	bucket := bucketChecker(func() *model.TokenBucket { return newBucketModel(bucketConfigs[0]) }, apply)
	for _, c := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"linearizable", withStamps(lostRace(5, true, 0), bucketMaxBurst), porcupine.Ok},
		{"violation", withStamps(lostRace(9, true, 0), bucketMaxBurst), porcupine.Illegal},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, steps := budgeted(bucket, defaultSteps)
			res, _ := porcupine.CheckOperationsVerbose(m, c.ops, 0)
			need := steps.Load()
			if res != c.want || need > defaultSteps || need < 2 {
				t.Fatalf("with the default budget: %v after %d steps; want %v within %d", res, need, c.want, defaultSteps)
			}
			for range 3 {
				m, steps := budgeted(bucket, defaultSteps)
				if res, _ := porcupine.CheckOperationsVerbose(m, c.ops, 0); res != c.want || steps.Load() != need {
					t.Fatalf("the same history again: %v after %d steps; first %v after %d", res, steps.Load(), c.want, need)
				}
			}
			m, steps = budgeted(bucket, need-1)
			if res, _ := porcupine.CheckOperationsVerbose(m, c.ops, 0); res != porcupine.Illegal || steps.Load() <= need-1 {
				t.Fatalf("with a budget of %d steps, one short: %v after %d steps; want Illegal with more steps than the budget (no verdict)",
					need-1, res, steps.Load())
			}
		})
	}
}
