package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/redisstore"
)

// The refund contract (issue #16 item 2, DESIGN.md): a refund never leaves
// a key able to admit more, at any time, than it would had the refunded
// Take never happened, whatever stamps other callers used in between. The
// tests below hold every algorithm of the script to it, against a twin key
// that never saw the refunded Take.

// capacityAt is how many units key admits at now in one Take (Peek): the
// largest n <= max allowed, by bisection.
func capacityAt(t *testing.T, l *redisstore.Limiter, key string, now time.Time, limit int) int {
	t.Helper()
	lo, hi := 0, limit
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		d, err := l.PeekAt(context.Background(), key, now, mid)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func takeAt(t *testing.T, l *redisstore.Limiter, key string, now time.Time, n int) bool {
	t.Helper()
	d, err := l.TakeAt(context.Background(), key, now, n)
	if err != nil {
		t.Fatal(err)
	}
	return d.Allowed
}

// during is a TakeAll member that runs f in its Take (as other callers
// would while a slow member decides) and then denies, so TakeAll rolls
// back its earlier members.
type during func()

func (f during) Take(now time.Time, n int) ratekit.Decision { f(); return f.Peek(now, n) }
func (during) Peek(time.Time, int) ratekit.Decision {
	return ratekit.Decision{RetryAfter: time.Second, Policy: "slow"}
}
func (during) Refund(time.Time, int) {}

// TestTokenBucketRefundAfterLaterStampedTakes is the scenario: a
// TakeAll at t1 takes 5 from a bucket of Burst 10 refilling fully in 1 s;
// callers stamped t2 = t1+1s take the 10 there are at t2; the rollback
// Refund(t1, 5) must not let any more pass at t2 (without the refunded
// Take the bucket would be empty at t2). The old script moved the TAT back
// by 5 intervals and 5 more passed.
func TestTokenBucketRefundAfterLaterStampedTakes(t *testing.T) {
	s, _ := newStore(t)
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 10, Window: time.Second, Burst: 10})
	t1 := start
	t2 := t1.Add(time.Second)
	for _, viaTakeAll := range []bool{false, true} {
		t.Run(fmt.Sprint("TakeAll=", viaTakeAll), func(t *testing.T) {
			key := fmt.Sprint("issue16-", viaTakeAll)
			later := func() {
				if !takeAt(t, l, key, t2, 10) {
					t.Fatal("10 at t2 denied: the bucket is full again by t2")
				}
			}
			if viaTakeAll {
				a, err := l.For(key, redisstore.AdapterConfig{CallerTime: true})
				if err != nil {
					t.Fatal(err)
				}
				if d := ratekit.TakeAll(t1, 5, a, during(later)); d.Allowed {
					t.Fatal("TakeAll with a denying member allowed")
				}
			} else {
				if !takeAt(t, l, key, t1, 5) {
					t.Fatal("5 at t1 denied")
				}
				later()
				if err := l.RefundAt(context.Background(), key, t1, 5); err != nil {
					t.Fatal(err)
				}
			}
			if got := capacityAt(t, l, key, t2, 10); got != 0 {
				t.Fatalf("after the refund %d more pass at t2; want 0 (10 passed there, as without the refunded Take)", got)
			}
			// Later on the bucket refills as it would have: 5 by t2+500ms.
			if got := capacityAt(t, l, key, t2.Add(500*time.Millisecond), 10); got != 5 {
				t.Fatalf("at t2+500ms %d pass; want 5", got)
			}
		})
	}
}

// TestRollingRefundAtStartAfterLaterTakes: Take(t1, 1) opens a window
// [t1, t1+W); 3 more join it at t1+W/2; Refund(t1, 1). Had the refunded Take
// never happened, the window would have opened at t1+W/2 and hold 3 until
// t1+3W/2, so at t1+W only 1 passes. The old script kept the window's start
// at t1 and let 4 pass at t1+W.
func TestRollingRefundAtStartAfterLaterTakes(t *testing.T) {
	s, _ := newStore(t)
	w := time.Second
	l := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "rw", Limit: 4, Window: w})
	t1 := start
	if !takeAt(t, l, "k", t1, 1) || !takeAt(t, l, "k", t1.Add(w/2), 3) {
		t.Fatal("takes within the limit denied")
	}
	if err := l.RefundAt(context.Background(), "k", t1, 1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []time.Duration{w, w + w/4, 3*w/2 - time.Microsecond} {
		if got := capacityAt(t, l, "k", t1.Add(q), 4); got > 1 {
			t.Fatalf("at t1+%v %d pass; want at most 1 (3 of the window opened at t1+W/2 still count)", q, got)
		}
	}
	// A refund at the start with no later units restores exactly: the
	// window closes as if never opened.
	if !takeAt(t, l, "k2", t1, 2) || !takeAt(t, l, "k2", t1, 1) {
		t.Fatal("takes within the limit denied")
	}
	if err := l.RefundAt(context.Background(), "k2", t1, 1); err != nil {
		t.Fatal(err)
	}
	if got := capacityAt(t, l, "k2", t1.Add(w), 4); got != 4 {
		t.Fatalf("at t1+W %d pass; want 4 (the window of units all at t1 closes at t1+W)", got)
	}
}

// refundTwinConfigs are the configurations the randomized twin comparison
// runs: every algorithm, intervals that are not whole microseconds.
var refundTwinConfigs = []redisstore.Config{
	{Algorithm: redisstore.TokenBucket, Name: "tb", Limit: 10, Window: time.Second, Burst: 10},
	{Algorithm: redisstore.TokenBucket, Name: "tb-odd", Limit: 7, Window: time.Second, Burst: 3},
	{Algorithm: redisstore.FixedWindow, Name: "fw", Limit: 5, Window: time.Second},
	{Algorithm: redisstore.FixedWindow, Name: "fw-off", Limit: 6, Window: time.Second, Offset: -300 * time.Millisecond},
	{Algorithm: redisstore.Rolling, Name: "rw", Limit: 4, Window: time.Second},
	{Algorithm: redisstore.SlidingLog, Name: "sl", Limit: 5, Window: time.Second},
	{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 5, Window: time.Second},
	{Algorithm: redisstore.SlidingCounter, Name: "sc-7", Limit: 7, Window: 700 * time.Millisecond},
}

// twinOp is one call of a history, kept to print a failing one.
type twinOp struct {
	what string
	at   time.Duration // from t1
	n    int
	ok   bool
}

func (o twinOp) String() string {
	return fmt.Sprintf("%s(t1%s, %d)=%v", o.what, signedDur(o.at), o.n, o.ok)
}

// signedDur formats d with its sign: "+1s", "-1s".
func signedDur(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// TestRefundInterleavedTwin is internal/conformance's RefundInterleaved
// against the script: a Take at t1 (directly, or as a TakeAll whose later
// member denies), other callers stamped before and after t1 take what they
// can, then the refund at t1. A twin key sees the same history without the
// refunded Take (the same takes before it, then each Take the key admitted).
// At every query instant the key must admit no more in one Take than the
// twin. Seeded (RATEKIT_SEED replays), bounded. Rolling windows, opened by
// their first event, are compared from t1 on and with no Take stamped a
// Window or more after t1, as in conformance (see refund_interleave.go for
// why no refund can do better there).
func TestRefundInterleavedTwin(t *testing.T) {
	s, _ := newStore(t)
	sd := seed(t)
	rounds := 120
	if testing.Short() {
		rounds = 30
	}
	for _, cfg := range refundTwinConfigs {
		t.Run(cfg.Name, func(t *testing.T) {
			l := mustLimiter(t, s, cfg)
			rng := rand.New(rand.NewPCG(sd, uint64(len(cfg.Name))<<8|uint64(cfg.Algorithm)))
			w := cfg.Window
			c := cfg.Limit
			if cfg.Algorithm == redisstore.TokenBucket {
				c = cfg.Burst
			}
			anchored := cfg.Algorithm == redisstore.Rolling
			frac := func() time.Duration {
				switch rng.IntN(8) {
				case 0:
					return 0
				case 1:
					return time.Duration(1+rng.IntN(3)) * time.Microsecond
				case 2:
					return w / time.Duration(c) * time.Duration(1+rng.IntN(c))
				case 3:
					return w - time.Duration(rng.IntN(2))*time.Microsecond
				default:
					return time.Duration(rng.Int64N(int64(w)))
				}
			}
			offset := func(stale bool) time.Duration {
				if stale || rng.IntN(6) == 0 {
					return (-frac() - time.Duration(rng.IntN(2))*w).Truncate(time.Microsecond)
				}
				return (frac() + time.Duration(rng.IntN(4))*w).Truncate(time.Microsecond)
			}
			us := time.Microsecond
			queries := []time.Duration{-3 * w, -w - us, -w, -w / 2, -us, 0, us, w / 3, w / 2, w - us, w, w + us,
				3 * w / 2, 2*w - us, 2 * w, 3 * w, 4 * w, 5*w + w/2, 10 * w}
			for round := range rounds {
				key, twin := fmt.Sprint("k", round), fmt.Sprint("twin", round)
				t1 := start
				at := func(d time.Duration) time.Time { return t1.Add(d) }
				var hist []twinOp
				for i := rng.IntN(3); i > 0; i-- {
					d := offset(rng.IntN(2) == 0)
					if rng.IntN(3) == 0 {
						d = -d
					}
					n := 1 + rng.IntN(c)
					ok := takeAt(t, l, key, at(d), n)
					if takeAt(t, l, twin, at(d), n) != ok {
						t.Fatalf("round %d: the key and its twin disagree on Take(%v, %d)", round, d, n)
					}
					hist = append(hist, twinOp{"pre Take", d, n, ok})
				}
				n0 := capacityAt(t, l, key, t1, c)
				if n0 == 0 {
					continue
				}
				n0 = 1 + rng.IntN(n0)
				viaTakeAll := rng.IntN(2) == 0
				var admitted []twinOp
				others := func() {
					for i := 1 + rng.IntN(5); i > 0; i-- {
						d := offset(false)
						if anchored && d >= w {
							d %= w
						}
						if rng.IntN(2) == 0 {
							for k := 0; k <= c && takeAt(t, l, key, at(d), 1); k++ {
								admitted = append(admitted, twinOp{"Take", d, 1, true})
							}
							hist = append(hist, twinOp{"drain", d, 1, true})
							continue
						}
						n := 1 + rng.IntN(c)
						if n2 := capacityAt(t, l, key, at(d), c); n2 > 0 && rng.IntN(2) == 0 {
							n = n2
						}
						ok := takeAt(t, l, key, at(d), n)
						if ok {
							admitted = append(admitted, twinOp{"Take", d, n, true})
						}
						hist = append(hist, twinOp{"Take", d, n, ok})
					}
				}
				if viaTakeAll {
					a, err := l.For(key, redisstore.AdapterConfig{CallerTime: true})
					if err != nil {
						t.Fatal(err)
					}
					hist = append(hist, twinOp{"REFUNDED TakeAll", 0, n0, true})
					if d := ratekit.TakeAll(t1, n0, a, during(others)); d.Allowed || d.Policy != "slow" {
						t.Fatalf("round %d: TakeAll with a denying member = %v", round, d)
					}
					hist = append(hist, twinOp{"rollback", 0, n0, true})
				} else {
					if !takeAt(t, l, key, t1, n0) {
						t.Fatalf("round %d: Peek allowed %d at t1 but Take denied it", round, n0)
					}
					hist = append(hist, twinOp{"REFUNDED Take", 0, n0, true})
					others()
					if err := l.RefundAt(context.Background(), key, t1, n0); err != nil {
						t.Fatal(err)
					}
					hist = append(hist, twinOp{"Refund", 0, n0, true})
				}
				for _, o := range admitted {
					takeAt(t, l, twin, at(o.at), o.n)
				}
				qs := append([]time.Duration(nil), queries...)
				for _, o := range hist {
					qs = append(qs, o.at-us, o.at, o.at+us, o.at+w-us, o.at+w, o.at+w+us)
				}
				for _, q := range qs {
					if anchored && q < 0 {
						continue
					}
					if got, want := capacityAt(t, l, key, at(q), c), capacityAt(t, l, twin, at(q), c); got > want {
						var b strings.Builder
						for i, o := range hist {
							if i > 0 {
								b.WriteString(", ")
							}
							b.WriteString(o.String())
						}
						t.Fatalf("seed %d round %d: at t1%s the key admits %d, but %d had the refunded Take never happened\nhistory: %s",
							sd, round, signedDur(q), got, want, b.String())
					}
				}
			}
		})
	}
}

// refundStaleCase is a history whose rollback once let a time before the
// refunded Take's stamp admit more than the twin that never saw it.
type refundStaleCase struct {
	cfg  redisstore.Config
	pre  time.Duration // Take(t1+pre, preN) before the refunded TakeAll(t1, n)
	preN int
	n    int
	q    time.Duration // the stale query instant, from t1
}

// TestRefundStaleTimes holds the sliding log and counter to the refund
// contract at times before the refunded Take's stamp (issue #16 item 2).
// The old script judged a stale time by the state the refunded Take had
// moved ahead: the log's clock (its save dropped the units expired there)
// and the counter's window (the rollback emptied the key, deleted as if
// fresh), so 5 passed at t1-3s where the twin admits none (log) or 4
// (counter, whose old rule judged t1-3s by its window's start).
func TestRefundStaleTimes(t *testing.T) {
	s, _ := newStore(t)
	cases := []refundStaleCase{
		{redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "sl", Limit: 5, Window: time.Second}, -2 * time.Second, 5, 5, -3 * time.Second},
		{redisstore.Config{Algorithm: redisstore.SlidingCounter, Name: "sc", Limit: 5, Window: time.Second}, -1840 * time.Millisecond, 1, 5, -3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.cfg.Name, func(t *testing.T) {
			l := mustLimiter(t, s, tc.cfg)
			t1 := start
			key, twin := "stale-"+tc.cfg.Name, "stale-twin-"+tc.cfg.Name
			for _, k := range []string{key, twin} {
				if !takeAt(t, l, k, t1.Add(tc.pre), tc.preN) {
					t.Fatalf("Take(t1%s, %d) denied", signedDur(tc.pre), tc.preN)
				}
			}
			a, err := l.For(key, redisstore.AdapterConfig{CallerTime: true})
			if err != nil {
				t.Fatal(err)
			}
			if d := ratekit.TakeAll(t1, tc.n, a, during(func() {})); d.Allowed || d.Policy != "slow" {
				t.Fatalf("TakeAll with a denying member = %v", d)
			}
			q := t1.Add(tc.q)
			got, want := capacityAt(t, l, key, q, tc.cfg.Limit), capacityAt(t, l, twin, q, tc.cfg.Limit)
			if got > want {
				t.Fatalf("after the rollback %d pass at t1%s; the twin without the Take admits %d", got, signedDur(tc.q), want)
			}
		})
	}
}
