package fixedwindow

import (
	"encoding/binary"
	"time"

	"github.com/ratekit/ratekit/internal/core"
)

// saved is a state in wall-clock terms, independent of any parameters' layout
// and epoch: what MarshalBinary writes, and what Reconfigure carries from
// one parameter set to the next.
type saved struct {
	has      bool // false: the fresh state, nothing counted anywhere
	start    time.Time
	window   time.Duration
	count    uint64
	notified bool
	// full: count fills the widest field its window allows and is above
	// the Limit, as a count saturated by restore is; it may stand for
	// more (see restore).
	full bool
	// last: the window is the last of its parameters' span, into which
	// every later one merges (see MinSpan): it never ends, and its Takes
	// may be stamped at any instant from its start on.
	last bool
}

// endOfTime is the last instant of a window that never ends (see
// saved.last), as carried and saved: the latest start a state can be
// saved with, past the span of any parameters, so that the window holding
// it is the last window of every span, as the one it stands for was.
var endOfTime = time.Unix(maxSavedSec, 0)

// save unpacks the state word s.
func (p *params) save(s uint64) saved {
	if s == fresh {
		return saved{}
	}
	count := s&p.cmask - 1
	q := int64(s>>p.ishift) - p.bias
	return saved{
		has:      true,
		start:    p.start(q),
		window:   p.cfg.Window,
		count:    count,
		notified: s&p.flag != 0,
		// Only a field as wide as the window allows saturates (fit
		// widens any other to hold what it carries).
		full: count >= p.maxc && count > p.limit && p.cbits == maxCountBits(p.w),
		last: q >= p.hiQ,
	}
}

// end returns the last instant of sv's window: endOfTime for the last
// window of a span, which never ends.
func (sv saved) end() time.Time {
	if sv.last {
		return endOfTime
	}
	return sv.start.Add(sv.window - 1)
}

// carried returns sv as a change of Window or Offset at now carries it: at
// the latest instant of its window that is not after now (its last instant
// if now is before it), which the new window holding it counts from. The
// Takes it counts were all stamped in its window, and as far as the
// limiter can tell no later than now, so any of the new windows that
// overlap the old one up to that instant may hold all of them; the latest
// of them is the only one whose count cannot be too low later on, and the
// earlier ones are then stale, denied as any window before the state's is.
// With Window and Offset unchanged it is sv's own window. The last window
// of a span never ends (see MinSpan): parameters of another span may end
// it anywhere after its start, so it is carried to now, or, if now is
// before it, to endOfTime, the last window of every span, as it was.
func (sv saved) carried(now time.Time) saved {
	if !sv.has {
		return sv
	}
	last := sv.end()
	if !now.Before(sv.start) && now.Before(last) {
		last = now
	}
	sv.start, sv.last = last, false
	return sv
}

// start returns the start of window q, relative to the epoch window.
func (p *params) start(q int64) time.Time {
	return span(p.epoch, q, p.w)
}

// restore packs sv into a state word for p. The state's window is the one
// of p's windows that contains sv's start; its count and flag carry over.
// A count above what p's field holds (possible only for a count carried
// from a higher limit, see countField) is saturated to maxc, which is above
// p's limit, so the window stays closed. A saturated count (sv.full) may
// stand for more than it says: in a wider field it saturates again, to
// maxc, rather than count as itself, which would give the units above the
// narrower field back (a day's window of a terabyte reconfigured to a
// second's window, whose field holds 2^32, and back admitted 2^32 units
// again). Fewer admitted until the window ends, never more.
func (p *params) restore(sv saved) uint64 {
	if !sv.has {
		return fresh
	}
	idx, _ := p.locate(sv.start)
	count := min(sv.count, p.maxc)
	if sv.full {
		count = p.maxc
	}
	s := idx<<p.ishift | (count + 1)
	if sv.notified {
		s |= p.flag
	}
	return s
}

// fit returns p if its count field holds count as parameters of p's Config
// made for it would, else such parameters, of the same center: a count
// carried from a higher Limit may need a wider field than p has.
func (p *params) fit(count uint64) *params {
	if countField(p.limit, p.w, count) == p.cbits {
		return p
	}
	return newParams(p.center, p.cfg, count)
}

// replace replaces b, the block in force, by a block of np (or of wider
// parameters of np's Config, see fit) holding the saved state that conv
// makes of b's; it reports whether it did (see cell.Ref.Replace).
//
// The new block's Aux is its restore mark (see Refund): 0, or 1 plus the
// index of the latest of np's windows a refund may not give units back
// in. The mark b has carries over, moved to the np window that holds the
// end of b's marked window; a restore (restoring true) raises it to cover
// the windows of b's state and of the restored one, since every Take
// counted before the restore was stamped in one of them or earlier; a
// restore into a fresh, unmarked state (a limiter that never counted, as
// package persist restores into) has no Take to refund and sets none.
func (l *Limiter) replace(b *block, np *params, restoring bool, conv func(saved) saved) bool {
	return l.c.Replace(b, func(w, aux int64) (*params, int64, int64) {
		old := b.P.save(uint64(w))
		sv := conv(old)
		np := np.fit(sv.count)
		var mark uint64 // 1 + a window index of np, or 0: none
		cover := func(t time.Time) {
			idx, _ := np.locate(t)
			mark = max(mark, idx+1)
		}
		if aux != 0 {
			q := aux - 1 - b.P.bias
			cover(saved{start: b.P.start(q), window: b.P.cfg.Window, last: q >= b.P.hiQ}.end())
		}
		if restoring && (old.has || aux != 0) {
			// (A limiter that never counted has no Take to refund.)
			if old.has {
				cover(old.start)
			}
			if sv.has {
				cover(sv.start)
			}
		}
		return np, int64(np.restore(sv)), int64(mark)
	})
}

// Reconfigure switches the limiter to cfg at once, or returns an error
// wrapping ratekit.ErrInvalidConfig and changes nothing. It is safe to call
// while other goroutines use the limiter: every call decides entirely under
// the old configuration or entirely under the new one. Calls that arrive
// while it runs wait for it, briefly: it only repacks one word. It does not
// call OnLimitReached.
//
// What was taken in the current window carries over:
//   - If Window and Offset are unchanged, the count stands and the new Limit
//     applies to it at once: lowering Limit below the count denies every
//     Take until the window ends, and raising it admits the difference.
//   - If Window or Offset change, the whole count moves to the new window
//     that holds the instant of the change (read on cfg.Clock), or, if the
//     old window had ended by then, the new window that holds its last
//     instant: the limiter cannot tell when in the old window its units
//     were taken, and they may all be in that new window. Windows before it
//     are stale from then on (see Take). An hour's window with 100 taken,
//     switched at 13:30 to 60 a minute, counts the 100 in the minute from
//     13:30 and admits nothing until 13:31. A daily window moved from UTC
//     (Offset 0) to New York in winter (Offset -5h, days from 05:00 UTC) at
//     14:00 UTC counts today's units in the day from 05:00 UTC.
//
// The last window of the limiter's span (see MinSpan), which never ends,
// is treated as one whose last instant is the end of time: under
// parameters of another span its count moves to the window that holds the
// instant of the change, or, if that is before it, to the new span's last
// window.
//
// Whether OnLimitReached has been called for the window carries over with
// the count. Name, Clock and OnLimitReached take effect at once too.
//
// It reads cfg.Clock once, and takes the parameters New(cfg) would share
// (the limiter's span of windows, MinSpan, is then centred no further from
// that instant than New's would be), or parameters of its own when the
// carried count needs a wider field than they have. Other limiters of the
// old Config are unchanged.
func (l *Limiter) Reconfigure(cfg Config) error {
	np, err := shared(cfg) // validates cfg
	if err != nil {
		return err
	}
	now := core.Clock(cfg.Clock).Now()
	for {
		b := l.c.Cur()
		if b == nil {
			// The zero Limiter, configured for the first time. Its nil
			// block is never written, so there is nothing to seal: the
			// CAS in Adopt is what orders racing first configurations.
			if l.c.Adopt(np, fresh, 0) {
				return nil
			}
			continue
		}
		b, _ = l.c.Load()
		if l.replace(b, np, false, func(old saved) saved { return old.carried(now) }) {
			return nil
		}
	}
}

// The state format. Never change what a version means: bump the version.
const (
	version      = 1
	flagWindow   = 1 << 0 // a window follows
	flagNotified = 1 << 1 // OnLimitReached was called for it
	maxSavedSec  = 1 << 62
	maxSavedCnt  = 1 << 62
)

// MarshalBinary encodes the limiter's state in wall-clock terms, so that it
// can be restored into a limiter in another process, after any downtime.
// It implements encoding.BinaryMarshaler and never fails.
//
// The encoding is the ratekit state header (fixedwindow, version 1)
// followed by varints: flags (1: a window follows, 2: OnLimitReached was
// called for it) and, if a window follows, its start as Unix seconds and
// nanoseconds, its length in nanoseconds, and its count. A fresh limiter
// encodes no window. A count that Reconfigure cut to a narrower field (a
// day's window of a terabyte reconfigured to a second's), and so may stand
// for more than it says, is saved as 2^62, the most the format carries:
// restored under any Config, it fills the count's field, and the window
// admits nothing more until it ends. The last window of the limiter's span,
// which never ends (see MinSpan), is saved as the window of its length that
// ends 2^62 seconds after 1970: restored, it is the last window of any
// limiter's span, and every earlier instant is stale to it.
func (l *Limiter) MarshalBinary() ([]byte, error) {
	blk, w := l.load()
	sv := blk.P.save(uint64(w))
	b := core.AppendHeader(make([]byte, 0, 40), core.FixedWindow, version)
	if !sv.has {
		return binary.AppendUvarint(b, 0), nil
	}
	flags := uint64(flagWindow)
	if sv.notified {
		flags |= flagNotified
	}
	b = binary.AppendUvarint(b, flags)
	if sv.last {
		// The last window of the span never ends: saved as the window
		// whose last instant is endOfTime, which restores into the last
		// window of any limiter's span, stale before it (see carried).
		sv.start = endOfTime.Add(1 - sv.window)
	}
	b = binary.AppendVarint(b, sv.start.Unix())
	b = binary.AppendUvarint(b, uint64(sv.start.Nanosecond()))
	b = binary.AppendUvarint(b, uint64(sv.window))
	count := sv.count
	if sv.full {
		// Cut to its field by a Reconfigure to a narrower one: it may
		// stand for more, so it is saved as the most the format carries,
		// which every field saturates at (see restore).
		count = maxSavedCnt
	}
	b = binary.AppendUvarint(b, count)
	return b, nil
}

// UnmarshalBinary replaces the limiter's state with one that MarshalBinary
// encoded, keeping the limiter's configuration. It implements
// encoding.BinaryUnmarshaler.
//
// The saved window's count goes to the limiter's window that contains the
// saved window's last instant: the saved window itself under the same
// Window and Offset, so a state restored after its window ended leaves the
// limiter fresh for the current window. A state saved under another Window
// or Offset has no instant of a change to carry it to, as Reconfigure
// does, and its units may all have been taken at that last instant; the
// windows before the one that holds it are then stale (see Take). The count stands against the current
// Limit even if it is higher (a lower limit applies to what was taken).
// A state whose window is later than the times the limiter is then asked
// about denies them, as a stale clock would be (see Take).
//
// The limiter keeps the parameters it shares with other limiters of its
// Config unless the restored count needs a wider field than they have (a
// count above the Limit, saved under a higher one); then it gets
// parameters of its own. The other limiters are unchanged.
//
// Bytes that are truncated, corrupt, of another algorithm or of another
// format version return an error wrapping ratekit.ErrInvalidState and leave
// the limiter unchanged. Safe for concurrent use with every other method.
func (l *Limiter) UnmarshalBinary(b []byte) error {
	payload, err := core.ParseHeader(b, core.FixedWindow, version)
	if err != nil {
		return err
	}
	if l.c.Cur() == nil {
		return core.InvalidState(pkg, "the zero Limiter has no configuration to restore a state into; create it with New")
	}
	r := core.NewReader(core.FixedWindow, payload)
	var sv saved
	flags := r.Uint64()
	if flags&^(flagWindow|flagNotified) != 0 || flags == flagNotified {
		r.Fail("unknown flags %#x", flags)
	}
	if flags&flagWindow != 0 {
		sec, nsec, window, count := r.Int64(), r.Uint64(), r.Uint64(), r.Uint64()
		switch {
		case sec < -maxSavedSec || sec > maxSavedSec:
			r.Fail("window start %d s out of range", sec)
		case nsec >= 1e9:
			r.Fail("window start nanoseconds %d out of range", nsec)
		case window < 1 || window > uint64(1<<63-1):
			r.Fail("window length %d ns out of range", window)
		case count > maxSavedCnt:
			r.Fail("count %d out of range", count)
		}
		sv = saved{
			has:      true,
			start:    time.Unix(sec, int64(nsec)),
			window:   time.Duration(window),
			count:    count,
			notified: flags&flagNotified != 0,
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	if sv.has {
		sv.start = sv.start.Add(sv.window - 1) // its last instant (see above)
	}
	for {
		b, _ := l.c.Load() // not sealed; not nil: checked above, and never nil again once set
		// The parameters in force, unless the restored count needs a
		// wider field (see fit): then parameters of their own.
		if l.replace(b, b.P, true, func(saved) saved { return sv }) {
			return nil
		}
	}
}
