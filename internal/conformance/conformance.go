// Package conformance is the test suite every ratekit algorithm runs from its
// own tests: the semantics that the ratekit package documentation says every
// Limiter keeps, checked the same way for each. An algorithm package calls
// Run with a Subject that makes fresh limiters, and RunScript for its own
// scripts at fixed instants.
//
// It imports testing, so only _test files may import it.
package conformance

import (
	"encoding"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// Subject describes the limiters under test.
type Subject struct {
	// New returns a fresh limiter. It is called many times per test.
	New func(tb testing.TB) ratekit.Limiter
	// Capacity is how many units a fresh limiter admits at one instant
	// (a token bucket's Burst, a window's Limit). It must be at least 2.
	Capacity int
	// Limit is the Decision.Limit a fresh limiter reports (0: Capacity).
	Limit int
	// Policy is the Decision.Policy it reports (the Name New configures).
	Policy string
	// Start is the instant tests run at; the zero value is a fixed instant
	// in 2026 that is not aligned to any round window.
	Start time.Time
	// Holder marks limiters whose units come back only by Release or Refund,
	// never with time (concurrency limits).
	Holder bool
	// Reconfigure sets l's capacity (what Capacity says of a fresh
	// limiter: a window's Limit, a token bucket's Burst) to limit, keeping
	// every other parameter, with the limiter's own Reconfigure; it reads
	// the time, if it must, at Start. Run fails the Reconfigure checks of
	// a Subject without it unless NoReconfigure is set. It must be safe
	// for concurrent use (ZeroValue races first configurations).
	Reconfigure func(l ratekit.Limiter, limit int) error
	// NoReconfigure says why the limiter has no Reconfigure (a composite,
	// whose members are reconfigured each on its own); with it set and
	// Reconfigure nil, the Reconfigure checks are skipped with that reason.
	NoReconfigure string
	// ReconfigureWindow, for a limiter with a Window, sets l's Window so
	// that a fresh limiter of the new Config reports window as its
	// Decision.Window, and moves windows aligned to the clock by shift
	// (fixedwindow: Offset + shift; others ignore shift), keeping every
	// other parameter, with the limiter's own Reconfigure, reading the time,
	// if it must, at now. nil skips the ReconfigureWindow check.
	ReconfigureWindow func(l ratekit.Limiter, window, shift time.Duration, now time.Time) error
	// Anchored marks limiters whose windows open at the first event
	// (rolling). An admitted Take moves every later window, and once a
	// window has opened on it no refund can move that back; nor can a
	// refund restore what an older, forgotten window counted at stale
	// times. RefundInterleaved then holds such a limiter to its twin only
	// where a refund can: at instants from the refunded Take's stamp on,
	// in histories where no other Take is stamped a Window or more after
	// it (see refund_interleave.go).
	Anchored bool
	// NewWithHook, for an algorithm with OnLimitReached, returns a fresh
	// limiter as New does, with hook as its OnLimitReached; nil skips the
	// OnLimitReached checks (see hook.go).
	NewWithHook func(tb testing.TB, hook func(ratekit.Decision)) ratekit.Limiter
	// WithClock returns a fresh limiter like New's whose Config reads clk,
	// for the check that Allow and AllowN read it once per call. It must be
	// set for a limiter that has Allow and AllowN; nil for one that reads
	// no clock of its own (a composite).
	WithClock func(tb testing.TB, clk clock.Clock) ratekit.Limiter
	// Zero returns the zero value of the algorithm's limiter (new(T)), for
	// the check that it keeps the zero-value rule (see zerovalue.go). It
	// must be set when WithClock is; nil for a composite or a view.
	Zero func() ratekit.Limiter
}

// DefaultStart is the Start of a Subject that sets none: a Wednesday in 2026,
// 7.25 seconds past 13:01, so no window of a minute or longer is aligned to it.
var DefaultStart = time.Date(2026, 3, 18, 13, 1, 7, 250_000_000, time.UTC)

// defaults returns s with its zero Limit and Start filled in, failing t
// for a Subject no check can run.
func (s Subject) defaults(t *testing.T) Subject {
	t.Helper()
	if s.New == nil || s.Capacity < 2 {
		t.Fatalf("conformance: Subject needs New and a Capacity of at least 2 (got %d)", s.Capacity)
	}
	if s.Limit == 0 {
		s.Limit = s.Capacity
	}
	if s.Start.IsZero() {
		s.Start = DefaultStart
	}
	return s
}

// Run runs the whole suite against s, each check as a subtest.
func Run(t *testing.T, s Subject) {
	t.Helper()
	s = s.defaults(t)
	t.Run("ZeroUnits", s.zeroUnits)
	t.Run("ZeroUnitsOverFull", s.zeroUnitsOverFull)
	t.Run("NegativeUnits", s.negativeUnits)
	t.Run("OverCapacity", s.overCapacity)
	t.Run("FirstTake", s.firstTake)
	t.Run("DrainAtOneInstant", s.drainAtOneInstant)
	t.Run("PeekMatchesTake", s.peekMatchesTake)
	t.Run("DenialChangesNothing", s.denialChangesNothing)
	t.Run("StaleAndBackwardTime", s.staleAndBackwardTime)
	t.Run("RefundRestores", s.refundRestores)
	t.Run("RefundNeverMints", s.refundNeverMints)
	t.Run("RefundInterleaved", s.refundInterleaved)
	t.Run("RefundAcrossRestore", s.refundRestore)
	t.Run("RefundAfterSpent", s.refundAfterSpent)
	t.Run("RefundAcrossOwnRestore", s.refundAcrossOwnRestore)
	t.Run("RefundReplacedWindow", s.refundReplacedWindow)
	t.Run("RefundAcrossForeignRestore", s.refundForeignRestore)
	t.Run("NeverOnlyUnfit", s.neverOnlyUnfit)
	t.Run("ConcurrentTakeAtOneInstant", s.concurrentTake)
	t.Run("ConcurrentTakeRefund", s.concurrentTakeRefund)
	t.Run("TakeAllRollbackUnderContention", s.takeAllRollback)
	t.Run("TakeAllDeniedLeavesMemberUnchanged", s.takeAllDenied)
	t.Run("TakeAllHammer", s.takeAllHammer)
	t.Run("CopyBesideOriginal", s.copiedBeside)
	t.Run("ZeroAllocs", s.zeroAllocs)
	t.Run("Idle", s.idle)
	t.Run("IdleKeepsRestoreMark", s.idleMark)
	t.Run("MarshalRoundTrip", s.marshalRoundTrip)
	t.Run("MarshalFarClock", s.marshalFarClock)
	t.Run("UnmarshalRejectsBadState", s.unmarshalBadState)
	t.Run("Overflow", s.overflow)
	t.Run("Reconfigure", s.reconfigureChecks)
	t.Run("OnLimitReached", s.onLimitReached)
	t.Run("ReconfigureUntorn", s.reconfigureUntorn)
	t.Run("ReconfigureStale", s.reconfigureStale)
	t.Run("RefundAcrossReconfigure", s.refundReconfigure)
	t.Run("RefundThenShorterWindow", s.refundThenShorterWindow)
	t.Run("RestoreStale", s.restoreStale)
	t.Run("ReconfigureWindow", s.reconfigureWindow)
	t.Run("RestoreWindow", s.restoreWindow)
	t.Run("ReconfigureSame", s.reconfigureSame)
	t.Run("RestoreLater", s.restoreLater)
	t.Run("RestoreLaterUsed", s.restoreLaterUsed)
	t.Run("AllowReadsClockOnce", s.allowReadsClockOnce)
	t.Run("ZeroValue", s.zeroValue)
	t.Run("ZeroRace", s.zeroRace)
	t.Run("GlitchThroughReconfigure", s.glitchReconfigure)
	t.Run("GlitchThroughRestore", s.glitchRestore)
	t.Run("FarTimesTwin", s.farTwin)
}

// Op is what a script Step does.
type Op int

// The operations of a Step.
const (
	OpTake Op = iota
	OpPeek
	OpRefund
)

func (o Op) String() string {
	return [...]string{"Take", "Peek", "Refund"}[o]
}

// Step is one line of a script: at Start+At, do Op with N units, and (for
// Take and Peek) expect exactly OK, Remaining, RetryAfter and ResetAfter.
type Step struct {
	At         time.Duration
	Op         Op
	N          int
	OK         bool
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
}

// RunScript runs steps against l in order, failing at the first step whose
// Decision differs from the expected one.
func RunScript(tb testing.TB, l ratekit.Limiter, start time.Time, steps []Step) {
	tb.Helper()
	for i, st := range steps {
		now := start.Add(st.At)
		var d ratekit.Decision
		switch st.Op {
		case OpTake:
			d = l.Take(now, st.N)
		case OpPeek:
			d = l.Peek(now, st.N)
		case OpRefund:
			l.Refund(now, st.N)
			continue
		}
		if d.Allowed != st.OK || d.Remaining != st.Remaining || d.RetryAfter != st.RetryAfter || d.ResetAfter != st.ResetAfter {
			tb.Fatalf("step %d (%s n=%d at +%v):\n got  ok=%v remaining=%d retry=%v reset=%v\n want ok=%v remaining=%d retry=%v reset=%v",
				i, st.Op, st.N, st.At, d.Allowed, d.Remaining, d.RetryAfter, d.ResetAfter,
				st.OK, st.Remaining, st.RetryAfter, st.ResetAfter)
		}
	}
}

// drain takes one unit at a time at now until denied (or until limit
// admissions, a guard against a limiter that never denies) and returns how
// many it took.
func drain(l ratekit.Limiter, now time.Time, limit int) int {
	n := 0
	for n <= limit && l.Take(now, 1).Allowed {
		n++
	}
	return n
}

func (s Subject) zeroUnits(t *testing.T) {
	l := s.New(t)
	before := l.Peek(s.Start, 1)
	if d := l.Take(s.Start, 0); !d.Allowed || d.RetryAfter != 0 {
		t.Fatalf("Take(n=0) on a fresh limiter = %v; want allowed with RetryAfter 0", d)
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Fatalf("Take(n=0) changed state: Peek before %v, after %v", before, after)
	}
	if got := drain(l, s.Start, s.Capacity); got != s.Capacity {
		t.Fatalf("drained %d units; want %d", got, s.Capacity)
	}
	if d := l.Take(s.Start, 0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("Take(n=0) on a drained limiter = %v; want allowed with Remaining 0", d)
	}
	if d := l.Peek(s.Start, 0); !d.Allowed {
		t.Fatalf("Peek(n=0) on a drained limiter = %v; want allowed", d)
	}
}

func (s Subject) negativeUnits(t *testing.T) {
	l := s.New(t)
	l.Take(s.Start, 1)
	before := l.Peek(s.Start, 1)
	for _, n := range []int{-1, -s.Capacity, math.MinInt} {
		if d := l.Take(s.Start, n); d.Allowed || d.RetryAfter != ratekit.Never {
			t.Fatalf("Take(n=%d) = %v; want denied with RetryAfter Never", n, d)
		}
		if d := l.Peek(s.Start, n); d.Allowed || d.RetryAfter != ratekit.Never {
			t.Fatalf("Peek(n=%d) = %v; want denied with RetryAfter Never", n, d)
		}
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Fatalf("negative Take changed state: Peek before %v, after %v", before, after)
	}
}

func (s Subject) overCapacity(t *testing.T) {
	l := s.New(t)
	before := l.Peek(s.Start, 1)
	for _, n := range []int{s.Capacity + 1, 2 * s.Capacity, math.MaxInt} {
		if d := l.Take(s.Start, n); d.Allowed || d.RetryAfter != ratekit.Never {
			t.Fatalf("Take(n=%d) with capacity %d = %v; want denied with RetryAfter Never", n, s.Capacity, d)
		}
		if d := l.Peek(s.Start, n); d.Allowed || d.RetryAfter != ratekit.Never {
			t.Fatalf("Peek(n=%d) with capacity %d = %v; want denied with RetryAfter Never", n, s.Capacity, d)
		}
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Fatalf("an over-capacity Take changed state: Peek before %v, after %v", before, after)
	}
	if d := l.Take(s.Start, s.Capacity); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("Take(n=capacity=%d) on a fresh limiter = %v; want allowed with Remaining 0", s.Capacity, d)
	}
}

func (s Subject) firstTake(t *testing.T) {
	l := s.New(t)
	p := l.Peek(s.Start, 1)
	d := l.Take(s.Start, 1)
	if p != d {
		t.Fatalf("Peek %v differs from the Take that followed %v", p, d)
	}
	if !d.Allowed || d.RetryAfter != 0 || d.Remaining != s.Capacity-1 || d.Limit != s.Limit || d.Policy != s.Policy {
		t.Fatalf("first Take(1) = %v; want allowed, retry 0, remaining %d, limit %d, policy %q",
			d, s.Capacity-1, s.Limit, s.Policy)
	}
	if d.ResetAfter < 0 || d.Window < 0 {
		t.Fatalf("first Take(1) = %v: negative ResetAfter or Window", d)
	}
}

func (s Subject) drainAtOneInstant(t *testing.T) {
	l := s.New(t)
	if got := drain(l, s.Start, s.Capacity); got != s.Capacity {
		t.Fatalf("admitted %d units one at a time at one instant; want exactly %d", got, s.Capacity)
	}
	d := l.Take(s.Start, 1)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter == ratekit.Never {
		t.Fatalf("Take on a drained limiter = %v; want denied, Remaining 0, finite positive RetryAfter", d)
	}
	if d.Limit != s.Limit || d.Policy != s.Policy {
		t.Fatalf("denial %v: want limit %d and policy %q", d, s.Limit, s.Policy)
	}
}

// peekMatchesTake drives a limiter with a seeded random mix of sizes and
// time steps and checks that every Peek equals the Take that follows it.
func (s Subject) peekMatchesTake(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	steps := []time.Duration{0, 0, 0, 1, time.Microsecond, time.Millisecond, 37 * time.Millisecond,
		time.Second, 7 * time.Second, time.Minute, time.Hour}
	for round := 0; round < 20; round++ {
		l := s.New(t)
		now := s.Start
		for i := 0; i < 200; i++ {
			now = now.Add(steps[rng.IntN(len(steps))])
			n := rng.IntN(s.Capacity + 2) // includes 0 and capacity+1
			if rng.IntN(4) == 0 {
				n = 1
			}
			p := l.Peek(now, n)
			d := l.Take(now, n)
			if p != d {
				t.Fatalf("seed %d round %d step %d: Peek(+%v, %d) = %v but Take = %v",
					seed, round, i, now.Sub(s.Start), n, p, d)
			}
			if d.Remaining < 0 || d.Remaining > s.Capacity {
				t.Fatalf("seed %d: Remaining %d outside [0, %d]: %v", seed, d.Remaining, s.Capacity, d)
			}
			if d.Allowed != (d.RetryAfter == 0) {
				t.Fatalf("seed %d: allowed=%v with RetryAfter %v", seed, d.Allowed, d.RetryAfter)
			}
			if s.Holder && d.Allowed && rng.IntN(2) == 0 {
				l.(ratekit.Holder).Release(n)
			}
		}
	}
}

func (s Subject) denialChangesNothing(t *testing.T) {
	l := s.New(t)
	if !l.Take(s.Start, s.Capacity-1).Allowed {
		t.Fatalf("Take(capacity-1) on a fresh limiter denied")
	}
	before := l.Peek(s.Start, 1)
	if d := l.Take(s.Start, 2); d.Allowed {
		t.Fatalf("Take(2) with one unit left = %v; want denied", d)
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Fatalf("a denied Take(2) changed state: Peek(1) before %v, after %v", before, after)
	}
	l.Take(s.Start, 1)
	before = l.Peek(s.Start, 1)
	for _, n := range []int{1, 2, s.Capacity} {
		if d := l.Take(s.Start, n); d.Allowed {
			t.Fatalf("Take(%d) on a drained limiter = %v; want denied", n, d)
		}
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Fatalf("denied Takes changed state: Peek before %v, after %v", before, after)
	}
}

func (s Subject) staleAndBackwardTime(t *testing.T) {
	now := s.Start.Add(time.Hour)
	earlier := []time.Duration{1, time.Microsecond, time.Millisecond, time.Second, time.Minute,
		time.Hour, 24 * time.Hour, 31 * 24 * time.Hour, 10 * 365 * 24 * time.Hour}
	t.Run("Drained", func(t *testing.T) {
		l := s.New(t)
		if got := drain(l, now, s.Capacity); got != s.Capacity {
			t.Fatalf("drained %d; want %d", got, s.Capacity)
		}
		for _, back := range earlier {
			if d := l.Take(now.Add(-back), 1); d.Allowed {
				t.Fatalf("drained at T, Take at T-%v = %v; want denied (stale time minted capacity)", back, d)
			}
		}
		if d := l.Take(time.Time{}, 1); d.Allowed {
			t.Fatalf("drained at T, Take at the zero time = %v; want denied", d)
		}
	})
	t.Run("Mixed", func(t *testing.T) {
		// Takes stamped out of order, all within one instant's capacity:
		// no ordering of stale stamps admits more than Capacity in total.
		l := s.New(t)
		admitted := 0
		for i := 0; i < 4*s.Capacity; i++ {
			at := now.Add(-earlier[i%len(earlier)])
			if i%2 == 0 {
				at = now
			}
			if l.Take(at, 1).Allowed {
				admitted++
			}
		}
		if admitted > s.Capacity {
			t.Fatalf("admitted %d units at or before T; want at most %d", admitted, s.Capacity)
		}
	})
}

func (s Subject) refundRestores(t *testing.T) {
	for _, k := range []int{1, s.Capacity / 2, s.Capacity} {
		l, fresh := s.New(t), s.New(t)
		if !l.Take(s.Start, k).Allowed {
			t.Fatalf("Take(%d) on a fresh limiter denied", k)
		}
		l.Refund(s.Start, k)
		for _, n := range []int{1, s.Capacity} {
			got, want := l.Peek(s.Start, n), fresh.Peek(s.Start, n)
			if s.Holder {
				got.RetryAfter, want.RetryAfter = 0, 0
				got.ResetAfter, want.ResetAfter = 0, 0
			}
			if got != want {
				t.Fatalf("after Take(%d) and Refund(%d), Peek(%d) = %v; a fresh limiter says %v", k, k, n, got, want)
			}
		}
	}
}

func (s Subject) refundNeverMints(t *testing.T) {
	if s.Holder {
		t.Skip("a Holder's over-release is misuse its own package documents and tests")
	}
	l := s.New(t)
	l.Refund(s.Start, s.Capacity) // nothing was taken
	if got := drain(l, s.Start, 2*s.Capacity); got != s.Capacity {
		t.Fatalf("after refunding %d never taken, drained %d; want %d", s.Capacity, got, s.Capacity)
	}
	l = s.New(t)
	l.Take(s.Start, 1)
	l.Refund(s.Start, 1)
	l.Refund(s.Start, 1) // refunded twice
	l.Refund(s.Start.Add(-time.Hour), s.Capacity)
	if got := drain(l, s.Start, 2*s.Capacity); got > s.Capacity {
		t.Fatalf("after bogus refunds, drained %d; want at most %d", got, s.Capacity)
	}
}

const goroutines = 8

func (s Subject) concurrentTake(t *testing.T) {
	for rep := 0; rep < 10; rep++ {
		l := s.New(t)
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i <= s.Capacity; i++ {
					if l.Take(s.Start, 1).Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if got := admitted.Load(); got != int64(s.Capacity) {
			t.Fatalf("rep %d: %d goroutines racing at one instant admitted %d; want exactly %d", rep, goroutines, got, s.Capacity)
		}
	}
}

func (s Subject) concurrentTakeRefund(t *testing.T) {
	l, fresh := s.New(t), s.New(t)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 1 + g%2
			for i := 0; i < 500; i++ {
				if l.Take(s.Start, n).Allowed {
					l.Refund(s.Start, n)
				}
			}
		}()
	}
	wg.Wait()
	got, want := l.Peek(s.Start, 1), fresh.Peek(s.Start, 1)
	if got.Allowed != want.Allowed || got.Remaining != want.Remaining {
		t.Fatalf("after racing Take/Refund pairs, Peek = %v; a fresh limiter says %v", got, want)
	}
	if d := drain(l, s.Start, 2*s.Capacity); d != s.Capacity {
		t.Fatalf("after racing Take/Refund pairs, drained %d; want %d", d, s.Capacity)
	}
}

// takeAllRollback races TakeAll(a, b) against plain Takes on b. Every unit a
// admitted must belong to an allowed TakeAll: a denied TakeAll that left a
// unit taken in a, or over-admitted in b, shows up in the final counts.
func (s Subject) takeAllRollback(t *testing.T) {
	for rep := 0; rep < 5; rep++ {
		a, b := s.New(t), s.New(t)
		var viaAll, viaB atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i <= s.Capacity/2+2; i++ {
					if g%2 == 0 {
						if ratekit.TakeAll(s.Start, 1, a, b).Allowed {
							viaAll.Add(1)
						}
					} else if b.Take(s.Start, 1).Allowed {
						viaB.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		restA, restB := drain(a, s.Start, s.Capacity), drain(b, s.Start, s.Capacity)
		if int(viaAll.Load())+restA != s.Capacity {
			t.Fatalf("rep %d: a admitted %d via TakeAll and %d after; want %d in all (a denied TakeAll leaked units)",
				rep, viaAll.Load(), restA, s.Capacity)
		}
		if int(viaAll.Load()+viaB.Load())+restB != s.Capacity {
			t.Fatalf("rep %d: b admitted %d via TakeAll, %d directly and %d after; want %d in all",
				rep, viaAll.Load(), viaB.Load(), restB, s.Capacity)
		}
	}
}

// denyAll is a member that refuses everything.
type denyAll struct{}

func (denyAll) Take(time.Time, int) ratekit.Decision {
	return ratekit.Decision{RetryAfter: time.Hour, Policy: "deny"}
}
func (denyAll) Peek(now time.Time, n int) ratekit.Decision { return denyAll{}.Take(now, n) }
func (denyAll) Refund(time.Time, int)                      {}

func (s Subject) takeAllDenied(t *testing.T) {
	l := s.New(t)
	l.Take(s.Start, 1)
	before := l.Peek(s.Start, 1)
	for i := 0; i < s.Capacity+2; i++ {
		if d := ratekit.TakeAll(s.Start, 1, l, denyAll{}); d.Allowed || d.Policy != "deny" {
			t.Fatalf("TakeAll with a member that denies = %v; want the member's denial", d)
		}
	}
	if after := l.Peek(s.Start, 1); after != before {
		t.Fatalf("denied TakeAlls changed a member: Peek before %v, after %v", before, after)
	}
}

func (s Subject) zeroAllocs(t *testing.T) {
	l := s.New(t)
	now := s.Start
	allocs := testing.AllocsPerRun(200, func() {
		now = now.Add(time.Millisecond)
		if d := l.Take(now, 1); d.Allowed {
			l.Refund(now, 1)
		}
		l.Peek(now, 1)
	})
	if allocs != 0 {
		t.Fatalf("Take/Refund/Peek allocate %v times per run; want 0", allocs)
	}
	drain(l, now, s.Capacity)
	allocs = testing.AllocsPerRun(200, func() { l.Take(now, 1) })
	if allocs != 0 {
		t.Fatalf("a denied Take allocates %v times per run; want 0", allocs)
	}
}

// Idler is implemented by every ratekit algorithm limiter.
type Idler interface {
	Idle(now time.Time) bool
}

func (s Subject) idle(t *testing.T) {
	l := s.New(t)
	il, ok := l.(Idler)
	if !ok {
		t.Fatalf("%T has no Idle(time.Time) bool method", l)
	}
	if !il.Idle(s.Start) {
		t.Fatalf("a fresh limiter is not Idle")
	}
	l.Take(s.Start, 1)
	if il.Idle(s.Start) {
		t.Fatalf("Idle right after an allowed Take(1)")
	}
	fresh := s.New(t)
	if s.Holder {
		l.(ratekit.Holder).Release(1)
		if !il.Idle(s.Start) {
			t.Fatalf("not Idle after every unit was released")
		}
		return
	}
	// A limiter whose every unit was refunded may call itself Idle only if it
	// then decides exactly as a fresh one would.
	r := s.New(t)
	r.Take(s.Start, 1)
	r.Refund(s.Start, 1)
	for _, d := range []time.Duration{0, time.Second, time.Hour} {
		now := s.Start.Add(d)
		if r.(Idler).Idle(now) {
			for _, n := range []int{1, s.Capacity} {
				if got, want := r.Peek(now, n), fresh.Peek(now, n); got != want {
					t.Fatalf("Idle at +%v after Take(1) and Refund(1) but Peek(%d) = %v; a fresh limiter says %v", d, n, got, want)
				}
			}
		}
	}
	drain(l, s.Start, s.Capacity)
	// Wherever Idle holds, the limiter must decide as a fresh one would, so
	// that dropping it changes no decision.
	for d := time.Duration(1); d < 400*24*time.Hour; d = d*3 + 7 {
		now := s.Start.Add(d)
		if il.Idle(now) {
			for _, n := range []int{1, s.Capacity} {
				if got, want := l.Peek(now, n), fresh.Peek(now, n); got != want {
					t.Fatalf("Idle at +%v but Peek(%d) = %v; a fresh limiter says %v", d, n, got, want)
				}
			}
		}
	}
	if !il.Idle(s.Start.Add(400 * 24 * time.Hour)) {
		t.Fatalf("still not Idle 400 days after the last Take")
	}
}

type marshaler interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

func (s Subject) marshalRoundTrip(t *testing.T) {
	l := s.New(t)
	m, ok := l.(marshaler)
	if !ok {
		t.Fatalf("%T does not implement MarshalBinary and UnmarshalBinary", l)
	}
	l.Take(s.Start, s.Capacity/2)
	l.Take(s.Start.Add(time.Millisecond), 1)
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	r := s.New(t)
	if err := r.(marshaler).UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary of MarshalBinary's own output: %v", err)
	}
	if s.Holder {
		return // held units belong to the process that held them
	}
	for _, at := range []time.Duration{time.Millisecond, time.Second, time.Hour, 40 * 24 * time.Hour} {
		now := s.Start.Add(at)
		for _, n := range []int{1, s.Capacity} {
			if got, want := r.Peek(now, n), l.Peek(now, n); got != want {
				t.Fatalf("restored limiter: Peek(+%v, %d) = %v; the original says %v", at, n, got, want)
			}
		}
	}
	// Restoring a fresh state resets a used limiter.
	fb, err := s.New(t).(marshaler).MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary of a fresh limiter: %v", err)
	}
	if err := m.UnmarshalBinary(fb); err != nil {
		t.Fatalf("UnmarshalBinary of a fresh state: %v", err)
	}
	if got := drain(l, s.Start.Add(time.Millisecond), s.Capacity); got != s.Capacity {
		t.Fatalf("after restoring a fresh state, drained %d; want %d", got, s.Capacity)
	}
}

func (s Subject) unmarshalBadState(t *testing.T) {
	l := s.New(t)
	m, ok := l.(marshaler)
	if !ok {
		t.Fatalf("%T does not implement MarshalBinary and UnmarshalBinary", l)
	}
	l.Take(s.Start, 1)
	good, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	before := l.Peek(s.Start, 1)
	check := func(what string, b []byte) {
		t.Helper()
		err := m.UnmarshalBinary(b)
		if err == nil {
			t.Fatalf("UnmarshalBinary(%s % x) = nil; want an error", what, b)
		}
		if !errors.Is(err, ratekit.ErrInvalidState) {
			t.Fatalf("UnmarshalBinary(%s): %v does not wrap ratekit.ErrInvalidState", what, err)
		}
		if after := l.Peek(s.Start, 1); after != before {
			t.Fatalf("a rejected UnmarshalBinary(%s) changed state: Peek before %v, after %v", what, before, after)
		}
	}
	check("nil", nil)
	for i := 1; i < len(good); i++ {
		check("truncated", good[:i])
	}
	check("with a trailing byte", append(append([]byte(nil), good...), 0))
	for i := 0; i < 4 && i < len(good); i++ {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0xff
		check("with a corrupt header", bad)
	}
	// Random bytes must never panic; they may by chance decode.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%2 == 0 && len(b) >= 4 {
			copy(b, good[:4]) // valid header, random payload
		}
		fresh := s.New(t).(marshaler)
		_ = fresh.UnmarshalBinary(b)
	}
}

// BytesPer returns the bytes allocated per call of newLimiter over n calls,
// all of whose results are kept alive until the count is read: what a
// limiter costs in a Keyed of n keys. It is for tests of a package's
// templates, which promise a size per limiter.
//
// The count is the process's: another goroutine that allocates meanwhile
// (a parallel test, the runtime's own work under load) can only add to it,
// never take away. So it is the least of three measurements, each of which
// is at least the true cost: a limiter that costs more than a bound fails
// every one of them.
func BytesPer[L any](n int, newLimiter func() L) float64 {
	least := math.Inf(1)
	for range 3 {
		least = min(least, bytesPer(n, newLimiter))
	}
	return least
}

func bytesPer[L any](n int, newLimiter func() L) float64 {
	keep := make([]L, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = newLimiter()
	}
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
}
