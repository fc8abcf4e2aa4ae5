package rolling_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
	"github.com/ratekit/ratekit/rolling"
)

// TestRollbackRefusesVersion3: what a build before version 3 does with the
// state of an open window this build saves (Persistence in the ratekit
// package documentation). Such a build parses the header as
// core.ParseHeaders(b, Rolling, 1, 2) and refuses version 3 with
// ErrInvalidState; these exact bytes, fed to main's UnmarshalBinary at
// 4933695, gave "rolling: format version 3, this build reads 1 and 2" and
// left the limiter fresh. A layout those builds could read instead,
// version 2 with the Window appended, is refused too: their reader rejects
// trailing bytes. No window open is still version 1, read as before.
func TestRollbackRefusesVersion3(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	l := mustNew(t, rolling.Config{Limit: 10, Window: time.Minute})
	require.True(t, l.Take(at, 10).Allowed)
	b, err := l.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, "726b03030aa0d6b3b10d000080b09dc2df01", hex.EncodeToString(b))

	_, _, err = core.ParseHeaders(b, core.Rolling, 1, 2)
	require.ErrorIs(t, err, ratekit.ErrInvalidState)
	require.ErrorContains(t, err, "format version 3, this build reads 1 and 2")

	v2 := append([]byte{}, b...)
	v2[3] = 2
	payload, _, err := core.ParseHeaders(v2, core.Rolling, 1, 2)
	require.NoError(t, err)
	r := core.NewReader(core.Rolling, payload)
	r.Uint64()      // count
	r.Unix("start") // seconds, nanoseconds
	r.Uint64()      // flags
	require.ErrorContains(t, r.Err(), "trailing bytes", "an older reader of version 2 with the Window appended")

	fresh, err := mustNew(t, rolling.Config{Limit: 10, Window: time.Minute}).MarshalBinary()
	require.NoError(t, err)
	_, _, err = core.ParseHeaders(fresh, core.Rolling, 1, 2)
	require.NoError(t, err, "no window open stays version 1")
}
