package rolling

import (
	"encoding/binary"
	"math"

	"github.com/ratekit/ratekit/internal/core"
)

// stateVersion is the format version of MarshalBinary's output. Version 1
// is the header (core.AppendHeader) followed by three varints:
//
//	count     uvarint  units taken in the open window; 0: no window
//	start     varint   the window's start in Unix nanoseconds (0 if none)
//	flags     uvarint  1: OnLimitReached has fired for this window
const stateVersion = 1

// MarshalBinary encodes the Limiter's state in wall-clock terms: the open
// window's start as Unix nanoseconds and its count. Restored by
// UnmarshalBinary in another process, the window closes at the same
// wall-clock instant, so downtime counts as elapsed time and a 30-day
// window survives a restart. The Config is not part of the state. It never
// returns an error.
func (l *Limiter) MarshalBinary() ([]byte, error) {
	blk, w := l.c.Final()
	p := blk.P
	st := p.decode(w, blk.Aux.Load())
	b := core.AppendHeader(make([]byte, 0, core.HeaderLen+3*binary.MaxVarintLen64), core.Rolling, stateVersion)
	b = binary.AppendUvarint(b, uint64(st.count))
	var start int64
	var flags uint64
	if st.count > 0 {
		// Internal times count from the epoch (on the monotonic clock when
		// the times passed in carry it); the epoch's wall-clock reading turns
		// them into Unix time.
		start = addSat(p.epochUnix, st.start)
		if st.notified {
			flags = 1
		}
	}
	b = binary.AppendVarint(b, start)
	b = binary.AppendUvarint(b, flags)
	return b, nil
}

// UnmarshalBinary replaces the Limiter's state with one that MarshalBinary
// encoded, here or in another process; the Config stays this Limiter's. A
// window that closed while no process ran is closed; one still open keeps
// its count, to which the current Limit applies (a count above it leaves
// the window full until it closes).
//
// Bytes that are truncated, corrupt, of another algorithm or format
// version, or whose values are out of range (a count above MaxLimit) give
// an error wrapping ratekit.ErrInvalidState and leave the Limiter
// unchanged. A window start in the future (the clock went back, or a
// crafted state) is accepted: the window stays open until start+Window,
// which never admits more. It is safe under concurrent use.
//
// The Limiter keeps its parameters, shared with the limiters of its Config
// (unless the count is above Limit: then from its next window on), and
// stays 32 bytes, the window restored in place, if the window started at
// most a Window before the Limiter was made (and within half the reach;
// see Performance in the package documentation). So a Keyed restored at
// start-up by package persist stays compact.
func (l *Limiter) UnmarshalBinary(b []byte) error {
	payload, err := core.ParseHeader(b, core.Rolling, stateVersion)
	if err != nil {
		return err
	}
	r := core.NewReader(core.Rolling, payload)
	count := r.Uint64()
	start := r.Int64()
	flags := r.Uint64()
	switch {
	case count > MaxLimit:
		r.Fail("count %d exceeds MaxLimit", count)
	case flags > 1:
		r.Fail("unknown flags %#x", flags)
	case count == 0 && (start != 0 || flags != 0):
		r.Fail("no window open but start %d and flags %#x set", start, flags)
	}
	if err := r.Err(); err != nil {
		return err
	}
	// The same parameters: the limiter keeps sharing them, and keeps its
	// block if the window fits it.
	l.c.Renew(func(p *params, _, base int64) (*params, int64, int64) {
		st := state{}
		if count > 0 {
			// Whether units joined after the start is not saved: assume
			// they did, which only makes a Refund at the start move the
			// window's start (see refund), never give back more.
			st = state{start: subSat(start, p.epochUnix), count: int64(count), notified: flags == 1, later: true}
		}
		return p.place(st, base)
	})
	return nil
}

// addSat returns a+b, saturated to the int64 range.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}

// subSat returns a-b, saturated to the int64 range.
func subSat(a, b int64) int64 {
	s := a - b
	switch {
	case a >= 0 && b < 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b > 0 && s >= 0:
		return math.MinInt64
	}
	return s
}
