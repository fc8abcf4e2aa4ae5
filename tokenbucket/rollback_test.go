package tokenbucket_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestRollbackRefusesVersion3: what a build before version 3 does with the
// state of a drained bucket this build saves (Persistence in the ratekit
// package documentation). Such a build parses the header as
// core.ParseHeaders(b, TokenBucket, 1, 2) and refuses version 3 with
// ErrInvalidState; these exact bytes, fed to main's UnmarshalBinary at
// 4933695, gave "tokenbucket: format version 3, this build reads 1 and 2"
// and left the bucket full. A layout those builds could read instead,
// version 2 with the rate appended, is refused too: their reader rejects
// trailing bytes. So a rollback restores no drained bucket (persist starts
// the key fresh), and a full bucket, still version 1, restores as before.
func TestRollbackRefusesVersion3(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	l := mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10})
	require.True(t, l.Take(at, 10).Allowed)
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, "726b010301a2d6b3b10d00000180c2d72f0a", hex.EncodeToString(b))

	_, _, err = core.ParseHeaders(b, core.TokenBucket, 1, 2)
	require.ErrorIs(t, err, ratekit.ErrInvalidState)
	require.ErrorContains(t, err, "format version 3, this build reads 1 and 2")

	v2 := append([]byte{}, b...)
	v2[3] = 2
	payload, _, err := core.ParseHeaders(v2, core.TokenBucket, 1, 2)
	require.NoError(t, err)
	r := core.NewReader(core.TokenBucket, payload)
	r.Uint64()    // kind
	r.Unix("TAT") // seconds, nanoseconds
	r.Uint64()    // r
	r.Uint64()    // den
	require.ErrorContains(t, r.Err(), "trailing bytes", "an older reader of version 2 with the rate appended")

	full, err := mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10}).MarshalBinary()
	require.NoError(t, err)
	_, _, err = core.ParseHeaders(full, core.TokenBucket, 1, 2)
	require.NoError(t, err, "a full bucket's state stays version 1")
}
