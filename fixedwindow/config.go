package fixedwindow

import (
	"math/bits"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

// Config configures a Limiter: Limit units per Window, in windows aligned to
// the clock. The zero Config is invalid (Limit and Window must be set).
type Config struct {
	// Limit is how many units one window admits, at least 1. Validate caps
	// it together with Window (see MinSpan): any Limit up to 1<<31 is valid
	// with any Window of a second or longer.
	Limit int

	// Window is the length of a window, at least 1ns; a second to 30 days
	// are the usual values (Sender's is a minute).
	// Windows are aligned to Unix time, not to the limiter's creation: a
	// window of a minute runs from :00 to :00, a window of a day from
	// midnight UTC to midnight UTC (midnight of Offset's zone with Offset).
	// Windows are counted from the Unix epoch, a Thursday, so a week runs
	// from Thursday 00:00 unless Offset moves it (Offset -96h, or 72h: from
	// Monday 00:00 UTC), and a window of 30 days is not a calendar month.
	Window time.Duration

	// Offset is the UTC offset of the zone whose clock the windows follow,
	// east positive, as time.Time.Zone reports it (Zone reports seconds:
	// multiply by time.Second). Windows are windows of that zone's local
	// time, which is Unix time plus Offset: they start at the instants whose
	// Unix time in nanoseconds, plus Offset, is a multiple of Window. The zero Offset is UTC. A daily
	// Window with Offset -5h runs from midnight in New York (UTC-5), 05:00
	// UTC, to the next; with Offset 1h, from midnight in Paris in winter
	// (UTC+1), 23:00 UTC. To follow a time.Location:
	//
	//	_, off := time.Now().In(loc).Zone()
	//	cfg.Offset = time.Duration(off) * time.Second
	//
	// Only Offset modulo Window matters, so every value is valid, negative
	// ones included (for a daily Window, -5h and 19h are the same; for a
	// minute, any whole number of minutes is 0). Offset is fixed: daylight
	// saving is not followed, so a limiter set up for New York in winter
	// resets at 01:00 New York time in summer, until Reconfigure gives it the
	// summer offset.
	Offset time.Duration

	// Name is the policy name reported in every Decision ("" if unnamed).
	Name string

	// Clock is read by Allow, AllowN and Wait, and once by New to place the
	// limiter's epoch (see MinSpan). Nil is the real clock. Take, Peek and
	// Refund never read it: they take the time as an argument.
	Clock clock.Clock

	// OnLimitReached, if not nil, is called once per window, by the first
	// Take of that window denied because the window's quota is used up
	// (not for n < 0 or n > Limit, nor for a Take stamped in an earlier
	// window than one already counted). It receives that Take's denial.
	//
	// It runs synchronously on the goroutine of the Take that reached the
	// limit, after the limiter's state is updated and with no lock held, so
	// it may call back into the limiter (Take, Reconfigure, ...) without
	// deadlocking; that Take returns only when it does, so keep it short or
	// hand work to another goroutine. A panic in it propagates to that Take's
	// caller and leaves the limiter consistent. With OnLimitReached nil, a
	// denial writes nothing at all.
	OnLimitReached func(ratekit.Decision)
}

// MinSpan is how far either side of its epoch a limiter must be able to
// tell windows apart; Validate rejects a Limit and Window that could not.
//
// A limiter packs its window's index and count into one 64-bit word. The
// count takes c = bits.Len(Limit+1) bits and a flag for OnLimitReached one,
// so 63-c bits are left for the index: 2^(62-c) windows either side of the
// epoch. The epoch is the start of the window containing the instant the
// limiter's parameters were made, read from Config.Clock: by the first New
// (or Reconfigure) of its Config, whose parameters later News share only
// while their span still reaches MinSpan either side of the present, and
// otherwise make anew. For Limit up to 1<<31 (c <= 32) that is at least 2^30
// windows, 34 years of one-second windows, 2,000 years of one-minute
// windows; for Limit up to 1<<24 it is 2^38 windows, 8,700 years of
// one-second windows. Within the span every instant, the zero time.Time
// included, is in its exact window. Past the span, all windows on that side
// merge into one: the limiter still never admits more than Limit in it, but
// the last window never ends (its ResetAfter and RetryAfter are
// ratekit.Never) and the first lasts until the span begins.
const MinSpan = 30 * 8766 * time.Hour // 30 years of 365.25 days

// Validate reports whether c is usable, with an error wrapping
// ratekit.ErrInvalidConfig that says what is wrong: Limit below 1, Window
// below 1ns, or a Limit too large to share the state word with MinSpan
// worth of Windows.
func (c Config) Validate() error {
	switch {
	case c.Limit < 1:
		return core.Invalid(pkg, "Limit %d: must be at least 1", c.Limit)
	case c.Window < 1:
		return core.Invalid(pkg, "Window %v: must be positive", c.Window)
	case countBits(uint64(c.Limit)) > maxCountBits(int64(c.Window)):
		return core.Invalid(pkg, "Limit %d with Window %v: too many units to count beside %v of windows either side of the epoch; use a longer Window or a lower Limit",
			c.Limit, c.Window, MinSpan)
	}
	return nil
}

const pkg = "fixedwindow"

// countBits is the width of a count field that holds every count up to max
// plus one: the field holds count+1, so that it is never 0 and no state is
// cell.Sealed (see fresh).
func countBits(max uint64) uint {
	return uint(bits.Len64(max + 1)) // max <= 1<<63 - 1, so max+1 does not wrap
}

// maxCountBits is the widest count field that leaves the index field of a
// limiter with window w (nanoseconds) enough bits for MinSpan either side
// of its epoch: with c count bits the index has 63-c bits, half of them, 2^(62-c)
// windows, on each side. It is at least 2 for any w >= 1 (2^60ns is 36 years).
func maxCountBits(w int64) uint {
	for c := uint(62); c > 0; c-- {
		// 2^(62-c) * w >= MinSpan, in 128 bits so that it cannot overflow.
		hi, lo := bits.Mul64(1<<(62-c), uint64(w))
		if hi > 0 || lo >= uint64(MinSpan) {
			return c
		}
	}
	return 0
}
