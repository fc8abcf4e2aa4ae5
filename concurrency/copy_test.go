package concurrency_test

import (
	"context"
	"reflect"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
)

// copyOf returns a struct copy of *l, as `c := *l` makes one (go vet
// flags that form): a misuse the Limiter contract forbids.
func copyOf(l *concurrency.Limiter) *concurrency.Limiter {
	c := reflect.New(reflect.TypeOf(l).Elem())
	c.Elem().Set(reflect.ValueOf(l).Elem())
	return c.Interface().(*concurrency.Limiter)
}

// TestCopyRefusesQueue copies a Limiter while an Acquire caller is queued:
// the copy's words point at the original's queue. Every call that would
// touch that queue through the copy must refuse, and the original must go
// on as if the copy did not exist. The copy used to hand the queued caller
// units too, and the original's grant then closed its channel a second
// time: a panic.
func TestCopyRefusesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustNew(t, 1, "")
		require.True(t, l.Take(t0, 1).Allowed)
		a := goAcquire(l, context.Background(), 1)
		require.False(t, a.returned())
		c := copyOf(l)

		require.NotPanics(t, func() { c.Release(1) }, "Release through the copy")
		require.Equal(t, uint64(1), c.RejectedReleases(), "the copy's Release is refused")
		require.ErrorIs(t, c.Reconfigure(concurrency.Config{Limit: 2}), concurrency.ErrCopied)
		_, err := c.Acquire(context.Background(), 1)
		require.ErrorIs(t, err, concurrency.ErrCopied, "an Acquire through the copy that would queue")
		require.ErrorIs(t, c.UnmarshalBinary(mustMarshal(t, l)), concurrency.ErrCopied)
		require.False(t, ratekit.TakeAll(t0, 1, l, c).Allowed, "TakeAll of both")
		synctest.Wait()
		require.False(t, a.returned(), "the copy granted nothing")

		// The original is as it was: its Release hands the unit on.
		l.Release(1)
		synctest.Wait()
		require.True(t, a.returned())
		require.NoError(t, a.err)
		a.release()
		require.True(t, l.Idle(t0))
		require.Equal(t, uint64(0), l.RejectedReleases())
		require.NoError(t, l.Reconfigure(concurrency.Config{Limit: 2}))
	})
}

// TestZeroCopyIsFresh: a zero Limiter never configured has nothing to
// share, so a copy of it is a zero Limiter of its own and may be
// configured.
func TestZeroCopyIsFresh(t *testing.T) {
	var z concurrency.Limiter
	c := copyOf(&z)
	require.NoError(t, c.Reconfigure(concurrency.Config{Limit: 2}))
	require.NoError(t, z.Reconfigure(concurrency.Config{Limit: 3}))
	require.Equal(t, 2, c.Peek(t0, 0).Limit)
	require.Equal(t, 3, z.Peek(t0, 0).Limit)
}

func mustMarshal(t *testing.T, l *concurrency.Limiter) []byte {
	t.Helper()
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	return b
}
