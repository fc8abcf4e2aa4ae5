package conformance

import (
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// This file holds the check that a state saved at instants int64 Unix
// nanoseconds cannot hold (before 1678, after 2262-04-11) restores as it
// was. A limiter's epoch comes from its Config's clock, and a mock clock
// (a simulation, a test) may read any year; a format that saturated such
// times to the int64 range made a bucket drained after 2262 restore as
// full in 2262, admitting a whole burst more than the limiter it was
// saved from.

// lastUnixNano is the last instant int64 Unix nanoseconds hold,
// 2262-04-11 23:47:16.854775807 UTC.
var lastUnixNano = time.Unix(0, 1<<63-1).UTC()

// firstUnixNano is the first instant int64 Unix nanoseconds hold,
// 1677-09-21 00:12:43.145224192 UTC.
var firstUnixNano = time.Unix(0, -1<<63).UTC()

// farClockCases are the clock readings and the instants of the Takes of
// marshalFarClock: each side of the int64 Unix nanosecond range, and a
// clock inside it with Takes stamped past its end. other is the reading of
// a second restorer's clock, as in a process started then (earlier or
// later), the other side of the range's end where there is one.
var farClockCases = []struct {
	name             string
	clock, at, other time.Time
}{
	{"after 2262", lastUnixNano.Add(24 * time.Hour), lastUnixNano.Add(24*time.Hour + 7250*time.Millisecond), lastUnixNano.Add(-24 * time.Hour)},
	{"just after 2262", lastUnixNano.Add(time.Second), lastUnixNano.Add(time.Second), lastUnixNano.Add(2 * time.Second)},
	{"year 5000", time.Date(5000, 3, 18, 13, 1, 7, 250_000_000, time.UTC), time.Date(5000, 3, 18, 13, 1, 7, 250_000_000, time.UTC), time.Date(5000, 3, 18, 14, 0, 0, 0, time.UTC)},
	{"clock before 2262, takes after", lastUnixNano.Add(-time.Hour), lastUnixNano.Add(time.Hour), lastUnixNano.Add(2 * time.Hour)},
	{"before 1678", time.Date(1600, 3, 18, 13, 1, 7, 250_000_000, time.UTC), time.Date(1600, 3, 18, 13, 1, 7, 250_000_000, time.UTC), time.Date(1600, 3, 18, 12, 0, 0, 0, time.UTC)},
	{"clock after 1678, takes before", firstUnixNano.Add(time.Hour), firstUnixNano.Add(-time.Hour), firstUnixNano.Add(-30 * time.Minute)},
}

// marshalFarClock checks, for each of farClockCases, a limiter of
// s.WithClock on a mock clock at the case's reading, drained by Takes at
// the case's instant, then marshalled and restored into a fresh limiter on
// the same clock: the restored limiter decides every Peek as the original
// does, from that instant to 400 days on, so it never admits more (nor
// less) than the limiter it was saved from. So does one restored on a
// clock of its own at the case's other reading, from the later of that
// reading and the Takes' instant on. A Holder's held units belong
// to the process that held them: only the restore is checked.
func (s Subject) marshalFarClock(t *testing.T) {
	if s.WithClock == nil {
		t.Skip("no WithClock: the limiter reads no clock of its own")
	}
	for _, tc := range farClockCases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewMock()
			clk.Set(tc.clock)
			l := s.WithClock(t, clk)
			m, ok := l.(marshaler)
			if !ok {
				t.Fatalf("%T does not implement MarshalBinary and UnmarshalBinary", l)
			}
			took := drain(l, tc.at, s.Capacity)
			if !s.Holder && took != s.Capacity {
				t.Fatalf("a fresh limiter admitted %d of %d units at %v", took, s.Capacity, tc.at)
			}
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			r := s.WithClock(t, clk)
			if err := r.(marshaler).UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary of MarshalBinary's own output: %v", err)
			}
			oc := clock.NewMock()
			oc.Set(tc.other)
			o := s.WithClock(t, oc)
			if err := o.(marshaler).UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary on a clock at %v: %v", tc.other, err)
			}
			if s.Holder {
				return
			}
			s.sameDecisions(t, l, r, tc.at, "restored limiter")
			// A later restorer is asked about its own times, not about
			// times before its clock read (stale times; see each package
			// for how far back it reads them exactly).
			from := tc.at
			if tc.other.After(from) {
				from = tc.other
			}
			s.sameDecisions(t, l, o, from, "restored on a clock at "+tc.other.String())
		})
	}
}

// sameDecisions fails t unless r decides every Peek as l does, from at to
// 400 days on; a Peek that r admits and l denies is named as such.
func (s Subject) sameDecisions(t *testing.T, l, r ratekit.Limiter, at time.Time, what string) {
	t.Helper()
	for _, d := range []time.Duration{0, 1, time.Millisecond, time.Second, time.Minute, time.Hour, 24 * time.Hour, 400 * 24 * time.Hour} {
		now := at.Add(d)
		for _, n := range []int{1, s.Capacity} {
			got, want := r.Peek(now, n), l.Peek(now, n)
			switch {
			case got.Allowed && !want.Allowed:
				t.Fatalf("%s admits Peek(+%v, %d) = %+v; the original denies: %+v", what, d, n, got, want)
			case got != want:
				t.Fatalf("%s: Peek(+%v, %d) = %+v; the original says %+v", what, d, n, got, want)
			}
		}
	}
}
