package redisstore

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
)

//go:embed ratekit.lua
var scriptSource string

// code is one version of the script, in both forms a Store runs it in.
type code struct {
	// script is every algorithm and operation in one Lua script, run by
	// EVALSHA (one round trip) with a fallback to EVAL when the server
	// does not have it cached, as after a restart. It is used where Redis
	// functions are not (Options.EvalOnly, or a server before Redis 7).
	script *redis.Script
	// The same source as a Redis 7 function library, loaded once per
	// server: the script's function definitions then run at load, not on
	// every call, which halves the server's work per decision. The names
	// carry the source's hash, so that processes running different
	// versions of this package side by side (a rolling deploy) each call
	// their own.
	funcName, library string
}

func newCode(src string) *code {
	hash := fmt.Sprintf("%x", sha1.Sum([]byte(src)))[:16]
	name := "ratekit_" + hash
	return &code{
		script:   redis.NewScript(src + "\nreturn run(KEYS, ARGV)\n"),
		funcName: name,
		library: "#!lua name=" + name + "\n" + src +
			"\nredis.register_function('" + name + "', function(keys, args) return run(keys, args) end)\n",
	}
}

// current is this version's script, the one every Store runs (tests of a
// rolling deploy give a Store an older one).
var current = newCode(scriptSource)

// DefaultPrefix is the key prefix of a Store whose Options set none.
const DefaultPrefix = "ratekit:"

// Options configures a Store. The zero Options is usable.
type Options struct {
	// Prefix starts every key the Store writes ("" is DefaultPrefix). It
	// must not contain '{' or '}', which would make it a Redis Cluster hash
	// tag: the hash tag belongs to the caller's keys (see the package doc).
	Prefix string
	// TTLSlack is added to the TTL of every key, which is otherwise exactly
	// how long its state differs from a fresh key's. It matters only with
	// injected times (TakeAt and friends), whose TTLs are still counted on
	// the server's clock: set it to the most the injected clocks may lag
	// the server's. Zero is right for server time; negative is invalid.
	TTLSlack time.Duration
	// EvalOnly runs the script with EVALSHA instead of as a Redis function
	// (FUNCTION LOAD once, then FCALL). Functions do less work per call;
	// a Store falls back to EVALSHA by itself when the server has no
	// functions (Redis before 7), so this is for servers that forbid
	// FUNCTION LOAD by ACL, and for tests of the fallback.
	EvalOnly bool
}

// Store runs ratekit's limiters in Redis, so that every replica of a
// service shares one state per key. It holds a Redis client and a key
// prefix and nothing else: build limiters from it with Limiter and
// Semaphore. A Store is safe for concurrent use; its zero value is not
// usable.
type Store struct {
	rdb    redis.UniversalClient
	code   *code // the script
	prefix string
	slack  int64 // µs
	// eval is set when the Store runs the script with EVALSHA.
	eval atomic.Bool
	// downUntil is when an Adapter's cooldown ends (see
	// AdapterConfig.Cooldown), on sinceStart's clock.
	downUntil atomic.Int64
}

// New returns a Store over rdb (a *redis.Client, *redis.ClusterClient or
// *redis.Ring), or an error wrapping ratekit.ErrInvalidConfig if rdb is nil
// or opts.Prefix holds a brace.
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, invalid("nil Redis client")
	}
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if strings.ContainsAny(p, "{}") {
		return nil, invalid("Prefix %q holds a brace; hash tags belong in keys", p)
	}
	if opts.TTLSlack < 0 || opts.TTLSlack > MaxWindow {
		return nil, invalid("TTLSlack %v is outside [0, %v]", opts.TTLSlack, MaxWindow)
	}
	s := &Store{rdb: rdb, code: current, prefix: p, slack: opts.TTLSlack.Microseconds()}
	s.eval.Store(opts.EvalOnly)
	return s, nil
}

// maxMicros is the largest time, in Unix microseconds, passed to the
// script: 2^52 µs is the year 2112, and keeps every sum the script forms
// exact in a Lua double.
const maxMicros = 1 << 52

// micros converts an injected time to the script's clock: Unix
// microseconds, truncated, clamped to [0, maxMicros]. The clamp moves only
// absurd times (the zero time.Time, times before 1970, after 2112), which
// then decide as at the bound: a Take before 1970 after one at 1970 is not
// stale. The clamp never moves two times further apart, so no interval of
// true time sees more admitted than the Config allows.
func micros(t time.Time) string {
	us := t.UnixMicro()
	us = min(max(us, 0), maxMicros)
	return strconv.FormatInt(us, 10)
}

// member is one limiter and key in a script call.
type member struct {
	key string // the full Redis key
	// the five script parameters: alg, limit, window, p3, p4
	alg              string
	limit, window, p int64
	p4               string
}

// result is one member's answer from the script.
type result struct {
	allowed                 bool
	remaining, reset, retry int64 // µs; retry -1 is Never
}

// run calls the script with op, n and now ("" for the server's TIME) on
// members, and returns one result per member and the time the script used.
func (s *Store) run(ctx context.Context, op string, n int, now string, ms []member) ([]result, int64, error) {
	keys := make([]string, len(ms))
	args := make([]any, 0, 4+5*len(ms))
	args = append(args, op, n, now, s.slack)
	for i, m := range ms {
		keys[i] = m.key
		args = append(args, m.alg, m.limit, m.window, m.p, m.p4)
	}
	v, err := s.call(ctx, keys, args)
	if err != nil {
		return nil, 0, wrap(err)
	}
	if len(v) != 4*len(ms)+1 {
		return nil, 0, fmt.Errorf("redisstore: script returned %d values for %d keys", len(v), len(ms))
	}
	rs := make([]result, len(ms))
	for i := range rs {
		r := v[4*i:]
		rs[i] = result{allowed: r[0] == 1, remaining: r[1], reset: r[2], retry: r[3]}
	}
	return rs, v[len(v)-1], nil
}

// call runs the script once: FCALL of the library's function, loading the
// library first if the server does not have it (a new server, or one that
// restarted), or EVALSHA if the server has no functions.
func (s *Store) call(ctx context.Context, keys []string, args []any) ([]int64, error) {
	if s.eval.Load() {
		return s.code.script.Run(ctx, s.rdb, keys, args...).Int64Slice()
	}
	v, err := s.rdb.FCall(ctx, s.code.funcName, keys, args...).Int64Slice()
	if err == nil || !isRedisError(err) {
		return v, err
	}
	switch msg := err.Error(); {
	case strings.Contains(msg, "unknown command"):
		// Redis before 7: no functions. Use scripts from now on.
		s.eval.Store(true)
		return s.code.script.Run(ctx, s.rdb, keys, args...).Int64Slice()
	case !strings.Contains(msg, "Function not found"):
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s.rdb.FCall(ctx, s.code.funcName, keys, args...).Int64Slice()
}

// load loads the library: on every shard of a cluster, since a function
// lives on the node that loaded it. "already exists" is another process
// having loaded the same version first.
func (s *Store) load(ctx context.Context) error {
	one := func(ctx context.Context, c *redis.Client) error {
		err := c.FunctionLoad(ctx, s.code.library).Err()
		if err != nil && strings.Contains(err.Error(), "already exists") {
			return nil
		}
		return err
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachShard(ctx, one)
	case *redis.Client:
		return one(ctx, c)
	}
	err := s.rdb.FunctionLoad(ctx, s.code.library).Err()
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return err
}

// ErrCrossSlot is the error, matched with errors.Is, of a TakeAll, Hold
// or PeekAll on Redis Cluster whose members' keys hash to different slots
// (Redis's CROSSSLOT): nothing was decided or taken. Give the keys of one
// call one hash tag, as "{org42}" and "{org42}:tok7".
var ErrCrossSlot = errors.New("redisstore: the members' keys hash to different Redis Cluster slots; give the keys of one call one hash tag, as {org42} and {org42}:tok7")

// wrap returns err from Redis as this package's error.
func wrap(err error) error {
	if isRedisError(err) && strings.HasPrefix(err.Error(), "CROSSSLOT") {
		return fmt.Errorf("%w (%v)", ErrCrossSlot, err)
	}
	return fmt.Errorf("redisstore: %w", err)
}

// isRedisError reports whether err is an error reply from the server, as
// opposed to a network error or a timeout.
func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// dur converts µs to a Duration, capped below Never, which is reserved for
// requests that can never be admitted.
func dur(us int64) time.Duration {
	if us >= (math.MaxInt64-1)/int64(time.Microsecond) {
		return ratekit.Never - 1
	}
	return time.Duration(us) * time.Microsecond
}

// Member names one limiter, or one Semaphore, and one key for TakeAll,
// Hold and PeekAll. Build it with Limiter.On or Semaphore.On.
type Member struct {
	l   *Limiter
	sem *Semaphore
	key string
}

// TakeAll takes n units for every member, all or none, in one script: one
// round trip, atomic on the server, so no interleaving of replicas
// over-admits and a request one member denies counts against none. The
// Decision describes the binding member as ratekit.TakeAll's does: when
// allowed, the one with the least Remaining (ties: the longest
// ResetAfter); when denied, the one with the longest RetryAfter. Time is
// the server's (TIME).
//
// Members may belong to several limiters and keys; on Redis Cluster all
// their keys must hash to one slot (put the same hash tag in each key, see
// the package doc), or Redis answers with a CROSSSLOT error. A key named
// twice is taken from twice. With no members TakeAll admits n >= 0 and
// denies n < 0 with RetryAfter Never, without a round trip. Members that
// are Semaphores need Hold, which returns their leases.
func (s *Store) TakeAll(ctx context.Context, n int, members ...Member) (ratekit.Decision, error) {
	d, _, err := s.all(ctx, "t", n, "", members, false)
	return d, err
}

// Hold is TakeAll for members that may include Semaphores (a per-IP rate
// and a per-dataset concurrency limit on one request): when allowed, it
// also returns one Lease per Semaphore member, in the members' order, to
// Release when the work is done. Rate members keep what was taken.
func (s *Store) Hold(ctx context.Context, n int, members ...Member) (ratekit.Decision, []Lease, error) {
	return s.all(ctx, "t", n, "", members, true)
}

// HoldAt is Hold at an injected time (see Limiter.TakeAt).
func (s *Store) HoldAt(ctx context.Context, now time.Time, n int, members ...Member) (ratekit.Decision, []Lease, error) {
	return s.all(ctx, "t", n, micros(now), members, true)
}

// PeekAll reports what TakeAll (or Hold) would decide, taking nothing.
func (s *Store) PeekAll(ctx context.Context, n int, members ...Member) (ratekit.Decision, error) {
	d, _, err := s.all(ctx, "p", n, "", members, true)
	return d, err
}

// TakeAllAt is TakeAll at an injected time instead of the server's (see
// Limiter.TakeAt).
func (s *Store) TakeAllAt(ctx context.Context, now time.Time, n int, members ...Member) (ratekit.Decision, error) {
	d, _, err := s.all(ctx, "t", n, micros(now), members, false)
	return d, err
}

// PeekAllAt is PeekAll at an injected time (see Limiter.TakeAt).
func (s *Store) PeekAllAt(ctx context.Context, now time.Time, n int, members ...Member) (ratekit.Decision, error) {
	d, _, err := s.all(ctx, "p", n, micros(now), members, true)
	return d, err
}

// RefundAll gives n units back to every member, at the server's time (see
// Limiter.Refund). It is the inverse of an allowed TakeAll. Semaphore
// members are released with Semaphore.Release and their Lease instead.
func (s *Store) RefundAll(ctx context.Context, n int, members ...Member) error {
	_, _, err := s.all(ctx, "r", n, "", members, false)
	return err
}

func (s *Store) all(ctx context.Context, op string, n int, now string, members []Member, sems bool) (ratekit.Decision, []Lease, error) {
	if len(members) == 0 {
		if n < 0 {
			return ratekit.Decision{RetryAfter: ratekit.Never}, nil, nil
		}
		return ratekit.Decision{Allowed: true}, nil, nil
	}
	ms := make([]member, len(members))
	var ids []string // per member: the lease ID of a Semaphore member
	for i, m := range members {
		switch {
		case m.l != nil && m.l.store == s:
			ms[i] = m.l.member(m.key)
		case m.sem != nil && m.sem.store == s && !sems:
			return ratekit.Decision{}, nil, invalid("member %d is a Semaphore: use Hold, which returns its lease", i)
		case m.sem != nil && m.sem.store == s:
			if ids == nil {
				ids = make([]string, len(members))
			}
			ids[i] = newID()
			ms[i] = m.sem.member(m.key, ids[i]+":"+strconv.Itoa(max(n, 0)))
		case m.l == nil && m.sem == nil:
			return ratekit.Decision{}, nil, invalid("member %d has no limiter (build members with Limiter.On or Semaphore.On)", i)
		default:
			return ratekit.Decision{}, nil, invalid("member %d belongs to another Store", i)
		}
	}
	rs, _, err := s.run(ctx, op, n, now, ms)
	if err != nil {
		return ratekit.Decision{}, nil, err
	}
	var bind ratekit.Decision
	for i, r := range rs {
		var d ratekit.Decision
		if m := members[i]; m.l != nil {
			d = m.l.decision(r)
		} else {
			d = m.sem.decision(r)
		}
		switch {
		case i == 0:
			bind = d
		case bind.Allowed && !d.Allowed:
			bind = d
		case !bind.Allowed && !d.Allowed:
			if d.RetryAfter > bind.RetryAfter {
				bind = d
			}
		case bind.Allowed && d.Allowed:
			if d.Remaining < bind.Remaining || d.Remaining == bind.Remaining && d.ResetAfter > bind.ResetAfter {
				bind = d
			}
		}
	}
	var leases []Lease
	if op == "t" && bind.Allowed && n > 0 {
		for i, id := range ids {
			if id != "" {
				leases = append(leases, Lease{Key: members[i].key, ID: id, N: n})
			}
		}
	}
	return bind, leases, nil
}
