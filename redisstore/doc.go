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
// read under the new parameters as the embedded Reconfigure carries it
// (units taken stay counted; see the ratekit package documentation), with
// one difference: there is no instant of the change, as every call reads
// the state afresh under its own policy until a write keeps it, so the
// latest stamp of a Take the state counts stands for it. A fixed window's
// count moves to the new window that holds that stamp; a rolling window
// that the new Window from its start has closed by that stamp starts
// there; a token bucket's units not refilled at that stamp, rounded up to
// whole ones, refill at the new rate from it; a sliding counter's two
// windows count in the new window that holds the last instant of its
// current one; a sliding log's entries count by the new Window, so those
// a shorter one had expired count again under a longer one while the key
// still holds them (the key keeps the Window it was last written under,
// to tell its expired entries from its live ones; a key written before it
// kept one reads as written under the call's Window, and under a longer
// one still counts those entries neither live nor expired, until they
// expire). A count above a lowered Limit admits nothing until its
// window ends. Keys written by an older version of the script, which kept
// neither that stamp nor (sliding counter) the Window, read as placed by
// their window's start, and a token bucket written before its rate was
// kept as it stands, until their next write. Scripts older than the
// previous release cannot parse the words this one adds: they fail on a
// fixed or rolling key this one wrote, and read a token bucket or sliding
// counter key as fresh. The previous release: see Deploys and rollbacks.
//
// # Deploys and rollbacks
//
// During a rolling deploy, or after a rollback, replicas running this
// version and the one before it (the script released at 4933695) decide on
// the same keys. The tests run both scripts on one Redis, each call sent to
// either at random, against the model of this one.
//
// Under one Window (Limits may change), the fleet decides exactly as this
// version alone, every algorithm: the two scripts differ only in what a
// change of Window does, and a sliding log key's "!w:W:m[:l]" member
// (scored -inf), which the previous version skips and leaves as it was.
// One exception: the previous version's sliding log Refund looks for the
// oldest entry among the key's first three members, to file its
// placeholder on (see Refunds); "!w" is one of them, and where "!l" and a
// stale "f" (the clock of a Refund, which a later Take of the previous
// version leaves behind; a Take of this version removes it, unless the
// previous version's have recorded three newer entries) both come before
// the oldest entry, it files the placeholder at its clock less the Window
// instead. That counts at more stale times (admits less), unless an entry
// of the same units is already there: the two merge, and a stale time
// before that Refund's clock admits up to those units more.
//
// Rolled back onto keys this version wrote, the previous version decides
// as this one would, under the Window the key records (this version
// carried to it), with the sliding counter's raised most (at most
// 2^47-1, which its arithmetic takes) read as its largest Limit; except a
// sliding log whose Window grew since a trim forgot units. This version
// keeps "!l" at most its clock less the Window, as the previous one
// assumes, and a later lost mark in "!w"; the previous version reads "!l"
// at stale times only, so until the later mark expires it admits what the
// units forgotten leave free (as many as the Limit at a fresh time).
// Forward again, this version reads the later mark.
//
// A change of Window that the previous version carries keeps that
// version's faults. A sliding counter it carries counts a window it
// forgets as its largest Limit, not as what it may hold (see Stale times),
// whichever version reads it next: a stale time may admit more than had a
// refunded Take never happened, at most the difference. A sliding log it
// reads under a longer Window cuts its archive at its clock less that
// Window, so the units a shorter one had archived count neither live nor
// archived, and as many more are admitted. The archive keeps whole
// entries, trimmed oldest first while Limit newer units remain, so it may
// hold almost twice the largest Limit a Take on the key was admitted
// under. The totals it writes stay cut under its Window, and the key
// keeps the "!w" this version last wrote (or none): until this version
// reads the key under another Window than "!w" records (which recounts
// the totals from the entries) or the key expires, either version may
// count the key's units short, or over. In all, while both versions
// write a sliding log key, the fleet admits in any Window, beyond the
// Limit, fewer than twice that largest Limit for each change of the key's
// Window so far (a write under another Window than the write before it,
// by either version), and nothing while the Window stays (but for the
// Refund above); the tests hold random histories to this bound. The
// previous version may also file Refund placeholders before the lost
// mark, or write an archive total below 0, and then fails on the key (a
// Lua error: the call returns an error); this version decides on such
// keys, and writes archive totals of at least 0. Deploy a change of a
// sliding log's Window when no replica runs the previous version, or
// under a new Options.Prefix.
//
// # Refunds
//
// RefundAt(key, at, n) gives back n units an allowed Take stamped at took,
// by the embedded packages' rules, so that a refund never leaves a key
// able to admit more, at any time, than had the refunded Take never
// happened, whatever stamps other callers used in between (ratekit.TakeAll
// rolls back through it):
//   - TokenBucket: the key keeps z, the latest stamp of any admitted Take.
//     The theoretical arrival time moves back by n emission intervals less
//     z - at (if z is later), never to before at and never forward: a Take
//     refunded before any later-stamped one is restored exactly, one
//     refunded after callers stamped later took the refill is given back
//     only what they cannot have used (tokenbucket.Limiter.Refund has the
//     proof). The key also keeps the rate (Limit, Window) it was written
//     under: a refund under another rate gives nothing back, and the first
//     write under a new rate moves z a new Burst's refill past max(z, now),
//     so that no Take charged at the old rate gets anything back later
//     either (tokenbucket.Limiter.Reconfigure's rule). A change of Burst
//     alone changes no refund. (A Local's lease is given back by its own
//     Limiter, at the rate it was taken at, into a tat left as the lease
//     left it: exact whatever other policies did in between.)
//   - FixedWindow: the units come off the window at falls in, if it is
//     still the key's window.
//   - Rolling: the units come off the open window if at is within it. A
//     refund at the window's start while units taken after the start
//     remain moves the start a Window on (the refunded Take may have
//     opened the window, which then would have opened later), so the
//     window closes no sooner than it would have. A lease's refund of its
//     unspent units is plain: its first units opened the window. A window
//     refunded to empty is kept, spent, until it would have ended: a Take
//     stamped before its start opens the next window at that start, as a
//     stale Take joins an open window, so window starts never move back
//     and a refund of an older Take cannot give back a later one's units.
//   - SlidingLog: the n oldest live units logged at or after at are removed.
//     Once the log has forgotten units (see Stale times), the units removed
//     are filed again at min(its clock - Window, its oldest entry), where
//     they count at stale times only, standing for the forgotten ones
//     (slidingwindow.Log's placeholders).
//   - SlidingCounter: the units come off the count of the window at falls
//     in, the current or the previous one. A key a refund empties is kept,
//     not deleted: deleted, it would read as fresh at stale times.
//
// Stale times. A time before the key's state (an injected time older than
// the newest one the key has seen, say that of a refunded Take) is judged
// by itself, as in package slidingwindow, never by how far other Takes
// moved the key ahead. The sliding log counts every unit logged within a
// Window before it, later ones included; it keeps expired entries, oldest
// dropped first, while Limit newer units are kept, so a unit it forgets
// counts only where Limit newer ones count too. A Limit lowered and raised
// again breaks that (the units kept were the lower Limit's), so the key
// also keeps the newest unit it forgot, its lost mark (as
// slidingwindow.Log does): a time at which that unit counts admits
// nothing until it expires, and units taken stay counted, at stale times
// too, whatever Limits come and go. A key stored before the mark was kept
// has none until its next trim writes one. The sliding counter counts,
// at a time in the window before its current one, both its windows' units
// in full and the window before them, which it no longer knows, as Limit
// units weighted as a previous window is, or more where that window may
// hold more: the largest Limit a Take on the key was admitted under, and
// after a change of Window from w to W, ceil(W/w) times what an old window
// may hold (as slidingwindow.Counter keeps it) or the units carried into
// one window, if more (the Counter does not count those, and admits more
// at such a time than had a refunded Take never happened); earlier still,
// every n > 0 is denied. So no refund lets a stale time admit more than had the refunded
// Take never happened. A key that has expired (see Memory) has forgotten
// all of this, and a stale time on it is decided as on a fresh key.
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
// # Modes: what each promises
//
// A Limiter decides every call in Redis: one round trip per decision, and
// the fleet admits exactly what the algorithm admits, as if one process
// decided every request at the server's time. Limiter.Local adds state in
// the replica, for a hot key's decisions to be made without a round trip;
// LocalConfig turns on either mode or both. Neither ever admits more than
// the Limiter would; what they give up is named below.
//
// Quota leases (LocalConfig.Lease). A Take that goes to Redis may take k
// units, the request's n and more, in the same round trip, and later Takes
// of the key in that process spend the rest with no round trip until the
// lease ends (LeaseLife; and for FixedWindow, Rolling and SlidingCounter,
// the end of the window the units count in). Units are taken in Redis
// before they are spent, so every unit the fleet admits was counted there
// first: the fleet never admits more than the Limit. For a TokenBucket the
// units are taken as at the lease's end (the bucket's theoretical arrival
// time becomes max(tat, end) + k·Window/Limit), so that spending them at
// any time during the lease is conformant: a lease costs the bucket the
// refill of its own life when the bucket is near full, and a bucket that
// refills in less than LeaseLife takes no leases. SlidingLog takes none:
// an exact log records each unit at the instant it is admitted, which the
// server does not see; a leased SlidingLog decides every Take in Redis.
//
// Lease size follows the key's rate: about the units the key used in the
// last LeaseLife (extrapolated from those since its last round trip), at
// most twice the last lease plus n, at most LocalConfig.MaxLease, at most
// half of what the key has free. A key used less than once per LeaseLife
// leases nothing: each Take is one round trip, as without leases.
//
// Unspent units go back: at the key's next round trip (the lease ran out
// or ended; one call gives them back and takes the next lease), at
// Local.Sweep once the lease has ended (or at the background sweep that
// LocalConfig.SweepInterval starts), and at Local.Close. A window's
// units go back to the window they were counted in, if it is still open,
// exactly; a bucket's only if no other Take has touched the key since the
// lease (the bucket cannot otherwise tell which units to give back), else
// they are forfeit. If a replica dies, its lease's unspent units are never
// given back: they stay counted as taken until the key's state forgets
// them, as units taken and not used would, and the key's TTL expires them
// with the state. So the fleet under-admits by at most one lease per dead
// replica per key (at most MaxLease units), for at most the lease's life
// (FixedWindow, Rolling: the lease ends with the window that counts them),
// the next window's weight of them (SlidingCounter, which counts the
// previous window's units at a weight falling to zero over one Window),
// or their refill time, k·Window/Limit after the lease's end
// (TokenBucket). A live lease's unspent units are out of the other
// replicas' reach until it ends: near the limit one replica may refuse
// while another still holds units (under-admission, never over).
//
// A leased Decision made in the process reports the lease's view: Limit,
// Window and Policy as always; Remaining is what Redis had left after
// the lease plus the lease's unspent units (other replicas may have taken
// some since); ResetAfter is Redis's at the lease, less the time since.
//
// Leases and time. At the server's time (Take) every unit is counted at
// Redis's TIME, so the replicas' clocks may disagree by any offset. A
// lease is timed on the process's monotonic clock, from before its round
// trip, and ends 1/512 of its life sooner than on the server's clock; a
// Take reads the clock once it has the key (one that waited for the key
// decides at the time it decides). So the fleet never admits more than
// the Limit while each replica's clock runs within 1/512 of the rate of
// Redis's (NTP keeps a clock's rate within 500 ppm of true time, two
// clocks within 1000 ppm). Past that assumption the over-admission is
// bounded: a replica whose clock runs slower than Redis's by ρ > 1/512
// may spend a lease up to (ρ-1/512)/(1-ρ) of its life after the lease's
// window (or bucket reservation) has ended on the server, so at most that
// lease's unspent units (at most MaxLease) per replica and key are
// admitted beyond the Limit in the next window, within that time of its
// start. A step of Redis's clock forward by s is the same: leases live at
// that instant may be spent up to s into the next window. At injected
// times (TakeAt) a Local times its leases on the injected clock, which
// the replicas must share, as with Limiter.TakeAt (a skew of d between
// replicas shifts their windows by d, with or without leases); a time
// before the replica's live lease was taken (stale) is decided in Redis,
// never from the lease, so a stale time never admits more.
//
// Refunds. Local.RefundAt puts units back into the lease only if the
// Take's time is within the lease's life (it was spent from it), else
// gives them to Redis at that time, as Limiter.RefundAt does; Local.Refund
// does not know the Take's time and, as Limiter.Refund, gives them to the
// lease of now. A lease's unspent units go back only into the window they
// were counted in (a refund never reaches a window opened since), and a
// bucket's only if no other Take has touched the bucket since the lease.
//
// A Local decides under the Config of the Limiter it was made from. A new
// policy (a Limiter with a new Limit or Window) needs a new Local; Close
// the old one, or its live leases, taken under the old Limit, are spent
// (or, unspent, stay counted) until they end, at most LeaseLife.
//
// Deny cache (LocalConfig.DenyCache). After Redis refuses n units for a
// key with RetryAfter r, Takes of n or more for that key are refused in the
// process, without a round trip, until r has passed (timed from before the
// round trip, so never past the server's r); smaller Takes still ask
// Redis. A refusal with RetryAfter r means the same request cannot be
// admitted before r unless units come back, so the cache is conservative:
// it can only under-admit, and only when a Refund (in another process: a
// Refund through the same Local clears the key's cached denial), a lease
// given back, or a Limiter with a larger Limit made capacity come back
// elsewhere before r. Its RetryAfter is what is left of Redis's; Remaining
// and ResetAfter are Redis's at the refusal.
//
// A Local keeps at most LocalConfig.MaxKeys keys; Sweep (by hand, or every
// LocalConfig.SweepInterval in the background until Close) forgets keys
// with no live lease or denial. Measured throughput and admission errors of
// each mode are in bench/RESULTS.md (redisstore/cmd/fleetbench).
//
// # Redis Cluster
//
// A Store works over a *redis.ClusterClient. Every call of one key goes to
// that key's slot; the keys of one TakeAll, Hold or PeekAll must share a
// slot (give them one hash tag), or the call fails with ErrCrossSlot and
// decides nothing. Leases work per key, as on one server. The function
// library is loaded on every master. The tests run every algorithm,
// TakeAll, Hold and leases on a real three-master cluster.
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
// distinct microsecond, the live ones and an archive of expired ones that
// stale times read, at most Limit units' worth and one entry more in all
// (more only while units taken under a higher Limit are live), running totals of
// both and the lost mark, so that a fresh call reads only the entries that have
// expired since the last write and, on a denial, the oldest that must: its
// memory grows with Limit, its work per call does not; a stale call also
// reads the archived entries of its Window, and a call under another
// Window than the key was last written under the entries between the two
// Windows' cuts (every entry, if the previous release's script wrote the
// key since), until a write records the new Window); the semaphore a
// sorted set of leases and their total, read in the same way. So while
// replicas under an old and a new Window of a sliding log alternate on a
// key, as during a rolling change of Window, every call reads the entries
// between the two cuts, and its work grows with Limit.
//
// # Memory
//
// Every write sets the key's TTL to how long its state differs from a
// fresh key's: until the bucket is full again, the window ends, the newest
// log entry or lease expires. An idle key is deleted by Redis, and a key
// that was never admitted is never written, so memory is bounded by the
// keys active within a window. A rolling window refunded back to empty,
// and a sliding counter's key, are kept until their TTL (see Refunds).
//
// # When Redis is unreachable
//
// Limiter.For adapts one key to a ratekit.Limiter, usable with
// ratekit.TakeAll, AllOf, Wait and the HTTP middleware (Local.For does
// the same through a Local's leases and deny cache); Semaphore.For
// adapts one to a ratekit.Holder, which keeps its leases in the process. Its interface has
// no error, so its AdapterConfig says what a failed call decides:
// FailOpen admits (as a fresh key would), FailClosed denies with a
// RetryAfter, FailFallback asks a local embedded limiter. Each call waits
// at most Timeout; OnError sees every failure; Cooldown skips Redis for a
// while after one, so an outage does not cost every request a timeout.
package redisstore
