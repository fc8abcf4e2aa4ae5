// Package redisstore runs ratekit's limiters in Redis, so that a quota
// holds across every replica of a service: the same algorithms and
// semantics as the embedded packages, decided by one Lua script per call.
//
// It is a module of its own (github.com/ratekit/ratekit/redisstore) so
// that users of the embedded library never download a Redis client.
//
// # Basics
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	store, err := redisstore.New(rdb, redisstore.Options{})
//	perOrg, err := store.Limiter(redisstore.Config{
//		Algorithm: redisstore.SlidingCounter, Name: "org", Limit: 600, Window: time.Minute,
//	})
//	d, err := perOrg.Take(ctx, "org42", 1) // d.Allowed, d.Remaining, d.RetryAfter ...
//
// A Limiter is one policy (Config: Algorithm, Name, Limit, Window, and
// Burst or Offset) for any number of keys. Take, Peek and Refund each make
// one round trip (EVALSHA; EVAL once after the server has lost its script
// cache, as after a restart) and are atomic on the server: no interleaving
// of replicas admits more than the algorithm allows. A denial is a
// Decision with Allowed false and writes nothing; an error is Redis's
// (connection, timeout) and comes with the zero Decision.
//
// The algorithms are those of the embedded packages: TokenBucket (GCRA,
// package tokenbucket), FixedWindow (fixedwindow), Rolling (rolling),
// SlidingLog and SlidingCounter (slidingwindow), and a Semaphore for
// concurrency limits whose units are held by leases that expire if their
// holder dies (concurrency). The edge cases decide as there: n == 0 is
// allowed and takes nothing; n < 0 and n over capacity are denied with
// RetryAfter ratekit.Never; a stale time never admits more; Refund never
// gives back more than was taken. The tests hold every algorithm's script
// to a reference model, and to the embedded limiter where one exists,
// Decision for Decision.
//
// # Time
//
// Decisions use the server's clock (the TIME command, read inside the
// script), so replicas whose clocks disagree still agree on every window.
// Redis 7 replicates a script's effects, not the script, so reading TIME
// before writing is allowed and replicas of Redis stay consistent.
//
// Redis keeps time in microseconds, not nanoseconds: Lua's numbers are
// doubles, exact for integers below 2^53, and a Unix time in nanoseconds
// (about 1.8e18) is not. Windows, offsets and leases must be whole
// microseconds (Validate says so); injected times are truncated to the
// microsecond; ResetAfter and RetryAfter are whole microseconds, waits
// rounded up. On that grid decisions are exactly the embedded packages'
// (a wait the embedded package computes to the nanosecond is the same
// one rounded up to the microsecond: the same first instant on the grid).
// The script never forms a product of a count and a time (10^9 units a
// day is 8.64e19 unit·µs, beyond a double's 2^53): it divides such
// products exactly, by long multiplication, and keeps the token bucket's
// fractions of a µs in a word of their own. So every algorithm takes any
// Limit up to MaxLimit (2^31-1) over any Window up to MaxWindow (400
// days): 10^9 a day, or over 30 days, and Rollbar's 100,000 a day as a
// token bucket. The one joint bound is a TokenBucket's refill time,
// Burst·Window/Limit, at most MaxRefill (about 35 years); Validate names
// the largest Burst that fits when it is not.
//
// TakeAt, PeekAt and RefundAt take an injected time instead of TIME: a hook
// for tests, which compare decisions at fixed instants, and for callers
// that keep one clock themselves. TTLs are still counted on the server's
// clock; Options.TTLSlack lengthens them when injected clocks may lag it.
// A key that has expired has forgotten the newest time it saw, so an
// injected time older than that is then decided as on a fresh key.
//
// Changing a policy is making a Limiter with the same Algorithm and Name
// and a new Limit, Window, Burst or Offset: the keys' state carries over,
// read under the new parameters (an open window keeps its start and ends
// at start + the new Window; a count above a lowered Limit admits nothing
// until its window ends).
//
// # Several limits at once
//
// Store.TakeAll takes n units from several limiters and keys (an org's
// quota, a token's, an IP's) all or none, in one script: a request that
// one member denies counts against none of the others. The Decision
// describes the binding member, as ratekit.TakeAll's does. Store.Hold
// does the same with Semaphores among the members (a per-IP rate and a
// per-dataset concurrency limit) and returns their leases.
//
// # Key layout
//
// The state of key under a Limiter is one Redis key:
//
//	<prefix><alg>:<name>:<key>      e.g. ratekit:tb:api:{org42}
//
// where prefix is Options.Prefix (default "ratekit:"), alg is tb, fw, rw,
// sl, sc or cc (token bucket, fixed window, rolling, sliding log, sliding
// counter, semaphore) and name is Config.Name. Two Limiters of one
// algorithm and name share their keys' state, in any process: that is how
// replicas share a quota. Prefix and Name hold no braces, so on Redis
// Cluster the hash tag is the caller's: the keys of one TakeAll must hash
// to one slot, so give them one tag ("{org42}" and "{org42}:tok7"), or
// Redis refuses the call with CROSSSLOT. A single Take needs no tag.
//
// The token bucket, windows and sliding counter keep a short string per
// key; the sliding log a sorted set of admission times (one entry per
// distinct microsecond, at most Limit live ones, and a running total, so
// that a call reads only the entries that have expired and, on a denial,
// the oldest that must: its memory grows with Limit, its work per call
// does not); the semaphore a sorted set of leases and their total, read in
// the same way.
//
// # Memory
//
// Every write sets the key's TTL to how long its state differs from a
// fresh key's: until the bucket is full again, the window ends, the newest
// log entry or lease expires. An idle key is deleted by Redis, and a key
// that was never admitted is never written, so memory is bounded by the
// keys active within a window. A window refunded back to empty is deleted.
//
// # When Redis is unreachable
//
// Limiter.For adapts one key to a ratekit.Limiter, usable with
// ratekit.TakeAll, AllOf, Wait and the HTTP middleware; Semaphore.For
// adapts one to a ratekit.Holder, which keeps its leases in the process. Its interface has
// no error, so its AdapterConfig says what a failed call decides:
// FailOpen admits (as a fresh key would), FailClosed denies with a
// RetryAfter, FailFallback asks a local embedded limiter. Each call waits
// at most Timeout; OnError sees every failure; Cooldown skips Redis for a
// while after one, so an outage does not cost every request a timeout.
package redisstore
