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
// For a limiter per IP address, org or token (ratekit.Keyed), make the
// limiters with a template, NewCounterTemplate or NewLogTemplate: it
// validates the Config once, its New cannot fail, and its limiters share
// one immutable parameter set. A template's Counter is then one 24-byte
// allocation, where NewCounter's cost 240 bytes in two; a template's Log is
// its ring of 8 bytes per unit of Limit plus 64 bytes, where NewLog's cost
// the ring plus 224 (272 bytes against 432 for a Limit of 25). In all else
// they are the limiters NewCounter and NewLog make: Reconfigure gives one
// limiter parameters of its own, and UnmarshalBinary keeps the shared ones.
//
// # Concurrency
//
// Both are safe for concurrent use and allocate nothing in Take, Peek and
// Refund. The Counter is lock-free: one CAS on its word. The Log's writes
// (an allowed Take, a Refund) are serialised by a seqlock held for the few
// stores of the write; its reads (Peek, a denied Take) never write shared
// memory. A denied Take changes nothing in either.
//
// # Time and state
//
// Both take the time explicitly (Take(now, n)); Allow, AllowN and Wait read
// Config.Clock. Times may be stale or go backwards: a limiter evaluates a
// stale time at the newest time it has recorded (the Log) or at the start of
// its current fixed window (the Counter), so it never admits more because of
// it. Instants are kept as nanoseconds from the limiter's making (or its
// template's), clamped to 73 years either way. Both marshal their state in
// Unix nanoseconds (MarshalBinary), so that a restart loses no units and
// downtime counts as elapsed time, and both can be reconfigured at once
// (Reconfigure).
package slidingwindow
