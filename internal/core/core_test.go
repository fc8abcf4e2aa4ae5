package core_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

func TestHeaderRoundTrip(t *testing.T) {
	b := core.AppendHeader(nil, core.Rolling, 3)
	b = binary.AppendVarint(b, -42)
	b = binary.AppendUvarint(b, 1<<40)
	payload, err := core.ParseHeader(b, core.Rolling, 3)
	require.NoError(t, err)
	r := core.NewReader(core.Rolling, payload)
	require.Equal(t, int64(-42), r.Int64())
	require.Equal(t, uint64(1<<40), r.Uint64())
	require.NoError(t, r.Err())
}

func TestHeaderRejects(t *testing.T) {
	good := core.AppendHeader(nil, core.TokenBucket, 1)
	for name, b := range map[string][]byte{
		"short":         good[:3],
		"magic":         {'x', 'k', byte(core.TokenBucket), 1},
		"other alg":     core.AppendHeader(nil, core.FixedWindow, 1),
		"other version": core.AppendHeader(nil, core.TokenBucket, 2),
	} {
		_, err := core.ParseHeader(b, core.TokenBucket, 1)
		require.Error(t, err, name)
		require.True(t, errors.Is(err, ratekit.ErrInvalidState), name)
	}
}

func TestReaderStickyErrors(t *testing.T) {
	r := core.NewReader(core.Concurrency, []byte{0x80}) // a varint cut short
	require.Zero(t, r.Int64())
	require.Zero(t, r.Uint64(), "values after an error are zero")
	require.ErrorIs(t, r.Err(), ratekit.ErrInvalidState)

	r = core.NewReader(core.Concurrency, []byte{2, 9})
	require.Equal(t, int64(1), r.Int64())
	require.ErrorContains(t, r.Err(), "1 trailing bytes")

	r = core.NewReader(core.Concurrency, []byte{2})
	r.Int64()
	r.Fail("count %d over limit", 7)
	require.ErrorContains(t, r.Err(), "count 7 over limit")
}

func TestInvalid(t *testing.T) {
	err := core.Invalid("tokenbucket", "Limit must be positive, got %d", 0)
	require.ErrorIs(t, err, ratekit.ErrInvalidConfig)
	require.EqualError(t, err, "ratekit: invalid config: tokenbucket: Limit must be positive, got 0")
	require.NotNil(t, core.Clock(nil))
}
