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
// after a lost race: a Take of 0 < n <= Burst may leave its stamp in the
// bound, so a later refund may give back less (accepted), even one that
// runs before the Take is decided; a Take of n above every Burst never
// raises it (rejected). Without the Stamps (withStamps with maxBurst 0),
// the checkers are the deterministic model they were, which rejects both
// races: TestTokenBucket failed about one run in five on the first.
func TestModelLostRace(t *testing.T) {
	apply := func(m *model.TokenBucket, in input) output { return applyBucket(m, in) }
	bucket := bucketChecker(func() *model.TokenBucket { return newBucketModel(bucketConfigs[0]) }, apply)
	keyed := keyedModel(false)
	for _, c := range []struct {
		name    string
		m       porcupine.Model
		ops     []porcupine.Operation
		stamps  int
		want    bool
		explain string
	}{
		{"bucket", bucket, lostRace(5, true, 0), bucketMaxBurst, true, "a raced denial's stamp"},
		{"bucket/n=9", bucket, lostRace(9, true, 0), bucketMaxBurst, false, "the stamp of a Take no Burst admits"},
		{"bucket/unstamped", bucket, lostRace(5, false, 0), bucketMaxBurst, true, "a denial that left no stamp"},
		{"bucket/deterministic", bucket, lostRace(5, true, 0), 0, false, "a raced denial's stamp, deterministically"},
		{"bucket/refund-in-race", bucket, refundInRace(0), bucketMaxBurst, true, "a refund between a Take's stamp and its decision"},
		{"bucket/refund-in-race/deterministic", bucket, refundInRace(0), 0, false, "a refund between a Take's stamp and its decision, deterministically"},
		{"keyed", keyed, lostRace(4, true, 1), keyedConfig.Burst, true, "a raced denial's stamp"},
		{"keyed/n=5", keyed, lostRace(5, true, 1), keyedConfig.Burst, false, "the stamp of a Take no Burst admits"},
		{"keyed/deterministic", keyed, lostRace(4, true, 1), 0, false, "a raced denial's stamp, deterministically"},
		{"keyed/refund-in-race", keyed, refundInRace(1), keyedConfig.Burst, true, "a refund between a Take's stamp and its decision"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ops := withStamps(c.ops, c.stamps)
			if got := porcupine.CheckOperations(c.m, ops); got != c.want {
				t.Errorf("linearizable = %v with %s, want %v:\n%s", got, c.explain, c.want, describe(ops))
			}
		})
	}
}

// refundInRace is a history in which a Refund sees the stamp of a Take that
// has not yet been decided. For bucketConfigs[0] (for the keyed config,
// Burst 4, C takes 2 and every TAT is 100ms less): C = Take(+0, 3) empties
// the bucket to 300ms;
// A = Take(+30ms, 2) finds room (470ms of 500), raises the bound to +30ms
// and loses its CAS to B = Take(+0, 1); Refund(+0, 1) of B sees the bound
// and gives back 70ms, not 100ms; A's retry is admitted at 330ms + 170ms
// (ResetAfter 500ms, where a bucket whose refund gave back 100ms would say
// 470ms, and one without the refund would deny). No order of the four
// calls explains that unless the Take's stamp is an event of its own,
// anywhere in the Take's interval.
func refundInRace(key int) []porcupine.Operation {
	m := newBucketModel(bucketConfigs[0])
	cn := 3
	if key != 0 {
		m, cn = freshBucket(), 2
	}
	c := output{D: m.Take(t0, cn)}
	b := output{D: m.Take(t0, 1)}
	m.Stamp(t0.Add(30 * time.Millisecond))
	m.Refund(t0, 1)
	a := output{D: m.Take(t0.Add(30*time.Millisecond), 2)}
	op := func(client int, in input, out output, call, ret int64) porcupine.Operation {
		in.Key = key
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	return []porcupine.Operation{
		op(0, input{Kind: opTake, N: cn}, c, 0, 1),
		op(0, input{Kind: opTake, Now: 30 * time.Millisecond, N: 2}, a, 2, 7),
		op(1, input{Kind: opTake, N: 1}, b, 3, 4),
		op(2, input{Kind: opRefund, N: 1}, output{}, 5, 6),
	}
}
