package ratekit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
)

// Issue 16, item 4: one rule for nil members everywhere. A nil interface
// and a typed nil pointer are both "no limit": skipped by AllOf, TakeAll,
// PeekAll, ReleaseAll and All's methods, never called, never a panic.
func TestNilMembersAreSkipped(t *testing.T) {
	var typedNil *counter
	nils := map[string]ratekit.Limiter{"nil interface": nil, "typed nil": typedNil}
	for name, nilMember := range nils {
		t.Run(name, func(t *testing.T) {
			a := newCounter("a", 3, time.Second, time.Minute)
			for _, members := range [][]ratekit.Limiter{
				{nilMember}, {nilMember, a}, {a, nilMember}, {nilMember, a, nilMember},
			} {
				require.NotPanics(t, func() {
					all := ratekit.AllOf(members...)
					hasA := len(all.Members()) == 1
					require.LessOrEqual(t, len(all.Members()), 1, "AllOf keeps only the non-nil members")
					for _, take := range []func() ratekit.Decision{
						func() ratekit.Decision { return ratekit.TakeAll(t0, 2, members...) },
						func() ratekit.Decision { return all.Take(t0, 2) },
					} {
						require.Equal(t, ratekit.PeekAll(t0, 2, members...), all.Peek(t0, 2))
						d := take()
						require.True(t, d.Allowed, "%v", d)
						if hasA {
							require.Equal(t, 2, a.Used())
							require.Equal(t, "a", d.Policy)
						}
						ratekit.ReleaseAll(2, members...)
						require.Zero(t, a.Used())
						all.Take(t0, 1)
						all.Refund(t0, 1)
						all.Release(0)
						require.Zero(t, a.Used())
					}
					require.False(t, ratekit.TakeAll(t0, -1, members...).Allowed)
					require.Zero(t, a.Used())
				})
			}
			// A denial by a later member rolls back the earlier ones, past nils.
			full := newCounter("full", 1, time.Second, time.Minute)
			full.Take(t0, 1)
			require.NotPanics(t, func() {
				d := ratekit.TakeAll(t0, 1, a, nilMember, full, nilMember)
				require.False(t, d.Allowed)
				require.Equal(t, "full", d.Policy)
			})
			require.Zero(t, a.Used())
		})
	}
}

// TakeEach follows the same rule: a nil or typed-nil member is skipped,
// never called, admits any N >= 0 in its Verdict and never binds an
// admission; a denial rolls back the others past it.
func TestTakeEachNilMembers(t *testing.T) {
	var typedNil *counter
	for name, nilMember := range map[string]ratekit.Limiter{"nil interface": nil, "typed nil": typedNil} {
		t.Run(name, func(t *testing.T) {
			a := newCounter("a", 3, time.Second, time.Minute)
			require.NotPanics(t, func() {
				asks := []ratekit.Ask{{Limiter: nilMember, N: 1}, {Limiter: a, N: 2}, {Limiter: nilMember, N: 5}}
				d, i := ratekit.TakeEach(t0, asks)
				require.True(t, d.Allowed)
				require.Equal(t, 1, i)
				require.Equal(t, "a", d.Policy)
				require.Equal(t, 2, a.Used())
				require.True(t, asks[0].Verdict.Allowed)
				require.True(t, asks[2].Verdict.Allowed)
				a.Refund(t0, 2)

				d, i = ratekit.TakeEach(t0, []ratekit.Ask{{Limiter: nilMember, N: 1}})
				require.True(t, d.Allowed)
				require.Equal(t, -1, i, "only nil members: nothing binds")

				full := newCounter("full", 1, time.Second, time.Minute)
				full.Take(t0, 1)
				asks = []ratekit.Ask{{Limiter: a, N: 1}, {Limiter: nilMember, N: 1}, {Limiter: full, N: 1}, {Limiter: nilMember, N: 1}}
				d, i = ratekit.TakeEach(t0, asks)
				require.False(t, d.Allowed)
				require.Equal(t, 2, i)
				require.Equal(t, "full", d.Policy)
				require.True(t, asks[3].Verdict.Allowed)
			})
			require.Zero(t, a.Used())
		})
	}
}
