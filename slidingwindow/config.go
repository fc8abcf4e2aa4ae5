package slidingwindow

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/core"
)

const pkg = "slidingwindow"

// MaxWindow is the longest Window a Config may have: ten years. The bound
// keeps every sum of instants and windows inside int64 nanoseconds with room
// to spare (see minTime).
const MaxWindow = 10 * 365 * 24 * time.Hour

// MaxLogLimit is the largest Limit of a Log: 2^24 units, whose log takes
// 128 MiB. Larger quotas belong in a Counter.
const MaxLogLimit = 1 << 24

// Config configures a Log or a Counter. The zero Config is invalid: Limit and
// Window must be set.
type Config struct {
	// Limit is the most units admitted in any interval of length Window
	// (for a Counter, in any one of its fixed windows). It must be positive,
	// at most MaxLogLimit for a Log and at most MaxCounterLimit(Window) for
	// a Counter.
	Limit int
	// Window is the length of the sliding interval. It must be positive and
	// at most MaxWindow.
	Window time.Duration
	// Name is the policy name reported in every Decision (Decision.Policy).
	Name string
	// Clock is read by the convenience methods Allow, AllowN and Wait, and
	// when the limiter's parameters are made, for the epoch its instants
	// count from; nil is the real clock. Use a clock.Mock in tests.
	Clock clock.Clock
	// OnLimitReached, if not nil, is called once per run of denials: by the
	// first Take denied because the limit is reached (not for n < 0 or
	// n > Limit, nor for a now before the limiter's newest recorded time
	// or fixed window), with that Take's denial. A sliding window has no
	// windows to count calls by, so a run is what stands for one: it lasts
	// from that denial until the limiter's counts change, by an admitted
	// Take of n > 0, a Refund, Reconfigure or UnmarshalBinary. Denials in
	// between, however much time passes, do not call it again; the first
	// denial after a change does.
	//
	// It runs on the goroutine of that Take, after the limiter's state is
	// updated and with no lock held, so it may call back into the limiter;
	// that Take returns when it does, so keep it short. Setting it keeps a
	// bit of the limiter's state word for the mark, so a Counter's Limit
	// is then at most MaxCounterLimitWithHook(Window). With it nil, a
	// denial writes nothing.
	OnLimitReached func(ratekit.Decision)
}

// Validate reports whether c is a valid configuration for both a Log and a
// Counter, with an error wrapping ratekit.ErrInvalidConfig that says what is
// wrong. NewLog and NewCounter also check their own bound on Limit.
func (c Config) Validate() error {
	switch {
	case c.Limit <= 0:
		return core.Invalid(pkg, "Limit is %d; it must be positive", c.Limit)
	case c.Window <= 0:
		return core.Invalid(pkg, "Window is %v; it must be positive", c.Window)
	case c.Window > MaxWindow:
		return core.Invalid(pkg, "Window is %v; it must be at most %v", c.Window, MaxWindow)
	}
	return nil
}

// withClock returns c with its Clock, or the real clock if it has none:
// the Config a limiter made of c reports.
func (c Config) withClock() Config {
	c.Clock = core.Clock(c.Clock)
	return c
}

func (c Config) validateLog() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Limit > MaxLogLimit {
		return core.Invalid(pkg, "Log Limit is %d; it must be at most %d, MaxLogLimit (the log keeps 8 bytes per unit): %s",
			c.Limit, MaxLogLimit, c.instead(false))
	}
	return nil
}

// instead names the algorithms that take c's quota, for the error of a Log
// (counter false) or a Counter that cannot.
func (c Config) instead(counter bool) string {
	switch {
	case !counter && c.Limit <= MaxCounterLimit(c.Window):
		return fmt.Sprintf("a Counter takes it (up to %d with a Window of %v), or fixedwindow, rolling or tokenbucket", MaxCounterLimit(c.Window), c.Window)
	case counter && c.Limit <= MaxLogLimit:
		return fmt.Sprintf("a Log takes it exactly (up to %d), or fixedwindow, rolling or tokenbucket", MaxLogLimit)
	}
	return "fixedwindow (the same fixed windows, without the sliding estimate), rolling or tokenbucket takes it"
}

func (c Config) validateCounter() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.OnLimitReached != nil {
		if m := MaxCounterLimitWithHook(c.Window); c.Limit > m {
			return core.Invalid(pkg, "Counter Limit is %d; with a Window of %v and OnLimitReached it must be at most %d, MaxCounterLimitWithHook(Window) (its state is one 64-bit word, one bit of it the hook's mark): %s",
				c.Limit, c.Window, m, c.instead(true))
		}
		return nil
	}
	if m := MaxCounterLimit(c.Window); c.Limit > m {
		return core.Invalid(pkg, "Counter Limit is %d; with a Window of %v it must be at most %d, MaxCounterLimit(Window) (its state is one 64-bit word): %s",
			c.Limit, c.Window, m, c.instead(true))
	}
	return nil
}

// MaxCounterLimit returns the largest Limit a Counter with the given Window
// accepts, or 0 if window is not a valid Window. A Counter packs the index of
// its current fixed window and two counts into one 64-bit word; the index
// needs more bits the shorter the window, which leaves fewer for the counts.
// Examples: 32,767 for a second, 262,143 for a minute, 2,097,151 for an hour,
// 16,777,215 for a day.
func MaxCounterLimit(window time.Duration) int {
	if window <= 0 || window > MaxWindow {
		return 0
	}
	return 1<<countBits(int64(window), false) - 1
}

// MaxCounterLimitWithHook is MaxCounterLimit for a Counter with
// OnLimitReached set, whose word keeps a bit for the hook's mark: the same
// for most Windows (a second, a minute, an hour, 30 days), half of it,
// rounded down, where the index and the two counts fill the word exactly
// (8,388,607 for a day).
func MaxCounterLimitWithHook(window time.Duration) int {
	if window <= 0 || window > MaxWindow {
		return 0
	}
	return 1<<countBits(int64(window), true) - 1
}

// countBits is how many bits each count of a Counter's word takes, with a
// window of w ns and, if hook, a bit kept for OnLimitReached's mark: half
// of what the index leaves.
func countBits(w int64, hook bool) int {
	free := 64 - indexBits(w)
	if hook {
		free--
	}
	return free / 2
}

// indexBits is how many bits a Counter needs for the index of a fixed window
// of length w relative to the window holding minTime: every instant in
// [minTime, maxTime] lies in one of at most (maxTime-minTime)/w + 2 windows,
// and one more value is kept free, the largest index of that width, so that
// a word can never be cell.Sealed (see counterParams.pack).
func indexBits(w int64) int {
	windows := uint64(maxTime-minTime)/uint64(w) + 2
	return bits.Len64(windows)
}

// Internally an instant is int64 nanoseconds from the limiter's epoch,
// Config.Clock's time at the making of its parameters, computed with now.Sub(epoch) so that the
// monotonic clock is used when now carries a reading. Instants are clamped to
// [minTime, maxTime], 73 years either side of the epoch: the zero time.Time,
// whose Sub saturates at -292 years, becomes minTime. With a Window of at
// most MaxWindow (2^58.2 ns), every sum below stays under 2^62.6 in
// magnitude: t-x and e+W-x (both at most 2^62 + 2^58.2), and a Counter's
// window starts in Unix nanoseconds (epoch ± 2^61, plus 2·Window).
const (
	minTime = -1 << 61
	maxTime = 1<<61 - 1
)

// since returns now as a clamped instant relative to epoch.
func since(now, epoch time.Time) int64 {
	return min(max(int64(now.Sub(epoch)), minTime), maxTime)
}

// Unix nanoseconds of epoch, an epochAt.
func unixOf(epoch time.Time) int64 { return epoch.UnixNano() }

// maxEpoch bounds an epoch's Unix nanoseconds either way (about 146 years
// from 1970), so that every window start, epoch ± 2^61 plus two Windows,
// stays under 2^62.6 in magnitude.
const maxEpoch = 1 << 62

// epochAt returns the epoch of parameters made when the Config's clock
// read now: now itself, or, for a (mock) clock set more than 146 years from
// 1970, the nearest instant within that bound.
func epochAt(now time.Time) time.Time {
	switch s := now.Unix(); {
	case s >= maxEpoch/1_000_000_000:
		return time.Unix(0, maxEpoch)
	case s <= -maxEpoch/1_000_000_000:
		return time.Unix(0, -maxEpoch)
	}
	return now
}
