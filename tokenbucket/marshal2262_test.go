package tokenbucket_test

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
	"github.com/ratekit/ratekit/tokenbucket"
)

// lastUnixNano is the last instant int64 Unix nanoseconds hold.
var lastUnixNano = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11 23:47:16.854775807

// maxUnixSec is the last Unix second time.Time holds.
const maxUnixSec = math.MaxInt64 - 62_135_596_800

// cfg7per10s has the time scale q = 7: Burst 3 refills in 30e9/7 ns, that
// is 4285714285 ns and 5/7.
var cfg7per10s = tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 3}

// wideState is a version 2 state: kind, Unix seconds and nanoseconds,
// then the fraction num/den.
func wideState(kind uint64, sec int64, nsec, num, den uint64) []byte {
	b := core.AppendHeader(nil, core.TokenBucket, 2)
	b = binary.AppendUvarint(b, kind)
	b = binary.AppendVarint(b, sec)
	b = binary.AppendUvarint(b, nsec)
	b = binary.AppendUvarint(b, num)
	return binary.AppendUvarint(b, den)
}

// ratedState is a version 3 state: wideState's fields, then the emission
// interval's numerator p (Window/Limit = p/den ns) and Burst.
func ratedState(kind uint64, sec int64, nsec, num, den, p, burst uint64) []byte {
	b := wideState(kind, sec, nsec, num, den)
	b[3] = 3
	b = binary.AppendUvarint(b, p)
	return binary.AppendUvarint(b, burst)
}

// TestMarshalVersion1Unchanged: a version 1 state, the bytes the code
// before version 3 wrote for a TAT that int64 Unix nanoseconds hold, still
// restores as it did (the limiter that wrote it decides alike), and marshals
// back as version 3 with the same TAT; a version 1 state at the last of
// those nanoseconds restores too.
func TestMarshalVersion1Unchanged(t *testing.T) {
	c := cfg7per10s
	c.Clock = atT0()
	l := mustNew(t, c)
	require.True(t, l.Take(t0, 3).Allowed)
	want := core.AppendHeader(nil, core.TokenBucket, 1)
	want = binary.AppendUvarint(want, 1)
	want = binary.AppendVarint(want, t0.UnixNano()+4285714285)
	want = binary.AppendUvarint(want, 5)
	want = binary.AppendUvarint(want, 7)
	old := mustNew(t, c)
	require.NoError(t, old.UnmarshalBinary(want))
	for _, d := range []time.Duration{-time.Second, 0, 1428571428, 1428571429, 4285714285, 4285714286} {
		require.Equal(t, l.Peek(t0.Add(d), 1), old.Peek(t0.Add(d), 1), "+%v", d)
	}
	b, err := old.MarshalBinary()
	require.NoError(t, err)
	tat := t0.Add(4285714285)
	require.Equal(t, ratedState(1, tat.Unix(), uint64(tat.Nanosecond()), 5, 7, 10e9, 3), b)
	fresh, err := mustNew(t, c).MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, binary.AppendUvarint(core.AppendHeader(nil, core.TokenBucket, 1), 0), fresh,
		"a full bucket's state stays version 1, which older builds read")

	last := core.AppendHeader(nil, core.TokenBucket, 1)
	last = binary.AppendUvarint(last, 1)
	last = binary.AppendVarint(last, math.MaxInt64)
	last = binary.AppendUvarint(last, 0)
	last = binary.AppendUvarint(last, 7)
	r := mustNew(t, c)
	require.NoError(t, r.UnmarshalBinary(last))
	again, err := r.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, ratedState(1, lastUnixNano.Unix(), uint64(lastUnixNano.Nanosecond()), 0, 7, 10e9, 3), again,
		"a TAT at 2262-04-11 23:47:16.854775807")
}

// TestMarshalWideVersion: a bucket drained on a clock past 2262, or before
// 1678, saves its TAT as Unix seconds and nanoseconds (version 2), exactly.
// On main it was saturated to int64 Unix nanoseconds: a bucket drained
// after 2262 restored full (a whole Burst over), one drained before 1678
// restored empty until 1677.
func TestMarshalWideVersion(t *testing.T) {
	for _, at := range []time.Time{
		lastUnixNano.Add(time.Nanosecond - 4285714285), // the TAT one ns past the last
		lastUnixNano.Add(24 * time.Hour),
		time.Date(1600, 3, 18, 13, 1, 7, 250_000_000, time.UTC),
		time.Date(5000, 3, 18, 13, 1, 7, 250_000_000, time.UTC),
	} {
		c := cfg7per10s
		c.Clock = mockAt(at)
		l := mustNew(t, c)
		require.True(t, l.Take(at, 3).Allowed)
		b, err := l.MarshalBinary()
		require.NoError(t, err)
		tat := at.Add(4285714285)
		require.Equal(t, ratedState(1, tat.Unix(), uint64(tat.Nanosecond()), 5, 7, 10e9, 3), b, "drained at %v", at)
		r2 := mustNew(t, c)
		require.NoError(t, r2.UnmarshalBinary(wideState(1, tat.Unix(), uint64(tat.Nanosecond()), 5, 7)), "version 2 at %v", at)
		for _, d := range []time.Duration{0, 1428571428, 1428571429, 4285714285, 4285714286} {
			require.Equal(t, l.Peek(at.Add(d), 1), r2.Peek(at.Add(d), 1), "version 2 drained at %v, +%v", at, d)
		}

		r := mustNew(t, c)
		require.NoError(t, r.UnmarshalBinary(b), "at %v", at)
		for _, d := range []time.Duration{0, 1428571428, 1428571429, 4285714285, 4285714286} {
			require.Equal(t, l.Peek(at.Add(d), 1), r.Peek(at.Add(d), 1), "drained at %v, +%v", at, d)
		}
		again, err := r.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again, "a restored state marshals as it was saved")
	}
}

// TestUnmarshalFarAhead: a TAT more than 292 years past the restoring
// limiter's epoch is kept, not clamped to 2^62 ns past it (which admitted
// from 2172 on a bucket drained in the year 5000).
func TestUnmarshalFarAhead(t *testing.T) {
	at := time.Date(5000, 3, 18, 13, 1, 7, 250_000_000, time.UTC)
	c := cfg7per10s
	c.Clock = mockAt(at)
	saved := mustNew(t, c)
	require.True(t, saved.Take(at, 3).Allowed)
	b, err := saved.MarshalBinary()
	require.NoError(t, err)

	c.Clock = atT0()
	r := mustNew(t, c)
	require.NoError(t, r.UnmarshalBinary(b))
	for _, now := range []time.Time{t0, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), at.Add(-time.Hour), at, at.Add(1428571428)} {
		require.False(t, r.Peek(now, 1).Allowed, "a bucket drained in 5000 admits at %v", now)
	}
	require.Equal(t, saved.Peek(at.Add(1428571429), 1), r.Peek(at.Add(1428571429), 1))
	again, err := r.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, again)

	// The last second time.Time holds: the epoch moves further than a
	// time.Duration reaches.
	require.NoError(t, r.UnmarshalBinary(wideState(1, maxUnixSec, 0, 0, 7)))
	require.False(t, r.Peek(t0, 1).Allowed)
	require.False(t, r.Peek(at, 1).Allowed)
}

// TestUnmarshalWideRejects: crafted version 2 values out of range are
// rejected with ErrInvalidState and change nothing.
func TestUnmarshalWideRejects(t *testing.T) {
	c := cfg7per10s
	c.Clock = atT0()
	l := mustNew(t, c)
	require.True(t, l.Take(t0, 1).Allowed)
	before := l.Peek(t0, 1)
	for name, b := range map[string][]byte{
		"ns of a second":        wideState(1, 0, 1e9, 0, 7),
		"past time.Time":        wideState(1, maxUnixSec+1, 0, 0, 7),
		"MaxInt64 s":            wideState(1, math.MaxInt64, 0, 0, 7),
		"no TAT":                wideState(0, 0, 0, 0, 7),
		"unknown kind":          wideState(2, 0, 0, 0, 7),
		"zero scale":            wideState(1, 0, 0, 0, 0),
		"fraction >= 1":         wideState(1, 0, 0, 7, 7),
		"truncated":             wideState(1, 0, 0, 0, 7)[:7],
		"trailing bytes":        append(wideState(1, 0, 0, 0, 7), 0),
		"version 2, no payload": core.AppendHeader(nil, core.TokenBucket, 2),
	} {
		err := l.UnmarshalBinary(b)
		require.ErrorIs(t, err, ratekit.ErrInvalidState, name)
		require.Equal(t, before, l.Peek(t0, 1), name)
	}
	require.NoError(t, l.UnmarshalBinary(wideState(1, lastUnixNano.Unix()+1, 0, 0, 7)))
	require.False(t, l.Peek(t0, 1).Allowed, "a bucket full only after 2262 is not full now")

	before = l.Peek(t0, 1)
	for name, b := range map[string][]byte{
		"version 3, no TAT":        ratedState(0, 0, 0, 0, 7, 10e9, 3),
		"version 3, zero p":        ratedState(1, 0, 0, 0, 7, 0, 3),
		"version 3, p past 2^60":   ratedState(1, 0, 0, 0, 7, 1<<60+1, 1),
		"version 3, zero Burst":    ratedState(1, 0, 0, 0, 7, 10e9, 0),
		"version 3, tau past 2^60": ratedState(1, 0, 0, 0, 7, 1<<30, 1<<30+1),
		"version 3, truncated":     ratedState(1, 0, 0, 0, 7, 10e9, 3)[:12],
		"version 3, trailing":      append(ratedState(1, 0, 0, 0, 7, 10e9, 3), 0),
	} {
		err := l.UnmarshalBinary(b)
		require.ErrorIs(t, err, ratekit.ErrInvalidState, name)
		require.Equal(t, before, l.Peek(t0, 1), name)
	}
	err := l.UnmarshalBinary(core.AppendHeader(nil, core.TokenBucket, 4))
	if !errors.Is(err, ratekit.ErrInvalidState) || !strings.Contains(err.Error(), "format version 4, this build reads 1, 2 and 3") {
		t.Fatalf("UnmarshalBinary of version 4: %v", err)
	}
}

// FuzzUnmarshal feeds UnmarshalBinary arbitrary bytes: it never panics,
// rejects with ErrInvalidState leaving the limiter unchanged, and a state it
// accepts is usable at any time and marshals to a fixed point.
func FuzzUnmarshal(f *testing.F) {
	c := cfg7per10s
	c.Clock = atT0()
	l := mustNew(f, c)
	fresh, _ := l.MarshalBinary()
	l.Take(t0, 2)
	used, _ := l.MarshalBinary()
	f.Add(fresh)
	f.Add(used)
	far := time.Date(2263, 1, 1, 0, 0, 0, 5, time.UTC)
	f.Add(wideState(1, far.Unix(), 5, 3, 7))
	f.Add(wideState(1, time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), 999_999_999, 6, 7))
	f.Add(wideState(1, maxUnixSec, 0, 0, 1))
	f.Add(ratedState(1, t0.Unix()+4, 285714285, 5, 7, 10e9, 3))       // its own rate
	f.Add(ratedState(1, t0.Unix()+1, 0, 0, 1, 1e8, 10))               // 10 a second: faster
	f.Add(ratedState(1, t0.Unix()+30, 0, 0, 1, 10e9, 3))              // 1 a 10 s, Burst 3: slower
	f.Add(ratedState(1, maxUnixSec, 999_999_999, 0, 1, 1<<40, 1<<20)) // a carry past time.Time
	f.Add(ratedState(1, far.Unix(), 0, 6, 7, 1<<30, 1<<30))           // tau 2^60
	f.Add(ratedState(1, t0.Unix()-10*365*86400, 7, 3, 7, 10e9, 3))    // before the 5-year fast range: the epoch moves back
	f.Add(ratedState(1, t0.Unix()-200*365*86400, 0, 0, 7, 10e9, 3))   // 200 years back
	f.Fuzz(func(t *testing.T, b []byte) {
		c := cfg7per10s
		c.Clock = atT0()
		l := mustNew(t, c)
		l.Take(t0, 1)
		before := l.Peek(t0, 1)
		if err := l.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ratekit.ErrInvalidState) {
				t.Fatalf("error %v does not wrap ErrInvalidState", err)
			}
			if after := l.Peek(t0, 1); after != before {
				t.Fatalf("a rejected state changed the limiter: %v, then %v", before, after)
			}
			return
		}
		once, _ := l.MarshalBinary()
		for _, now := range []time.Time{{}, t0, t0.Add(100 * 365 * day), time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64), far} {
			for _, n := range []int{0, 1, 3} {
				if d := l.Peek(now, n); d.RetryAfter < 0 || d.ResetAfter < 0 || d.Remaining < 0 || d.Remaining > 3 {
					t.Fatalf("after restoring % x: Peek(%v, %d) = %v", b, now, n, d)
				}
			}
			l.Idle(now)
		}
		r := mustNew(t, c)
		if err := r.UnmarshalBinary(once); err != nil {
			t.Fatalf("MarshalBinary's own output % x rejected: %v", once, err)
		}
		if twice, _ := r.MarshalBinary(); string(twice) != string(once) {
			t.Fatalf("marshal is not a fixed point: % x, then % x", once, twice)
		}
	})
}
