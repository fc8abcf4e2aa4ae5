// Package slidingwindow limits how many units pass in any interval of a
// given length: an exact sliding log, and an approximate sliding counter
// that needs one 64-bit word of state.
//
// # Log
//
// A Log (NewLog) is exact: in every interval of length Window it admits at
// most Limit units, and a unit admitted at e counts at now while
// now-e < Window. It remembers the instant of each of the last Limit units,
// so its memory is 8 bytes per unit of Limit. Use it where the quota is small
// enough to keep and a client may hold you to it exactly: Sanity's 25
// mutations per second per IP, a mail API's 600 requests per minute per org.
// RetryAfter on a denial is exact: the moment the oldest units that must
// expire do.
//
// # Counter
//
// A Counter (NewCounter) estimates the sliding count from two fixed windows
// aligned to Unix time, as Cloudflare's rate limiter does: the count of the
// current window, plus the count of the previous one weighted by the part of
// it the sliding window still covers. It never admits more than Limit in one
// fixed window, but in an interval of length Window that straddles two of
// them it can admit up to 2·Limit-1 (see Counter for the bound and the error
// measured on several traffic shapes). Its state is one atomic 64-bit word
// whatever the Limit, so it suits large quotas and millions of keys, up to
// MaxCounterLimit(Window).
//
// # Caps
//
// A Log's Limit is at most MaxLogLimit (2^24: its ring is 8 bytes per
// unit), so a quota of 10^9 a day cannot be a Log. A Counter's is at most
// MaxCounterLimit(Window): 16,777,215 for a day, 67,108,863 for 30 days. New
// refuses a larger Limit with an error that names the bound and the
// algorithms that take the quota (fixedwindow, rolling and tokenbucket take
// 10^9 a day and 10^9 per 30 days).
//
// # Many keys
//
// For a limiter per IP address, org or token (ratekit.Keyed), call
// NewCounter or NewLog in the factory: limiters of equal Configs share one
// immutable parameter set, so a Counter is one 32-byte allocation, its
// state inline, and a Log its ring and 64 bytes. (The templates,
// CounterTemplate and LogTemplate, are deprecated: they make the same
// limiters.) Reconfigure gives one limiter the parameters of its new
// Config, and UnmarshalBinary keeps those it has.
//
// # OnLimitReached
//
// Config.OnLimitReached is called once per run of denials (see Config): the
// sliding windows' stand-in for fixedwindow's and rolling's once per
// window. Its mark is a bit of the state word, set by CAS with the first
// denial of a run, so it is called once however many goroutines are denied
// at once, and a denial writes nothing else.
//
// # Concurrency
//
// Both allocate nothing in Take, Peek and Refund. The Counter is
// lock-free: one CAS on its word, on the state seam
// every word-state algorithm shares (internal/cell). The Log stays outside
// that seam: its state is a ring of up to MaxLogLimit instants, not a
// word, and a Take of n units writes n slots that must be seen whole or not
// at all, which no single CAS can publish. The Log's writes
// (an allowed Take, a Refund) are serialised by a seqlock held for the few
// stores of the write; its reads (Peek, a denied Take) never write shared
// memory (but for OnLimitReached's mark).
//
// # Time and state
//
// Both take the time explicitly (Take(now, n)); Allow, AllowN and Wait read
// Config.Clock. A limiter judges a stale time by that time itself, counting every unit that could count
// there, those admitted after it included (the Log: every unit with
// now-e < Window; the Counter: the units of its two fixed windows in full,
// and older windows it no longer knows as full). So a stale time never
// admits more than a later one, nor more because other Takes, refunded ones
// included, moved the limiter ahead. Units of a stale Take are recorded at
// the newest time recorded (the Log) or in the current fixed window (the
// Counter). Instants are kept as nanoseconds from the epoch of the
// limiter's parameters (Config.Clock's time when the first limiter of its
// Config was made), clamped to 73 years either way. Both marshal their state in
// Unix nanoseconds (MarshalBinary), so that a restart loses no units (none
// that a stale time still counts either) and downtime counts as elapsed time, and both can be reconfigured at once
// (Reconfigure).
package slidingwindow
