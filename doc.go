// Package ratekit is an embedded library of rate limiters for Go services
// that enforce quotas on their own API and for Go clients that must live
// within other services' quotas.
//
// # Algorithms
//
// Every algorithm answers one question through the Limiter interface: may n
// units pass at this instant? Each lives in its own package, configured by a
// Config with Validate and built by New, which returns an error wrapping
// ErrInvalidConfig for bad values:
//
//   - tokenbucket: GCRA token bucket, Limit units per Window with bursts up to Burst.
//   - fixedwindow: windows aligned to the clock (Sender's 60 per minute, reset at :00).
//   - rolling: windows that open at the first event and last Window (Rollbar).
//   - slidingwindow: an exact sliding log, and an O(1) approximate sliding counter
//     (Sanity's 25 mutations per second per IP, an org's 600 per minute).
//   - concurrency: semaphores whose units are held until released (100 concurrent
//     mutations per dataset); its Limiter is a Holder.
//
// A denial is a Decision with Allowed false, never an error. A Decision
// carries what HTTP rate-limit headers need: Limit, Remaining, Window,
// ResetAfter, RetryAfter and the Policy's name.
//
// Every limiter keeps the rules of the Limiter interface, which says them
// once (a denial, n == 0, n < 0 and n beyond capacity, Peek, Refund);
// each package documents only where it departs from them. Take, Peek and
// Refund are lock-free and allocate nothing on their common paths (where
// one allocates on a rare path, its package says so).
//
// # Time
//
// Methods that touch state take the time explicitly (Take(now, n)), as
// golang.org/x/time/rate's AllowN does: tests drive limiters at fixed
// instants, and the hot path never reads a clock. The convenience methods
// Allow, AllowN and Wait of each algorithm read the Config's Clock (a
// github.com/benbjohnson/clock.Clock; nil is the real clock), so a
// clock.Mock drives them under test.
//
// Time passed in may be stale or go backwards, as it does when goroutines
// read the clock before contending for a limiter: a limiter never admits more
// because of it. Internally time is integer nanoseconds from an epoch; no
// floating point is involved. Durations between two times that both carry a
// monotonic reading use it; windows aligned to the clock and saved state use
// wall-clock time.
//
// A time far ahead (a clock glitch of a hundred years) is taken at its word:
// what it takes stays counted until then, so the limiter, or the key, stays
// blocked, which errs on the safe side. Reconfigure does not undo it (units
// taken stay counted whatever limits it sets). The way out is to replace
// the state: Keyed.Delete(key) drops a key's limiter, and its next use makes
// a fresh one; a single limiter takes a fresh limiter's state with
// UnmarshalBinary (the MarshalBinary of a New of the same Config). A
// persist.Store deletes or overwrites the saved state at its next
// checkpoint, so a restart does not bring the glitch back.
//
// # Reconfiguration
//
// Every algorithm limiter has Reconfigure(cfg): it takes effect at once,
// for every call that starts after it returns, and is safe under
// concurrent use. It reads cfg.Clock once, for the instant of the change.
// Units taken stay counted whatever limits it sets and unsets: a lower
// Limit applies to what was taken, so the limiter may stay full, or
// over-full, until those units expire, and raising the Limit again gives
// none back. A shorter Window keeps counting what was taken for at least
// the new Window from the instant of the change, or from the end of the
// window that counted it if that is earlier: the limiter cannot tell when
// in its window the units were taken, and they may all be that recent. So
// from the change on, it admits no more, at any instant, stale ones
// included, than a limiter of the new Config all along that took the same
// Takes, for every Take it still counted at the change; a Take stamped
// after the instant of the change (a clock ahead of the Config's) counts
// as if taken then. A limiter that switches at 13:30 from 1000 an hour to
// 60 a minute, with 60 or more taken in the hour, admits nothing until
// 13:31. A Reconfigure to the Config in force changes no decision, at any
// instant.
//
// A longer Window does not bring back what the limiter has already let go
// of: none keeps a history beyond its window. Fixed windows of a second
// with a Limit of 10, 5 taken at 13:00:00 and 1 at 13:00:01.1, switched
// then to windows of 3 seconds, count the 1 and admit 9 until 13:00:03,
// where windows of 3 seconds all along count 6 and admit 4. A token
// bucket's Window is its rate's period: a unit partly refilled at the old
// rate counts as not refilled at the new one. What a limiter has let go of
// depends on its own Takes: one that moved its state past older windows
// and was then refunded leaves them let go, so after a longer Window the
// limiter may admit more than one that never saw the refunded Take (under
// the Config in force a refund gives back no more than that Take took).
// Each package's Reconfigure says where it departs from this.
//
// # Composition
//
// Real quotas come in layers: a user-defined daily quota and a system
// per-minute ceiling on one token (Rollbar), an org, a token and an IP on
// one HTTP request. TakeAll and AllOf admit a request only if every member
// admits it, all or none: a request that one member refuses counts against
// none of the others, under any interleaving of concurrent callers. Token
// buckets, fixed windows, rolling windows and sliding Counters are decided
// together, in one atomic step that takes from all or none (and PeekAll
// reads them at one instant); other members are taken one by one and
// given back on a refusal. The Decision describes the binding
// member: the one with the least Remaining when allowed, the one with the
// longest RetryAfter when denied.
//
// Wait blocks until a limiter admits a request, honouring the context's
// deadline on the clock passed in.
//
// # Keys
//
// Services limit per org, per token, per IP: NewKeyed makes a Keyed, one
// limiter per key, made by a factory on the key's first use. The factory
// receives the key, so each key may have its own limits (a token's
// user-defined quota, test keys at a tenth of live keys'), or refuse it by
// returning nil (an unknown token). Get and Take of a known key take no lock
// and allocate nothing. Limiters of equal Configs share their parameters,
// so a factory that calls New per key is the one obvious way, and the
// cheap one: a key's token bucket, fixed window, rolling window or sliding
// counter is one 32-byte allocation, plus its place in the Keyed
// (bench/RESULTS.md, "Memory per key", has the bytes a key measured). The
// packages' Templates are deprecated.
//
// Memory stays bounded. Sweep, or a background sweeper, drops the limiters
// that are idle (back at full capacity, so that dropping them changes no
// decision). KeyedConfig.MaxKeys is a hard cap that holds under a flood of
// new keys (random IPv6 addresses): past it, a new key evicts an idle key if
// it finds one, else the least recently used of a sample; evicting a busy
// key lets it admit at most one window's worth more. Keyed's documentation
// says exactly what holds for a limiter still in use when its key goes.
//
// # Persistence
//
// Every algorithm limiter marshals its state in wall-clock terms
// (MarshalBinary/UnmarshalBinary), so a 30-day quota survives a restart and
// downtime counts as elapsed time. Restored into a limiter of the same
// Config, a state decides, at every instant, stale ones included, no more
// generously than the limiter that saved it (a concurrency limit saves no
// held units: they belong to the process that holds them). Restored into a
// limiter of another Config (a redeploy with a longer or shorter Window, a
// lower or higher Limit or Burst), a state is carried as Reconfigure
// carries one (see Reconfiguration), with no instant of a change: its
// units may all have been taken at the last instant its window counts.
// A token bucket's state records its rate and Burst, and a rolling
// window's its Window, to carry them by (a token bucket from the instant it
// was last empty, not from a Clock's reading: see its UnmarshalBinary);
// states saved by earlier builds record neither, and are restored as the
// limiter's own. Those builds refuse a drained bucket's or an open rolling
// window's state saved by this one (format version 3) with
// ErrInvalidState, and persist then starts that key fresh: a rollback
// across this change admits up to a full Burst or Limit again per such
// key, once. Restoring a bad or foreign state fails with an error wrapping
// ErrInvalidState and leaves the limiter unchanged. The
// persist package keeps single and keyed limiters in an embedded bbolt file:
// it restores them when they are attached, and checkpoints what changed
// periodically and on Close, so a crash loses at most the admissions since
// the last checkpoint. Takes never wait on disk.
//
// # HTTP
//
// The httplimit package is net/http middleware that keys requests (token,
// header, client IP behind trusted proxies), takes every tier all or none,
// writes rate-limit headers in several dialects and answers 429 with
// application/problem+json. The httpclient package is an http.RoundTripper
// that honours Retry-After, backs off with jitter and paces itself from the
// headers other services send.
//
// # gRPC
//
// The grpclimit module (github.com/ratekit/ratekit/grpclimit, on grpc-go)
// has server interceptors over httplimit's tiers and a client interceptor
// that honours google.rpc.RetryInfo.
//
// # Metrics
//
// The nested module github.com/ratekit/ratekit/otelratekit records
// OpenTelemetry metrics from the hooks of httplimit, Keyed, Wait and persist,
// with no key as an attribute; it is a module of its own, so this one
// downloads no OpenTelemetry.
package ratekit
