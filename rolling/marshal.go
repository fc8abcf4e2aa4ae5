package rolling

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/ratekit/ratekit/internal/core"
)

// stateVersion is the format version of MarshalBinary's output. Version 1
// is the header (core.AppendHeader) followed by three varints:
//
//	count     uvarint  units taken in the open window; 0: no window
//	start     varint   the window's start in Unix nanoseconds (0 if none)
//	flags     uvarint  1: OnLimitReached has fired for this window
//
// Version 2 (wideVersion) is written only for a window whose start int64
// Unix nanoseconds cannot hold (before 1678 or after 2262-04-11, which a
// Config.Clock may read): the start is two varints instead, Unix seconds
// and a nanosecond within the second (0 to 999,999,999), and count is at
// least 1; or for a spent window (see state.spent: refunded to zero, no
// window open), whatever its start: count 0, that start, and flags 0.
// A build before spent windows were saved refuses a spent state (version 2
// with count 0), as it refuses any version it does not know.
//
// Version 3 (windowVersion) records the Window the state was saved under,
// so that a limiter of a shorter Window can carry it (see UnmarshalBinary).
// It is written for every open window (count at least 1); version 1 only
// for no window open, and version 2 only for a spent window, which no
// Window changes: builds that read versions 1 and 2 only still read those,
// and refuse a version 3 state with an error wrapping
// ratekit.ErrInvalidState ("format version 3"). Its payload:
//
//	count     uvarint  units taken in the open window, at least 1
//	start     varint   the window's start: Unix seconds, then
//	          uvarint  a nanosecond within the second
//	flags     uvarint  1: OnLimitReached has fired for this window
//	window    uvarint  the Window it was saved under, in ns, at least 1
const (
	stateVersion  = 1
	wideVersion   = 2
	windowVersion = 3
)

// MarshalBinary encodes the Limiter's state in wall-clock terms: the open
// window's start as Unix seconds and nanoseconds, its count and the Window
// (format version 3; no window open: version 1, see stateVersion). Restored by
// UnmarshalBinary in another process, the window closes at the same
// wall-clock instant, so downtime counts as elapsed time and a 30-day
// window survives a restart. A window refunded to zero (spent) keeps its
// start, before which a stale Take admits nothing (see Refund), as version
// 2 with count 0. Of the Config,
// only the Window is part of the state. It never returns an error.
func (l *Limiter) MarshalBinary() ([]byte, error) {
	blk, w := l.final()
	p := blk.P
	st := p.decode(w, blk.Aux.Load())
	if st.spent() {
		start := p.wallStart(st.start)
		b := core.AppendHeader(make([]byte, 0, core.HeaderLen+4*binary.MaxVarintLen64), core.Rolling, wideVersion)
		b = append(b, 0) // count
		b = binary.AppendVarint(b, start.Unix())
		b = binary.AppendUvarint(b, uint64(start.Nanosecond()))
		return append(b, 0), nil // flags
	}
	if st.count == 0 {
		b := core.AppendHeader(make([]byte, 0, core.HeaderLen+3), core.Rolling, stateVersion)
		return append(b, 0, 0, 0), nil // count, start and flags 0
	}
	// Internal times count from the epoch (on the monotonic clock when the
	// times passed in carry it); the epoch's wall-clock reading, advanced
	// by the start, is the start's wall-clock instant. time.Time holds it
	// in any year; int64 Unix nanoseconds only from 1678 to 2262.
	start := p.wallStart(st.start)
	var flags uint64
	if st.notified {
		flags = 1
	}
	b := make([]byte, 0, core.HeaderLen+5*binary.MaxVarintLen64)
	b = core.AppendHeader(b, core.Rolling, windowVersion)
	b = binary.AppendUvarint(b, uint64(st.count))
	b = binary.AppendVarint(b, start.Unix())
	b = binary.AppendUvarint(b, uint64(start.Nanosecond()))
	b = binary.AppendUvarint(b, flags)
	return binary.AppendUvarint(b, uint64(p.window)), nil
}

// UnmarshalBinary replaces the Limiter's state with one that MarshalBinary
// encoded, here or in another process; the Config stays this Limiter's. A
// window that closed while no process ran is closed; one still open keeps
// its count, to which the current Limit applies (a count above it leaves
// the window full until it closes), and closes at its start plus this
// Limiter's Window. A version 3 state saved under a longer Window is
// carried as Reconfigure carries one, with no instant of a change: its
// units may all have been taken at the old window's last instant, so
// unless this Window from its start is still open then, the window starts
// at that instant (an hour's window opened at 13:00, restored into a
// minute's Window, counts its units until 13:01 past 14:00, and at every
// earlier time, as a stale time is counted). Version 1 and 2 states record
// no Window and keep their start: one saved under a longer Window may
// close before a limiter of the new Window all along would let go of its
// units (an hour's window opened at 13:00 with units taken up to 13:30,
// restored into a minute's Window, is closed from 13:01 on). A spent
// window keeps its start, so that a stale Take before it admits nothing,
// in this process as in the one that saved it.
//
// It reads format versions 1, 2 and 3. Bytes that are truncated, corrupt, of
// another algorithm or format version, or whose values are out of range (a count above MaxLimit) give
// an error wrapping ratekit.ErrInvalidState and leave the Limiter
// unchanged. A window start in the future (the clock went back, or a
// crafted state) is accepted: the window stays open until start+Window,
// which never admits more. It is safe under concurrent use.
//
// The Limiter keeps its parameters, shared with the limiters of its Config
// (unless the count is above Limit: then from its next window on; or the
// window is more than 292 years from its epoch: see Time in the package
// documentation), and
// stays 32 bytes, the window restored in place, if the window started at
// most a Window before the Limiter was made (and within half the reach;
// see Performance in the package documentation). So a Keyed restored at
// start-up by package persist stays compact.
//
// Restoring into a Limiter that has a window open, or had one refunded to
// zero (or was restored before), is the exception: from then on, a Refund
// stamped at or before the end of that window or of the restored one gives
// no units back, since the Take it refunds may have been counted in the
// replaced state, not the restored one (one at the window's start still
// moves the start, as Refund says, which only admits less). The Limiter
// keeps that instant in parameters of its own (a copy of its Config's, 184
// bytes) until a window opens after it, and then shares its Config's
// again.
func (l *Limiter) UnmarshalBinary(b []byte) error {
	var wide, windowed bool
	payload, err := core.ParseHeader(b, core.Rolling, windowVersion)
	if err == nil {
		wide, windowed = true, true
	} else if payload, wide, err = core.ParseHeaders(b, core.Rolling, stateVersion, wideVersion); err != nil {
		if len(b) >= core.HeaderLen {
			if _, e := core.ParseHeader(b, core.Rolling, b[3]); e == nil {
				return core.InvalidState(pkg, "format version %d, this build reads 1, 2 and 3", b[3])
			}
		}
		return err
	}
	r := core.NewReader(core.Rolling, payload)
	count := r.Uint64()
	var start time.Time // the window's start, if count > 0
	var set bool        // version 1: a start other than 0
	if wide {
		start = r.Unix("start")
	} else {
		ns := r.Int64()
		start, set = time.Unix(0, ns), ns != 0
	}
	flags := r.Uint64()
	var saved uint64 // the Window a version 3 state was saved under
	if windowed {
		saved = r.Uint64()
	}
	switch {
	case windowed && count == 0:
		r.Fail("no window open in a version %d state", windowVersion)
	case windowed && (saved == 0 || saved > math.MaxInt64):
		r.Fail("window %d ns outside [1, 2^63)", saved)
	case count > MaxLimit:
		r.Fail("count %d exceeds MaxLimit", count)
	case flags > 1:
		r.Fail("unknown flags %#x", flags)
	case count == 0 && wide && flags != 0:
		r.Fail("flags %#x set for a spent window", flags)
	case count == 0 && (set || flags != 0):
		r.Fail("no window open but start %d and flags %#x set", start.UnixNano(), flags)
	}
	if err := r.Err(); err != nil {
		return err
	}
	if l.c.Cur() == nil {
		return core.InvalidState(pkg, "the zero Limiter has no configuration to restore a state into; create it with New")
	}
	// The same parameters, unless a refund mark must be kept (see Refund):
	// then a copy of them that carries it.
	l.c.Renew(func(p *params, w, base int64) (*params, int64, int64) {
		st, q := state{}, p
		if count > 0 || wide {
			// The start relative to the epoch, on the wall clock (start has
			// no monotonic reading); one the epoch does not hold (see
			// holds), under the Window saved or this one, moves the epoch
			// there.
			if s := p.since(start); s == math.MinInt64 || s > math.MaxInt64-max(int64(saved), p.window) {
				q = p.movedTo(start)
			}
			st = state{start: q.since(start), later: true} // spent
		}
		if count > 0 {
			// Whether units joined after the start is not saved: assume
			// they did, which only makes a Refund at the start move the
			// window's start (see refund), never give back more.
			st.count, st.notified = int64(count), flags == 1
			if windowed {
				st = st.carried(math.MaxInt64, int64(saved), q.window) // no instant of a change
			}
		}
		q, st, _ = q.settle(st, 0)
		old, base := rebase(p.decode(w, base), base, p, q)
		return q.restoreMark(old, st).place(st, base)
	})
	return nil
}

// restoreMark returns the parameters of a limiter of parameters p whose
// state old is replaced by the restored state st: p, or a copy of p's
// natural parameters whose refund mark (see Refund) covers old's window
// and st's, every instant a Take counted in either can be stamped at (a
// Take stamped after a window's end opens the next one). A mark p
// already has is kept. old's window may be spent (refunded to zero): the
// Takes of the older windows it replaced may be unrefunded, and were
// stamped before its end. A limiter that never took and has no mark (a
// fresh one, as a restore after a restart finds) has no Take to refund,
// and keeps p: restoring into it costs no memory.
func (p *params) restoreMark(old, st state) *params {
	if old.count == 0 && !old.spent() && !p.marked {
		return p
	}
	m, marked := p.mark, p.marked
	for _, s := range []state{old, st} {
		if s.count > 0 || s.spent() {
			if e := addSat(s.start, p.window-1); !marked || e > m {
				m, marked = e, true
			}
		}
	}
	if !marked || p.marked && m == p.mark {
		return p
	}
	return p.withMark(m)
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

// wallStart returns the wall-clock instant of a window's start, relative
// to p's epoch (exact: see holds).
func (p *params) wallStart(start int64) time.Time {
	return p.epoch.Add(time.Duration(start))
}
