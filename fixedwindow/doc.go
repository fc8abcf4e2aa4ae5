// Package fixedwindow limits units per window, in windows aligned to the
// clock: a per-minute window runs from :00 to :00 and a daily window from
// midnight to midnight, whoever the caller is and whenever the limiter was
// created. This is the quota of Sender's API: 60 requests per minute per
// account, in windows that end at :00 (X-RateLimit-Reset:
// 2026-03-18T13:02:00Z). Windows that open at a key's first event instead,
// as Rollbar's do, are the rolling package's.
//
//	l, err := fixedwindow.New(fixedwindow.Config{Limit: 60, Window: time.Minute, Name: "api"})
//	...
//	d := l.Take(time.Now(), 1)
//	// d.Remaining, and the window's end: time.Now().Add(d.ResetAfter)
//
// # Basics
//
// A window admits n units if the units it has admitted, plus n, are at most
// Limit. The count starts from zero at every window boundary, whatever was
// taken before. A Decision reports Remaining (Limit minus the window's count
// after the call), ResetAfter (the time to the window's end; 0 when nothing
// is taken in the window) and, on a denial, RetryAfter (also the time to
// the window's end).
//
// Fixed windows are simple and cheap, and their counts and reset times are
// what clients expect to see in headers. Their known weakness is the
// boundary: up to 2*Limit units can pass within a short time around one
// boundary, Limit at the end of one window and Limit at the start of the
// next. Where that matters, use slidingwindow, or compose a fixed window
// with a tokenbucket of a shorter period (ratekit.AllOf).
//
// # Time
//
// Windows are aligned to wall-clock Unix time plus Config.Offset, the local
// time of a zone Offset east of UTC: a window's index is
// floor((now.UnixNano() + Offset) / Window), computed exactly for every
// time.Time, the zero time included. So a daily window resets at midnight
// of Offset's zone (Offset -5h: midnight in New York in winter, 05:00
// UTC). Wall-clock time is the point of aligned windows, so a step of the
// system clock moves the windows with it.
//
// Reconfigure and MarshalBinary carry a window by its start, which they
// hold exactly from 2^62-1 seconds before 1970 to 2^62-1 seconds after it
// (146 billion years either way; a time.Time holds twice that). Past that,
// a limiter whose Clock reads there (a mock) loses its count through them:
// a window starting later is carried as the window holding the bound, and
// the limiter admits up to Limit afresh at the instants its count was
// taken; a window starting earlier is carried to the window holding the
// bound, later than its own, and admits less.
//
// Take, Peek and Refund take the time as an argument. Times may be stale or
// go backwards: a Take stamped in a window earlier than one the limiter has
// already counted in is denied, because that earlier window's count is no
// longer known (a Take whose time was read just before a boundary, and which
// lost a race with one read just after it, is denied and can retry at once
// with a fresh time). Times within the same window may come in any order.
//
// # Concurrency
//
// The state is one 64-bit word, the window's index and its count packed
// together, updated by compare-and-swap on internal/cell's seam. A denial
// writes nothing, except that the first denial of a window sets a flag in
// the word when Config.OnLimitReached is set: that flag makes
// OnLimitReached run exactly once per window however many goroutines are
// denied at once. See MinSpan for the layout's bounds.
//
// # Many keys
//
// For a window per user, API key or IP address (ratekit.Keyed), call New in
// the factory: limiters of equal Configs share one immutable parameter set,
// so each is 32 bytes, its state inline, one allocation. The factory still
// decides per key (live keys 600 a minute, test keys 60); each distinct
// Config costs one parameter set. Each limiter keeps its own count and its
// own OnLimitReached flag, and Reconfigure or UnmarshalBinary of one
// changes that one alone.
//
// # Persistence
//
// MarshalBinary encodes the state in wall-clock terms (the window's start
// and length, its count), so a restarted process restores it and downtime
// counts as elapsed time: restored after its window ended, a state leaves
// the limiter fresh.
//
// # Caps
//
// Validate refuses a Limit whose count cannot share the state word with
// MinSpan worth of windows (Config.Validate, MinSpan): for a Window of a
// second or longer, any Limit up to 2^31 fits, so 10^9 a day and 10^9 per
// 30 days do.
package fixedwindow
