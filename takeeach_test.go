package ratekit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
)

// TestTakeEachAdmits checks per-member costs, the binding member and the
// verdicts of an admitted request.
func TestTakeEachAdmits(t *testing.T) {
	bytes := newCounter("bytes", 1000, time.Second, time.Minute)
	reqs := newCounter("requests", 10, time.Second, time.Minute)
	asks := []ratekit.Ask{{Limiter: bytes, N: 600}, {Limiter: reqs, N: 1}, {Limiter: nil, N: 5}}
	d, i := ratekit.TakeEach(t0, asks)
	require.True(t, d.Allowed)
	require.Equal(t, 1, i, "requests has the least Remaining (9 against 400)")
	require.Equal(t, "requests", d.Policy)
	require.Equal(t, 600, bytes.Used())
	require.Equal(t, 1, reqs.Used())
	require.Equal(t, 400, asks[0].Verdict.Remaining)
	require.Equal(t, 9, asks[1].Verdict.Remaining)
	require.True(t, asks[2].Verdict.Allowed, "a nil member admits")
}

// TestTakeEachRefusal checks that a refusal rolls back each member by its
// own cost, asks every member once, and names the refusing member.
func TestTakeEachRefusal(t *testing.T) {
	org := &callCounter{c: newCounter("org", 100, time.Second, time.Minute)}
	tok := &callCounter{c: newCounter("token", 1, 20*time.Second, time.Minute)}
	ip := &callCounter{c: newCounter("ip", 1, 5*time.Second, time.Minute)}
	require.True(t, tok.c.Take(t0, 1).Allowed)
	require.True(t, ip.c.Take(t0, 1).Allowed)
	asks := []ratekit.Ask{{Limiter: org, N: 7}, {Limiter: tok, N: 1}, {Limiter: ip, N: 1}}
	d, i := ratekit.TakeEach(t0, asks)
	require.False(t, d.Allowed)
	require.Equal(t, 1, i, "token refused with the longest RetryAfter")
	require.Equal(t, "token", d.Policy)
	require.Equal(t, 0, org.c.Used(), "org's 7 units given back")
	require.True(t, asks[0].Verdict.Allowed)
	require.False(t, asks[1].Verdict.Allowed)
	require.False(t, asks[2].Verdict.Allowed, "ip would refuse too: its verdict says so")
	require.Equal(t, [3]int{1, 0, 1}, [3]int{org.takes, org.peeks, org.refunds})
	require.Equal(t, [3]int{1, 0, 0}, [3]int{tok.takes, tok.peeks, tok.refunds})
	require.Equal(t, [3]int{0, 1, 0}, [3]int{ip.takes, ip.peeks, ip.refunds})

	// The longest RetryAfter may come after the refusing member.
	asks = []ratekit.Ask{{Limiter: ip, N: 1}, {Limiter: tok, N: 1}}
	d, i = ratekit.TakeEach(t0, asks)
	require.Equal(t, 1, i)
	require.Equal(t, 20*time.Second, d.RetryAfter)

	// A negative cost is refused with Never, by a nil member too.
	d, i = ratekit.TakeEach(t0, []ratekit.Ask{{Limiter: nil, N: -1}})
	require.False(t, d.Allowed)
	require.Equal(t, ratekit.Never, d.RetryAfter)
	require.Equal(t, 0, i)
	d, i = ratekit.TakeEach(t0, nil)
	require.True(t, d.Allowed)
	require.Equal(t, -1, i)
}

func TestTakeEachAllocatesNothing(t *testing.T) {
	a := newCounter("a", 1<<30, time.Second, time.Minute)
	b := newCounter("b", 1, time.Second, time.Minute)
	require.True(t, b.Take(t0, 1).Allowed)
	asks := []ratekit.Ask{{Limiter: a, N: 1}, {Limiter: b, N: 1}}
	require.Zero(t, testing.AllocsPerRun(100, func() { ratekit.TakeEach(t0, asks) }))
}

// callCounter counts the calls made on a counter.
type callCounter struct {
	c                     *counter
	takes, peeks, refunds int
}

func (c *callCounter) Take(now time.Time, n int) ratekit.Decision {
	c.takes++
	return c.c.Take(now, n)
}

func (c *callCounter) Peek(now time.Time, n int) ratekit.Decision {
	c.peeks++
	return c.c.Peek(now, n)
}

func (c *callCounter) Refund(at time.Time, n int) {
	c.refunds++
	c.c.Refund(at, n)
}
