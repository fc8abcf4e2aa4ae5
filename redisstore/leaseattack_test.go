package redisstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
	"github.com/ratekit/ratekit/rolling"
)

// Attacks on quota leases: each test runs replicas (Locals, and plain
// Limiters as replicas without leases) on one redis-server at explicit
// times, and replays what the fleet admitted through the reference model
// (conforms): a failure is an admission the algorithm would have refused.

// smallLease is a lease config that grows leases within a few Takes
// (1, 3, then MaxLease 4).
var smallLease = redisstore.LocalConfig{Lease: true, LeaseLife: 100 * time.Millisecond, MaxLease: 4, DenyCache: true}

// hot makes q take one unit at each of 5 instants 1µs apart from at, all
// admitted: q then holds a lease of 4 units with 3 unspent.
func hot(t *testing.T, q *redisstore.Local, key string, at time.Time, adm *[]admission) time.Time {
	t.Helper()
	for i := range 5 {
		at = at.Add(time.Microsecond)
		d, err := q.TakeAt(context.Background(), key, at, 1)
		if err != nil || !d.Allowed {
			t.Fatalf("hot Take %d at %v = %v, %v", i, at.Sub(start), d, err)
		}
		*adm = append(*adm, admission{at, 1})
	}
	return at
}

// TestLeaseStaleTimeNeverOverAdmits: a TakeAt whose time is before the
// replica's live lease was taken (a stale time) must not be spent from
// that lease: the lease's units count in its own window (or, for a bucket,
// from its own time on), and the stale instant's window may be full.
// Limiter.TakeAt promises that a stale time never admits more.
func TestLeaseStaleTimeNeverOverAdmits(t *testing.T) {
	ctx := context.Background()
	w0 := start.Truncate(time.Second).Add(time.Second)
	for _, cfg := range []redisstore.Config{
		{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 10, Window: time.Second},
		{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 10, Window: time.Second},
		{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 10, Window: time.Second, Burst: 10},
	} {
		t.Run(cfg.Name, func(t *testing.T) {
			s, _ := newStore(t)
			l := mustLimiter(t, s, cfg)
			a := mustLocal(t, l, smallLease)
			var adm []admission
			// Another replica, without leases, fills w0's window (the
			// bucket) at w0+100ms.
			b := w0.Add(100 * time.Millisecond)
			for range cfg.Limit {
				if d, err := l.TakeAt(ctx, "k", b, 1); err != nil || !d.Allowed {
					t.Fatalf("filling: %v, %v", d, err)
				}
				adm = append(adm, admission{b, 1})
			}
			// a leases later: in the next window (sc: 900ms into it,
			// where the full window before weighs 1; tb: once the bucket
			// has refilled).
			later := w0.Add(time.Second)
			if cfg.Algorithm != redisstore.FixedWindow {
				later = w0.Add(1900 * time.Millisecond)
			}
			hot(t, a, "k", later, &adm)
			// A stale time, just after b's fill.
			stale := b.Add(time.Millisecond)
			d, err := a.TakeAt(ctx, "k", stale, 1)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				adm = append(adm, admission{stale, 1})
			}
			conforms(t, cfg, adm)
		})
	}
}

// TestLeasesConformWithStaleTimes is TestLeasesNeverOverAdmit with stale
// times: each Take is, one time in four, up to a Window behind the fleet's
// newest time, as a replica whose clock lags or a caller that passes an old
// time would. Rolling and SlidingCounter are left out (the latter has its
// stale case in TestLeaseStaleTimeNeverOverAdmits): Limiter.TakeAt counts
// a stale time into the open window (Rolling) or at the start of the
// newest window (SlidingCounter), which a replay at the times given does
// not, so the replay is not their reference even without leases.
func TestLeasesConformWithStaleTimes(t *testing.T) {
	sd := seed(t)
	for _, cfg := range leaseConfigs {
		if cfg.Algorithm != redisstore.FixedWindow && cfg.Algorithm != redisstore.TokenBucket {
			continue
		}
		t.Run(cfg.Name, func(t *testing.T) {
			s, _ := newStore(t)
			l := mustLimiter(t, s, cfg)
			rng := rand.New(rand.NewPCG(sd, uint64(cfg.Algorithm)+100))
			var replicas []*redisstore.Local
			for range 3 {
				replicas = append(replicas, mustLocal(t, l, redisstore.LocalConfig{
					Lease: true, LeaseLife: 100 * time.Millisecond, DenyCache: true, MaxLease: 10}))
			}
			var adm []admission
			now := start
			for range 3000 {
				now = now.Add(time.Duration(rng.Int64N(int64(40*time.Millisecond)) + 1)).Truncate(time.Microsecond)
				at := now
				if rng.IntN(4) == 0 {
					at = now.Add(-time.Duration(rng.Int64N(int64(cfg.Window)))).Truncate(time.Microsecond)
				}
				n := 1 + rng.IntN(3)
				d, err := replicas[rng.IntN(3)].TakeAt(context.Background(), "k", at, n)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					adm = append(adm, admission{at, n})
				}
			}
			conforms(t, cfg, adm)
		})
	}
}

// TestLeaseRefundAtOldTake: RefundAt for a Take of an earlier window (two
// windows back: its units count nowhere now) must not go into the live
// lease, whose units count in the present window: else the replica spends
// a unit more than Redis counted there. (A bucket is left out: a GCRA
// refund at any time before the bucket's tat moves the tat back, as
// Limiter.RefundAt does, so the lease's way is no more generous.)
func TestLeaseRefundAtOldTake(t *testing.T) {
	ctx := context.Background()
	w0 := start.Truncate(time.Second).Add(time.Second)
	for _, cfg := range []redisstore.Config{
		{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 10, Window: time.Second},
		{Algorithm: redisstore.Rolling, Name: "rw", Limit: 10, Window: time.Second},
		{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 10, Window: time.Second},
	} {
		t.Run(cfg.Name, func(t *testing.T) {
			s, _ := newStore(t)
			l := mustLimiter(t, s, cfg)
			a := mustLocal(t, l, smallLease)
			old := w0.Add(100 * time.Millisecond)
			if d, err := a.TakeAt(ctx, "k", old, 1); err != nil || !d.Allowed {
				t.Fatalf("old Take = %v, %v", d, err)
			}
			var adm []admission // without the old Take: it is refunded below
			now := hot(t, a, "k", w0.Add(2*time.Second+100*time.Millisecond), &adm)
			// Another replica takes all that Redis has left.
			now = now.Add(time.Microsecond)
			for range cfg.Limit {
				if d, _ := l.TakeAt(ctx, "k", now, 1); d.Allowed {
					adm = append(adm, admission{now, 1})
				}
			}
			if err := a.RefundAt(ctx, "k", old, 1); err != nil {
				t.Fatal(err)
			}
			for range cfg.Limit {
				now = now.Add(time.Microsecond)
				if d, _ := a.TakeAt(ctx, "k", now, 1); d.Allowed {
					adm = append(adm, admission{now, 1})
				}
			}
			conforms(t, cfg, adm)
		})
	}
}

// pause is a go-redis hook that, once armed, holds the next call's reply
// (after Redis has run it) until released: a round trip that takes as
// long as the test wants.
type pause struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{}
	release chan struct{}
}

func (p *pause) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *pause) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (p *pause) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		p.mu.Lock()
		armed := p.armed
		p.armed = false
		p.mu.Unlock()
		if armed {
			close(p.held)
			<-p.release
		}
		return err
	}
}

// fakeClock is one instant for the server and the process: the server
// time injected into the script, and the process's clock, ns.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() (string, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strconv.FormatInt(c.t.UnixMicro(), 10), c.t.UnixMicro() * 1000
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// waitingForKey reports whether a goroutine is blocked on a key's lock
// in Local.take.
func waitingForKey() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sync.(*Mutex).Lock") && strings.Contains(g, "redisstore.(*Local).take") {
			return true
		}
	}
	return false
}

// TestLeaseTimeReadUnderTheKeyLock: a Take that waits for its key's lock
// (another Take of the key is in Redis) while the lease's window ends must
// decide at the time it decides, not at the time it was called: a lease
// spent after its window ended spends units counted in the old window in
// the new one, where the fleet may already have admitted the Limit. At the
// server's time, on fake clocks (the server's and the process's agree).
func TestLeaseTimeReadUnderTheKeyLock(t *testing.T) {
	needRedis(t)
	ctx := context.Background()
	cfg := redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 100, Window: time.Second}
	p := &pause{held: make(chan struct{}), release: make(chan struct{})}
	c := redis.NewClient(&redis.Options{Addr: sharedAddr})
	c.AddHook(p)
	t.Cleanup(func() { c.Close() })
	l := mustLimiter(t, mustStore(t, c), cfg)
	a := mustLocal(t, l, redisstore.LocalConfig{Lease: true, LeaseLife: time.Second, MaxLease: 8})
	clk := &fakeClock{}
	redisstore.SetClock(a, clk.now)
	w0 := start.Truncate(time.Second).Add(time.Second)
	var adm []admission
	now := w0.Add(900 * time.Millisecond)
	for range 5 { // a hot start: leases of 1, 3, 7 units; 6 unspent
		now = now.Add(time.Microsecond)
		clk.set(now)
		if d, err := a.Take(ctx, "k", 1); err != nil || !d.Allowed {
			t.Fatalf("hot Take = %v, %v", d, err)
		}
		adm = append(adm, admission{now, 1})
	}
	// Take(7) does not fit the lease's 6: a round trip, holding the key,
	// which Redis decides at now (w0's window: it gives back the 6 and
	// leases 8) and whose reply waits.
	p.mu.Lock()
	p.armed = true
	p.mu.Unlock()
	var big error
	bigDone := make(chan struct{})
	go func() {
		defer close(bigDone)
		d, err := a.Take(ctx, "k", 7)
		if err == nil && d.Allowed {
			adm = append(adm, admission{now, 7})
		}
		big = err
	}()
	<-p.held
	// Meanwhile a Take(1) is called and waits for the key.
	var small struct {
		d   bool
		err error
	}
	smallDone := make(chan struct{})
	go func() {
		defer close(smallDone)
		d, err := a.Take(ctx, "k", 1)
		small.d, small.err = d.Allowed, err
	}()
	for !waitingForKey() {
		runtime.Gosched()
	}
	// The window ends; another replica takes all of the next one.
	next := w0.Add(time.Second + 100*time.Millisecond)
	clk.set(next)
	for range cfg.Limit {
		if d, _ := l.TakeAt(ctx, "k", next, 1); d.Allowed {
			adm = append(adm, admission{next, 1})
		}
	}
	close(p.release)
	<-bigDone
	<-smallDone
	if big != nil || small.err != nil {
		t.Fatal(big, small.err)
	}
	if small.d { // decided once it had the key: at next
		adm = append(adm, admission{next, 1})
	}
	conforms(t, cfg, adm)
}

// TestLeaseClockRateBound: at the server's time a lease is timed on the
// process's clock, from before its round trip, less LeaseLife/512. A
// process clock that runs slower than Redis's by ρ <= 1/512 never spends
// a lease past its window's end; one slower by more spends it at most
// (ρ-1/512)/(1-ρ) of the lease's life past the end, at most the lease's
// unspent units (the package doc, "Modes"). Fake clocks: the server's
// time S, and the process's (S-S0)·(1-ρ).
func TestLeaseClockRateBound(t *testing.T) {
	ctx := context.Background()
	cfg := redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 100, Window: time.Second}
	w0 := start.Truncate(time.Second).Add(time.Second)
	w1 := w0.Add(time.Second)
	for _, rho := range []float64{0, 1.0 / 1000, 1.0 / 513, 1.0 / 64} {
		t.Run(strconv.FormatFloat(rho, 'g', 4, 64), func(t *testing.T) {
			s, _ := newStore(t)
			l := mustLimiter(t, s, cfg)
			a := mustLocal(t, l, redisstore.LocalConfig{Lease: true, LeaseLife: time.Second, MaxLease: 8})
			var mu sync.Mutex
			srv := w0
			redisstore.SetClock(a, func() (string, int64) {
				mu.Lock()
				defer mu.Unlock()
				return strconv.FormatInt(srv.UnixMicro(), 10), int64(float64(srv.Sub(w0)) * (1 - rho))
			})
			take := func(at time.Time, n int) bool {
				mu.Lock()
				srv = at
				mu.Unlock()
				d, err := a.Take(ctx, "k", n)
				if err != nil {
					t.Fatal(err)
				}
				return d.Allowed
			}
			// A hot start 100ms before w0's end: a lease of 7, 6 unspent,
			// whose server end is the window's.
			now := w0.Add(900 * time.Millisecond)
			var adm []admission
			for range 5 {
				now = now.Add(time.Microsecond)
				if !take(now, 1) {
					t.Fatal("hot start denied")
				}
				adm = append(adm, admission{now, 1})
			}
			// Another replica takes all of the next window at its start.
			for range cfg.Limit {
				if d, _ := l.TakeAt(ctx, "k", w1, 1); d.Allowed {
					adm = append(adm, admission{w1, 1})
				}
			}
			// a goes on taking, every 10µs of server time, for 5ms.
			over, last := 0, time.Duration(0)
			for x := time.Duration(0); x < 5*time.Millisecond; x += 10 * time.Microsecond {
				if take(w1.Add(x), 1) {
					adm = append(adm, admission{w1.Add(x), 1})
					over, last = over+1, x
				}
			}
			if rho <= 1.0/512 {
				conforms(t, cfg, adm)
				return
			}
			// Past the assumption: over, but within the bound.
			life := 100 * time.Millisecond
			bound := time.Duration((rho - 1.0/512) / (1 - rho) * float64(life))
			if over == 0 || over > 6 || last >= bound {
				t.Fatalf("ρ=%g: %d over in the next window, the last %v after its start; want 1 to 6 (the lease's unspent units) within %v", rho, over, last, bound)
			}
		})
	}
}

// TestLocalForTakeAll: a leased Local's key as a ratekit.Limiter, first
// member of ratekit.TakeAll with an embedded limit that denies most
// calls: each denied TakeAll's unit goes back (into the lease, its Take's
// time being within it), so the window still admits exactly its Limit.
func TestLocalForTakeAll(t *testing.T) {
	s, _ := newStore(t)
	cfg := redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 10, Window: time.Second}
	l := mustLimiter(t, s, cfg)
	q := mustLocal(t, l, smallLease)
	a, err := q.For("k", redisstore.AdapterConfig{CallerTime: true, OnFailure: redisstore.FailClosed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.For("k", redisstore.AdapterConfig{OnFailure: redisstore.FailFallback}); !errors.Is(err, ratekit.ErrInvalidConfig) {
		t.Fatalf("For(FailFallback without a Fallback) = %v; want ErrInvalidConfig", err)
	}
	burst, err := rolling.New(rolling.Config{Name: "burst", Limit: 3, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := start.Truncate(time.Second).Add(time.Second)
	var adm []admission
	for range 40 {
		now = now.Add(time.Microsecond)
		d := ratekit.TakeAll(now, 1, a, burst)
		if d.Allowed {
			adm = append(adm, admission{now, 1})
		} else if d.Policy != "burst" {
			t.Fatalf("TakeAll = %v; want burst's denial", d)
		}
	}
	if len(adm) != 3 {
		t.Fatalf("TakeAll admitted %d; want burst's 3", len(adm))
	}
	for range 20 {
		now = now.Add(time.Microsecond)
		if d := a.Take(now, 1); d.Allowed {
			adm = append(adm, admission{now, 1})
		}
	}
	if len(adm) != cfg.Limit {
		t.Fatalf("the window admitted %d; want its Limit, %d: a denied TakeAll's units came back", len(adm), cfg.Limit)
	}
	conforms(t, cfg, adm)
	if d := a.Peek(now, 1); d.Allowed {
		t.Fatalf("Peek with the window full = %v", d)
	}
}

// TestLocalForFailurePolicy: when Redis does not answer, a Local's
// Adapter decides by its FailurePolicy and reports the error, as the
// Limiter's does.
func TestLocalForFailurePolicy(t *testing.T) {
	needRedis(t)
	l := mustLimiter(t, mustStore(t, deadClient(t)), redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 10, Window: time.Second})
	var log errorLog
	a, err := mustLocal(t, l, smallLease).For("k", redisstore.AdapterConfig{OnFailure: redisstore.FailClosed, OnError: log.hook})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Take(start, 1); d.Allowed || d.RetryAfter != redisstore.DefaultRetryAfter {
		t.Fatalf("FailClosed Take with Redis down = %v", d)
	}
	if log.count() != 1 {
		t.Fatalf("OnError called %d times; want 1", log.count())
	}
}
