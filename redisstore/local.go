package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// Defaults of a LocalConfig.
const (
	// DefaultLeaseLife is the longest a lease lives when LocalConfig sets
	// no LeaseLife.
	DefaultLeaseLife = 100 * time.Millisecond
	// DefaultMaxKeys is how many keys a Local tracks when LocalConfig sets
	// no MaxKeys.
	DefaultMaxKeys = 1 << 16
)

// LocalConfig configures a Local. The zero LocalConfig decides every call
// in Redis, as the Limiter does: set Lease, DenyCache or both.
type LocalConfig struct {
	// Lease turns on quota leases: a Take that goes to Redis may take more
	// units than asked for, up to how many the key has used per LeaseLife
	// lately, and later Takes spend them in the process without a round
	// trip (see the package doc, "Quota leases").
	Lease bool
	// LeaseLife is the longest a lease lives: 0 is DefaultLeaseLife;
	// negative, or above MaxWindow, is invalid. A window algorithm's lease
	// also ends when its window does. It bounds how long a lease's unspent
	// units are out of the other replicas' reach, and sizes leases: a key
	// leases about the units it used in the last LeaseLife.
	LeaseLife time.Duration
	// MaxLease caps a lease's units: 0 is an eighth of the Limiter's
	// capacity (Limit, or Burst for a TokenBucket), at least 1. A lease
	// also takes at most half of what the key has free.
	MaxLease int
	// DenyCache turns on the deny cache: after Redis refuses n units for a
	// key with RetryAfter r, Takes of n or more for that key are refused in
	// the process, without a round trip, until r has passed (see the
	// package doc, "Deny cache").
	DenyCache bool
	// MaxKeys bounds the keys whose leases and denials the Local keeps: 0
	// is DefaultMaxKeys; negative is invalid. Past it, new keys are decided
	// in Redis, call by call, until Sweep drops keys that went idle.
	MaxKeys int

	// SweepInterval, if positive, starts a goroutine that sweeps the Local
	// (Sweep, or SweepAt when Clock is set) every SweepInterval until
	// Close, so that ended leases give their unspent units back and idle
	// keys are forgotten without the caller's ticker. Values below
	// LeaseLife are raised to it (a lease lives that long: sweeping more
	// often finds nothing more to give back). 0: no background sweeping;
	// call Sweep yourself. Negative is invalid.
	SweepInterval time.Duration
	// Clock ticks the background sweeper. nil: the real clock, and the
	// sweeper sweeps at the server's time, as Sweep does. Set (a
	// *clock.Mock in tests): the sweeper sweeps at the Clock's time, as
	// SweepAt does, for a Local used with TakeAt at that Clock's times.
	Clock clock.Clock
	// OnSweep, if set, is called by the background sweeper after each
	// sweep with the keys it forgot and its error (the first of its round
	// trips that failed; a lease whose units could not be given back is
	// forfeit, as in Sweep). It is called from the sweeper's goroutine,
	// one call at a time.
	OnSweep func(dropped int, err error)
}

// Local is a Limiter with state in the process of one replica: quota
// leases, which let a hot key's decisions be made without a round trip,
// and a deny cache, which lets a refused key's be. Both keep the fleet
// exact in the direction that matters: neither ever admits more than the
// Limiter would (see the package doc for what each mode promises).
//
// Build it with Limiter.Local. It is safe for concurrent use; calls for one
// key wait for each other while one of them is in Redis, so a hot key
// makes one round trip at a time per process. Its zero value is not
// usable. Close it at shutdown, to give back unspent units at once.
//
// A Local decides either at the server's time (Take, Peek) or at injected
// times (TakeAt, PeekAt, for tests and single-clock deployments); do not
// mix the two on one Local, whose leases and denials are timed on one
// clock.
type Local struct {
	l     *Limiter
	cfg   LocalConfig
	life  int64 // ns
	max   int
	keys  sync.Map // string -> *localKey
	nkeys atomic.Int64
	// clock, if set (by tests), replaces the server's time and the
	// process's clock: it returns the injected server time (µs, as
	// micros) and the process's time (ns) of one instant.
	clock func() (string, int64)
	// sweeper is the background sweeper's, nil without one.
	sweeper *sweeperControl
}

// when is the time of a call: injected (TakeAt, PeekAt), or the server's
// and the process's clock, read by stamp.
type when struct {
	now      string
	t        int64
	injected bool
}

func whenAt(now time.Time) when { return when{micros(now), now.UnixMicro() * 1000, true} }

// stamp returns the server time to pass to the script ("" for TIME) and
// the process's time, in ns, for w.
func (q *Local) stamp(w when) (string, int64) {
	switch {
	case w.injected:
		return w.now, w.t
	case q.clock != nil:
		return q.clock()
	}
	return "", sinceStart()
}

// localKey is a key's state in the process.
type localKey struct {
	mu sync.Mutex
	// The lease: left units to spend until `until` (local ns), of granted
	// taken at server time at (µs), tok is the bucket's word after it.
	left, granted int
	until         int64
	at            int64
	tok           string
	// dead is set when Sweep has dropped the key: a caller that was
	// waiting for it looks the key up again.
	dead bool
	// What the lease's Decision said, at local time `since` (the lease's
	// start: it is spent at no time before it): Remaining (not counting
	// left) and ResetAfter.
	remaining int
	reset     time.Duration
	since     int64
	// Rate: units admitted since the last round trip at local time last,
	// which took a lease of prev units.
	used, prev int
	last       int64
	// denied is set when the key's last lease round trip was refused: it
	// then decides in Redis, without leases, until a Take is admitted.
	denied bool
	// The deny cache: Takes of denyN or more are refused until denyUntil
	// (local ns), with the Decision deny, as of denySince.
	denyN                int
	denyUntil, denySince int64
	deny                 ratekit.Decision
}

// Local returns a Local over l, or an error wrapping
// ratekit.ErrInvalidConfig if cfg is invalid. It does not contact Redis.
func (l *Limiter) Local(cfg LocalConfig) (*Local, error) {
	switch {
	case cfg.LeaseLife < 0 || cfg.LeaseLife > MaxWindow:
		return nil, invalid("LeaseLife %v is outside [0, %v]", cfg.LeaseLife, MaxWindow)
	case cfg.LeaseLife%time.Microsecond != 0:
		return nil, invalid("LeaseLife %v is not a whole number of microseconds", cfg.LeaseLife)
	case cfg.MaxLease < 0:
		return nil, invalid("MaxLease %d is negative", cfg.MaxLease)
	case cfg.MaxKeys < 0:
		return nil, invalid("MaxKeys %d is negative", cfg.MaxKeys)
	case cfg.SweepInterval < 0:
		return nil, invalid("SweepInterval %v is negative", cfg.SweepInterval)
	}
	if cfg.LeaseLife == 0 {
		cfg.LeaseLife = DefaultLeaseLife
	}
	if cfg.MaxLease == 0 {
		cfg.MaxLease = max(l.capacity/8, 1)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	q := &Local{l: l, cfg: cfg, life: int64(cfg.LeaseLife), max: cfg.MaxLease}
	if cfg.SweepInterval > 0 {
		q.startSweeper(max(cfg.SweepInterval, cfg.LeaseLife))
	}
	return q, nil
}

// Limiter returns the Limiter the Local decides for.
func (q *Local) Limiter() *Limiter { return q.l }

// Take admits n units for key and takes them, or takes nothing and denies,
// as Limiter.Take, but from a live lease or the deny cache when it can,
// without a round trip. A Decision made in the process reports the
// lease's view: Remaining is what Redis had left at the lease plus the
// lease's unspent units, ResetAfter is Redis's at the lease less the time
// since; a cached denial's RetryAfter is what is left of Redis's.
func (q *Local) Take(ctx context.Context, key string, n int) (ratekit.Decision, error) {
	return q.take(ctx, key, n, when{})
}

// TakeAt is Take at an injected time (see Limiter.TakeAt): Redis decides
// at now, and the Local times its leases and denials on now's clock.
func (q *Local) TakeAt(ctx context.Context, key string, now time.Time, n int) (ratekit.Decision, error) {
	return q.take(ctx, key, n, whenAt(now))
}

// Peek reports what Take(ctx, key, n) would decide, taking nothing: from
// the lease or the deny cache when they decide, else Redis's Peek, whose
// Remaining then counts the lease's unspent units too.
func (q *Local) Peek(ctx context.Context, key string, n int) (ratekit.Decision, error) {
	return q.peek(ctx, key, n, when{})
}

// PeekAt is Peek at an injected time (see TakeAt).
func (q *Local) PeekAt(ctx context.Context, key string, now time.Time, n int) (ratekit.Decision, error) {
	return q.peek(ctx, key, n, whenAt(now))
}

// Refund gives back n units that an allowed Take took for key: into the
// key's last lease, whose units Redis has already counted (and gets back
// when the lease ends), up to the units spent from it; else to Redis, as
// Limiter.Refund. Like Limiter.Refund, it does not know when the Take
// was: the units go to the lease of now. It clears the key's cached
// denial.
func (q *Local) Refund(ctx context.Context, key string, n int) error {
	return q.refund(ctx, key, n, when{})
}

// RefundAt is Refund for a Take at `at` (see Limiter.RefundAt): the units
// go back into the key's last lease only if `at` is within that lease's
// life (the Take spent from it); else to Redis at that time, which gives
// them back to the window (or bucket) the Take counted in, if any.
func (q *Local) RefundAt(ctx context.Context, key string, at time.Time, n int) error {
	return q.refund(ctx, key, n, whenAt(at))
}

func (q *Local) refund(ctx context.Context, key string, n int, w when) error {
	if n <= 0 {
		return nil
	}
	if v, ok := q.keys.Load(key); ok {
		k := v.(*localKey)
		k.mu.Lock()
		k.denyUntil = 0
		// Into the lease, live or ended: an ended lease's unspent units go
		// back to Redis at its next round trip or Sweep, at its own time.
		// A Take at a known time outside the lease's life was not spent
		// from it: its units count in another window, not the lease's.
		if !k.dead && k.granted > 0 && k.left+n <= k.granted &&
			(!w.injected || k.since <= w.t && w.t < k.until) {
			k.left += n
			k.mu.Unlock()
			return nil
		}
		k.mu.Unlock()
	}
	_, err := q.l.one(ctx, "r", key, n, w.now)
	return err
}

func (q *Local) get(key string) *localKey {
	if v, ok := q.keys.Load(key); ok {
		return v.(*localKey)
	}
	if q.nkeys.Load() >= int64(q.cfg.MaxKeys) {
		return nil
	}
	v, loaded := q.keys.LoadOrStore(key, &localKey{})
	if !loaded {
		q.nkeys.Add(1)
	}
	return v.(*localKey)
}

func (q *Local) take(ctx context.Context, key string, n int, w when) (ratekit.Decision, error) {
	if n <= 0 || n > q.l.capacity || !q.cfg.Lease && !q.cfg.DenyCache {
		now, _ := q.stamp(w)
		return q.l.one(ctx, "t", key, n, now)
	}
	var k *localKey
	for {
		if k = q.get(key); k == nil {
			now, _ := q.stamp(w)
			return q.l.one(ctx, "t", key, n, now)
		}
		k.mu.Lock()
		if !k.dead {
			break
		}
		k.mu.Unlock()
	}
	// The clock is read once the key is this call's: a Take that waited
	// for it (another call of the key was in Redis) decides at the time it
	// decides, not at the time it was called, when the lease it would
	// spend may have ended with its window.
	now, t := q.stamp(w)
	if d, ok := q.local(k, n, t); ok {
		if d.Allowed {
			k.left -= n
			k.used += n
			d.Remaining -= n
		}
		k.mu.Unlock()
		return d, nil
	}
	if k.granted > 0 && t < k.since {
		// A stale time (injected, before the lease): not the lease's to
		// decide, whose units count from its start on. Redis decides it,
		// as Limiter.TakeAt would, and the lease stays.
		k.mu.Unlock()
		return q.l.one(ctx, "t", key, n, now)
	}
	if q.cfg.Lease && !k.denied {
		// One lease at a time per key: the others wait for it.
		defer k.mu.Unlock()
		return q.renew(ctx, k, key, n, now, t, w.injected)
	}
	// The deny cache alone, or a leased key at its limit (its last round
	// trip was refused: there is nothing to lease): round trips for one
	// key run side by side, each deciding only its own request.
	k.mu.Unlock()
	d, err := q.l.one(ctx, "t", key, n, now)
	if err == nil && (d.Allowed || d.RetryAfter != ratekit.Never) {
		k.mu.Lock()
		if d.Allowed {
			k.denied = false
		} else if until := t + int64(d.RetryAfter); q.cfg.DenyCache && (until > k.denyUntil || n < k.denyN) {
			k.denyN, k.denyUntil, k.deny, k.denySince = n, until, d, t
		}
		k.mu.Unlock()
	}
	return d, err
}

// local is the decision the process can make for n at t from k, if any.
func (q *Local) local(k *localKey, n int, t int64) (ratekit.Decision, bool) {
	if q.cfg.DenyCache && n >= k.denyN && t < k.denyUntil {
		d := k.deny
		d.RetryAfter = time.Duration(k.denyUntil - t)
		d.ResetAfter = max(d.ResetAfter-time.Duration(t-k.denySince), 0)
		return d, true
	}
	if k.left >= n && k.since <= t && t < k.until {
		return ratekit.Decision{Allowed: true, Limit: q.l.capacity, Window: q.l.dwindow, Policy: q.l.cfg.Name,
			Remaining: k.remaining + k.left, ResetAfter: max(k.reset-time.Duration(t-k.since), 0)}, true
	}
	return ratekit.Decision{}, false
}

// want is the lease size for a round trip at t that must admit n: the units
// the key used in the last LeaseLife, extrapolated from those since its
// last round trip, at most doubling the last lease, within [n, MaxLease].
func (q *Local) want(k *localKey, n int, t int64) int {
	if !q.cfg.Lease || k.last == 0 {
		return n
	}
	// A heuristic, so floats: used·life would overflow int64 for long lives.
	dt := float64(max(t-k.last, 1))
	w := math.Ceil(float64(k.used+n) * float64(q.life) / dt)
	w = min(w, float64(2*k.prev+n), float64(q.max))
	return max(int(w), n)
}

// renew makes the round trip: gives back the lease's unspent units, decides
// n and takes the next lease.
func (q *Local) renew(ctx context.Context, k *localKey, key string, n int, now string, t int64, injected bool) (ratekit.Decision, error) {
	want := q.want(k, n, t)
	r, err := q.lease(ctx, key, n, want, now, k)
	// The lease is over either way: if the call failed, whether Redis took
	// its units back is unknown, and they are forfeit (under-admission).
	k.left, k.granted = 0, 0
	if err != nil {
		return ratekit.Decision{}, err
	}
	k.used, k.last, k.since, k.prev = n, t, t, max(r.k, n)
	d := q.l.decision(r.result)
	k.denied = !d.Allowed
	if !d.Allowed {
		if q.cfg.DenyCache && d.RetryAfter != ratekit.Never {
			k.denyN, k.denyUntil, k.deny, k.denySince = n, t+int64(d.RetryAfter), d, t
		}
		return d, nil
	}
	k.denyUntil = 0
	if r.k > n {
		k.left, k.granted = r.k-n, r.k
		k.until = t + r.life*int64(time.Microsecond)
		if !injected {
			k.until -= localMargin(r.life)
		}
		k.at, k.tok = r.now, r.tok
		k.remaining, k.reset = d.Remaining, d.ResetAfter
		d.Remaining += k.left
	}
	return d, nil
}

// localMargin is how much sooner than the server's end, on the process's
// clock, a lease granted for life µs at the server's time ends: the
// process times it from before the round trip (so never past the server's
// end at equal clock rates), less life/512 for clock rates that differ
// (NTP keeps each clock's rate within 500 ppm of true time, so two clocks
// within 1000 ppm of each other, under 1/512). Injected times are one
// clock, and take no margin. See the package doc, "Modes".
func localMargin(life int64) int64 {
	return life * int64(time.Microsecond) / 512
}

type leaseResult struct {
	result
	k    int
	life int64 // µs
	now  int64
	tok  string
}

// lease runs the script's 'l' op for key: the refund of k's unspent units,
// then (n > 0) a lease of up to want.
func (q *Local) lease(ctx context.Context, key string, n, want int, now string, k *localKey) (leaseResult, error) {
	m := q.l.member(key)
	rn, rat, tok := 0, int64(0), ""
	if k != nil && k.left > 0 {
		rn, rat, tok = k.left, k.at, k.tok
	}
	v, err := q.l.store.call(ctx, []string{m.key}, []any{"l", n, now, q.l.store.slack,
		m.alg, m.limit, m.window, m.p, m.p4, want, q.life / int64(time.Microsecond), rn, rat, tok})
	if err != nil {
		return leaseResult{}, wrap(err)
	}
	if len(v) != 9 {
		return leaseResult{}, fmt.Errorf("redisstore: lease returned %d values", len(v))
	}
	return leaseResult{
		result: result{allowed: v[0] == 1, remaining: v[1], reset: v[2], retry: v[3]},
		k:      int(v[4]), life: v[5], now: v[8],
		tok: strconv.FormatInt(v[6], 10) + " " + strconv.FormatInt(v[7], 10),
	}, nil
}

func (q *Local) peek(ctx context.Context, key string, n int, w when) (ratekit.Decision, error) {
	v, ok := q.keys.Load(key)
	if !ok || n < 0 || n > q.l.capacity {
		now, _ := q.stamp(w)
		return q.l.one(ctx, "p", key, n, now)
	}
	k := v.(*localKey)
	k.mu.Lock()
	defer k.mu.Unlock()
	now, t := q.stamp(w)
	if d, ok := q.local(k, n, t); ok {
		if d.Allowed {
			d.Remaining -= n
		}
		return d, nil
	}
	d, err := q.l.one(ctx, "p", key, n, now)
	if err == nil && t < k.until {
		d.Remaining += k.left
	}
	return d, err
}

// Sweep gives back the unspent units of every lease that has ended, at
// the server's time, and forgets the keys that hold neither a live lease
// nor a live denial. It returns how many keys it forgot. Call it every few
// LeaseLifes, or let LocalConfig.SweepInterval do so: a lease's unspent
// units otherwise wait for the key's next Take to go back. Keys busy in
// another call are skipped.
func (q *Local) Sweep(ctx context.Context) (int, error) {
	now, t := q.stamp(when{})
	return q.sweep(ctx, t, now, false, nil)
}

// SweepAt is Sweep at an injected time, for a Local used with TakeAt.
func (q *Local) SweepAt(ctx context.Context, now time.Time) (int, error) {
	return q.sweep(ctx, now.UnixMicro()*1000, micros(now), false, nil)
}

// Close stops the background sweeper, if any (waiting, until ctx ends,
// for a sweep in progress to stop: it stops between keys), then gives back
// the unspent units of every lease, live or not, and forgets every key;
// call it once the Local's last Take has returned (keys busy in a call are
// skipped). The Local stays usable, without background sweeping.
func (q *Local) Close(ctx context.Context) error {
	if err := q.stopSweeper(ctx); err != nil {
		return err
	}
	_, err := q.sweep(ctx, 0, "", true, nil)
	return err
}

// CloseAt is Close at an injected time, for a Local used with TakeAt: the
// refunds' writes (their TTLs) are timed at now.
func (q *Local) CloseAt(ctx context.Context, now time.Time) error {
	if err := q.stopSweeper(ctx); err != nil {
		return err
	}
	_, err := q.sweep(ctx, 0, micros(now), true, nil)
	return err
}

// sweep is Sweep (all false) or Close (all true); with stop non-nil (the
// background sweeper) it returns early, between keys, once stop is closed.
func (q *Local) sweep(ctx context.Context, t int64, now string, all bool, stop <-chan struct{}) (int, error) {
	var dropped int
	var first error
	q.keys.Range(func(key, v any) bool {
		select {
		case <-stop: // a nil stop never is
			return false
		default:
		}
		k := v.(*localKey)
		if !k.mu.TryLock() {
			return true
		}
		defer k.mu.Unlock()
		if !all && (t < k.until && k.left > 0 || t < k.denyUntil) {
			return true
		}
		if k.left > 0 {
			_, err := q.lease(ctx, key.(string), 0, 0, now, k)
			k.left, k.granted = 0, 0
			if err != nil && first == nil {
				first = err
			}
		}
		k.dead = true
		q.keys.Delete(key)
		q.nkeys.Add(-1)
		dropped++
		return true
	})
	return dropped, first
}
