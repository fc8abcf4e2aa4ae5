package lincheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ratekit/ratekit/internal/model"
)

// lostRace is the history of tokenbucket's TestRefundAfterLostRace under
// bucketConfigs[0] (10 per second, Burst 5, an interval of 100ms): A =
// Take(+30ms, n) finds the full bucket, would admit n, raises the bound on
// stamps to +30ms and loses its CAS to B = Take(+0, 1); its retry is
// denied. Refund(+0, 1) then gives back 70ms, not 100ms, and Peek(+0, 5)
// sees that. The outputs are those of a model that, as the limiter does,
// keeps A's stamp (stamped false: one that does not, as the limiter
// doesn't when A's n could never be admitted).
func lostRace(n int, stamped bool, key int) []porcupine.Operation {
	m := newBucketModel(bucketConfigs[0])
	if key != 0 {
		m = freshBucket()
	}
	b := output{D: m.Take(t0, 1)}
	a := output{D: m.Take(t0.Add(30*time.Millisecond), n)}
	if stamped {
		m.Stamp(t0.Add(30 * time.Millisecond))
	}
	m.Refund(t0, 1)
	p := output{D: m.Peek(t0, 5)}
	op := func(client int, in input, out output, call, ret int64) porcupine.Operation {
		in.Key = key
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	return []porcupine.Operation{
		op(0, input{Kind: opTake, Now: 30 * time.Millisecond, N: n}, a, 0, 3),
		op(1, input{Kind: opTake, N: 1}, b, 1, 2),
		op(1, input{Kind: opRefund, N: 1}, output{}, 4, 5),
		op(1, input{Kind: opPeek, N: 5}, p, 6, 7),
	}
}

// TestModelLostRace holds the token-bucket checkers to Refund's contract
// after a lost race: a denied Take of 0 < n <= Burst may have left its
// stamp in the bound, so a later refund may give back less (accepted); a
// Take of n above every Burst never raises it (rejected); and the
// deterministic model, which the checkers were before (maxBurst 0), rejects
// the lost race, as lincheck's TestTokenBucket did about one run in five.
func TestModelLostRace(t *testing.T) {
	apply := func(m *model.TokenBucket, in input) output { return applyBucket(m, in) }
	bucket := func(maxBurst int) porcupine.Model {
		return bucketChecker(func() *model.TokenBucket { return newBucketModel(bucketConfigs[0]) }, apply, maxBurst)
	}
	for _, c := range []struct {
		name    string
		m       porcupine.Model
		ops     []porcupine.Operation
		want    bool
		explain string
	}{
		{"bucket", bucket(bucketMaxBurst), lostRace(5, true, 0), true, "a raced denial's stamp"},
		{"bucket/n=9", bucket(bucketMaxBurst), lostRace(9, true, 0), false, "the stamp of a Take no Burst admits"},
		{"bucket/unstamped", bucket(bucketMaxBurst), lostRace(5, false, 0), true, "a denial that left no stamp"},
		{"bucket/deterministic", bucket(0), lostRace(5, true, 0), false, "a raced denial's stamp, deterministically"},
		{"keyed", keyedModel(false), lostRace(4, true, 1), true, "a raced denial's stamp"},
		{"keyed/n=5", keyedModel(false), lostRace(5, true, 1), false, "the stamp of a Take no Burst admits"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(c.m, c.ops); got != c.want {
				t.Errorf("linearizable = %v with %s, want %v:\n%s", got, c.explain, c.want, describe(c.ops))
			}
		})
	}
}
