package lincheck

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// t0 is the instant the histories' times are offsets from, and every
// limiter's epoch.
var t0 = time.Date(2026, 3, 18, 13, 1, 7, 250_000_000, time.UTC)

// kind is what an operation does.
type kind uint8

const (
	opTake kind = iota
	opPeek
	opRefund
	opReconfigure
	opRestore    // UnmarshalBinary of a snapshot's MarshalBinary
	opRelease    // concurrency only
	opSweep      // Keyed only: the part of a Sweep that judges one key
	opStamp      // token bucket only: a Take's raise of the bound on stamps (see withStamps)
	opTryAcquire // concurrency only
	opDelete     // Keyed only: Delete of the key (keyed_moves_test.go)
)

var kindNames = [...]string{"Take", "Peek", "Refund", "Reconfigure", "Unmarshal", "Release", "Sweep", "Stamp", "TryAcquire", "Delete"}

// input is one operation as called. Times are offsets from t0.
type input struct {
	Kind kind
	Key  int // Keyed only
	Now  time.Duration
	At   time.Duration // Refund's at
	N    int
	Arg  int // Reconfigure: config index; Unmarshal: snapshot index
}

func (in input) String() string {
	var b strings.Builder
	b.WriteString(kindNames[in.Kind])
	if in.Key != 0 {
		fmt.Fprintf(&b, "[key %d]", in.Key)
	}
	switch in.Kind {
	case opTake, opPeek:
		fmt.Fprintf(&b, "(+%v, %d)", in.Now, in.N)
	case opRefund:
		fmt.Fprintf(&b, "(+%v, %d)", in.At, in.N)
	case opReconfigure:
		fmt.Fprintf(&b, "(cfg %d at +%v)", in.Arg, in.Now)
	case opRestore:
		fmt.Fprintf(&b, "(snapshot %d)", in.Arg)
	case opRelease, opTryAcquire:
		fmt.Fprintf(&b, "(%d)", in.N)
	case opSweep:
		fmt.Fprintf(&b, "(+%v)", in.Now)
	case opStamp:
		fmt.Fprintf(&b, "(+%v) of Take(+%v, %d)", in.Now, in.Now, in.N)
	}
	return b.String()
}

// output is what an operation returned: a Decision for Take and Peek, an
// error's text for Reconfigure and Unmarshal, nothing otherwise.
type output struct {
	D   ratekit.Decision
	Err string
}

func (o output) String() string {
	switch {
	case o.Err != "":
		return "error " + o.Err
	case o.D == ratekit.Decision{}:
		return "-"
	}
	d := o.D
	retry := d.RetryAfter.String()
	if d.RetryAfter == ratekit.Never {
		retry = "Never"
	}
	return fmt.Sprintf("allowed=%v rem=%d retry=%s reset=%v limit=%d %q", d.Allowed, d.Remaining, retry, d.ResetAfter, d.Limit, d.Policy)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fixedClock is a clock.Clock that always reads one instant: the explicit
// time of a Reconfigure, or the epoch for New. Only Now is implemented.
type fixedClock struct {
	clock.Clock
	t time.Time
}

// Now yields before it returns: Reconfigure reads the clock between
// loading the state and replacing it, and the yield lets other operations
// run in that window.
func (c fixedClock) Now() time.Time {
	runtime.Gosched()
	return c.t
}

// state is a model state as porcupine keeps it: immutable. step returns the
// next state and what the model says the operation returns.
type state interface {
	step(in input) (state, output)
	key() string
}

// modelOf adapts a mutable reference model M to state: every step applies
// the operation to a clone.
type modelOf[M any] struct {
	clone func(M) M
	desc  func(M) string
	apply func(m M, in input) output // mutates m
}

type mstate[M any] struct {
	a *modelOf[M]
	m M
	k string
}

func (a *modelOf[M]) state(m M) state { return &mstate[M]{a: a, m: m, k: a.desc(m)} }

func (s *mstate[M]) step(in input) (state, output) {
	c := s.a.clone(s.m)
	out := s.a.apply(c, in)
	return s.a.state(c), out
}

func (s *mstate[M]) key() string { return s.k }

// porcupineModel is the porcupine.Model of a sequential specification
// starting at init.
func porcupineModel(init func() state) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return init() },
		Step: func(s, in, out any) (bool, any) {
			next, want := s.(state).step(in.(input))
			return want == out.(output), next
		},
		Equal: func(a, b any) bool { return a.(state).key() == b.(state).key() },
		Hash: func(s any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(s.(state).key()))
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string { return fmt.Sprintf("%v -> %v", in, out) },
		DescribeState:     func(s any) string { return s.(state).key() },
	}
}

// history is one run: the limiter's operations, how to generate them, and
// the model to check them against.
type history struct {
	do    func(in input) output // on the real limiter; safe for concurrent use
	model porcupine.Model
	next  func(g *goroutine) input // the goroutine's next operation
	// maxOps, if positive, caps the operations per goroutine: the checker's
	// search grows fast with the overlap of a nondeterministic model's
	// operations.
	maxOps int
	// stampBurst, if positive, checks each Take of 0 < n <= stampBurst as
	// two operations (see withStamps).
	stampBurst int
	// background, if set, runs beside the recording goroutines until stop
	// is closed, its operations unrecorded.
	background func(stop <-chan struct{})
}

// goroutine is one recording goroutine's generator state.
type goroutine struct {
	r     *rand.Rand
	clk   *atomic.Int64 // the shared logical clock, ns after t0
	step  time.Duration // the scale of time steps
	taken []time.Duration
	held  int
}

// now advances the shared clock now and then, and returns its reading,
// sometimes made stale.
func (g *goroutine) now() time.Duration {
	if g.r.IntN(3) == 0 {
		g.clk.Add(int64(g.r.Int64N(int64(g.step))))
	}
	now := time.Duration(g.clk.Load())
	if g.r.IntN(4) == 0 {
		now -= time.Duration(g.r.Int64N(int64(g.step)))
	}
	return now
}

// refundAt is a time for a Refund: mostly one of this goroutine's allowed
// Takes.
func (g *goroutine) refundAt(now time.Duration) time.Duration {
	if len(g.taken) > 0 && g.r.IntN(3) != 0 {
		return g.taken[g.r.IntN(len(g.taken))]
	}
	return now
}

// units picks n: mostly small, sometimes 0, large or negative.
func (g *goroutine) units() int {
	return []int{0, 1, 1, 1, 1, 2, 2, 3, 4, 6, 9, -1}[g.r.IntN(12)]
}

// pick returns one of kinds.
func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// settings are a pass's sizes, from the environment.
type settings struct {
	budget     time.Duration // per test
	minRuns    int
	goroutines int
	opsPer     int   // operations per goroutine
	steps      int64 // the model steps one history's search may take (see budgeted)
	seed       uint64
	fixedSeed  bool
}

func passSettings(t *testing.T) settings {
	s := settings{budget: 2 * time.Second, minRuns: 5, goroutines: 4, opsPer: 60, steps: defaultSteps}
	if os.Getenv("RATEKIT_LINCHECK") == "long" {
		s.budget, s.minRuns, s.opsPer, s.steps = time.Minute, 50, 250, 6*defaultSteps
	}
	if v := os.Getenv("RATEKIT_LINCHECK_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("RATEKIT_LINCHECK_TIME=%q: %v", v, err)
		}
		s.budget = d
	}
	if v := os.Getenv("RATEKIT_LINCHECK_GOROUTINES"); v != "" {
		g, err := strconv.Atoi(v)
		if err != nil || g < 1 {
			t.Fatalf("RATEKIT_LINCHECK_GOROUTINES=%q: want a positive number", v)
		}
		s.goroutines = g
	}
	if v := os.Getenv("RATEKIT_LINCHECK_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RATEKIT_LINCHECK_OPS=%q: want a positive number", v)
		}
		s.opsPer = n
	}
	s.seed = rand.Uint64()
	if v := os.Getenv("RATEKIT_LINCHECK_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			t.Fatalf("RATEKIT_LINCHECK_SEED=%q: %v", v, err)
		}
		s.seed, s.fixedSeed = seed, true
	}
	return s
}

// record runs a history: goroutines goroutines of opsPer operations each,
// generated from seed, timed by an atomic sequence.
func record(h *history, seed uint64, goroutines, opsPer int, step time.Duration) []porcupine.Operation {
	// More Ps than cores: the kernel then preempts the threads running
	// goroutines at any instruction, in the middle of operations too.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2*goroutines, runtime.NumCPU())))
	var seq, clk, arrived atomic.Int64
	// barrier lines the goroutines up, every few operations, so that they
	// run their next ones at once: an operation takes well under the time
	// a goroutine takes to start or be rescheduled, so without it each
	// could run its whole share alone.
	barrier := func(round int64) {
		arrived.Add(1)
		for arrived.Load() < round*int64(goroutines) {
			runtime.Gosched()
		}
	}
	ops := make([][]porcupine.Operation, goroutines)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for id := range goroutines {
		g := &goroutine{r: rand.New(rand.NewPCG(seed, uint64(id))), clk: &clk, step: step}
		wg.Go(func() {
			<-start
			for i := range opsPer {
				if i%8 == 0 {
					barrier(int64(i/8 + 1))
				}
				in := h.next(g)
				call := seq.Add(1)
				out := h.do(in)
				ret := seq.Add(1)
				ops[id] = append(ops[id], porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				switch {
				case in.Kind == opTake && out.D.Allowed && in.N > 0:
					g.taken = append(g.taken, in.Now)
					g.held += in.N
				case in.Kind == opTryAcquire && out.D.Allowed && in.N > 0:
					g.held += in.N
				case in.Kind == opRelease:
					g.held -= in.N
				}
				if g.r.IntN(4) == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	stop, done := make(chan struct{}), make(chan struct{})
	if h.background != nil {
		go func() {
			defer close(done)
			<-start
			h.background(stop)
		}()
	} else {
		close(done)
	}
	close(start)
	wg.Wait()
	close(stop)
	<-done
	return slices.Concat(ops...)
}

// check runs histories made by newHistory until the pass's budget is
// spent, or until one is not linearizable, and checks each with porcupine.
// It reports the first that is not through report (t.Errorf for a correct
// limiter), and returns how many histories it checked and the path of the
// visualization it wrote ("" if none). A history whose search outgrows
// s.steps has no verdict: it is logged and does not count towards minRuns.
func check(t *testing.T, step time.Duration, newHistory func(t *testing.T, r *rand.Rand) *history,
	report func(format string, args ...any)) (runs int, visualization string) {
	s := passSettings(t)
	t.Logf("seed %#x (replay: RATEKIT_LINCHECK_SEED=%#x); %d goroutines x %d ops a history", s.seed, s.seed, s.goroutines, s.opsPer)
	begin := time.Now()
	var total, overlapping, inconclusive int
	var maxSteps int64
	var maxTook time.Duration
	defer func() {
		t.Logf("%d histories checked in %v (%d of them without a verdict); %d of their %d operations overlapped another goroutine's; "+
			"the longest search took %d model steps (budget %d), the slowest %v",
			runs, time.Since(begin).Round(time.Millisecond), inconclusive, overlapping, total,
			maxSteps, s.steps, maxTook.Round(time.Millisecond))
		if runs > 0 && inconclusive == runs && visualization == "" {
			t.Errorf("none of %d histories was decided within the search budget of %d model steps: "+
				"the histories are too large for it (opsPer %d)", runs, s.steps, s.opsPer)
		}
	}()
	// minRuns counts histories with a verdict; at most minRuns without one
	// are tried besides, once the time budget is spent.
	for runs = 0; (runs-inconclusive < s.minRuns && inconclusive < s.minRuns) || time.Since(begin) < s.budget; {
		if s.fixedSeed && runs >= s.minRuns {
			break
		}
		seed := s.seed + uint64(runs)
		h := newHistory(t, rand.New(rand.NewPCG(seed, 0x6c696e)))
		opsPer := s.opsPer
		if h.maxOps > 0 {
			opsPer = min(opsPer, h.maxOps)
		}
		ops := record(h, seed, s.goroutines, opsPer, step)
		total += len(ops)
		overlapping += overlaps(ops)
		ops = withStamps(ops, h.stampBurst)
		m, steps := budgeted(h.model, s.steps)
		began := time.Now()
		res, info := porcupine.CheckOperationsVerbose(m, ops, 0)
		took := time.Since(began)
		runs++
		maxSteps, maxTook = max(maxSteps, steps.Load()), max(maxTook, took)
		if res == porcupine.Illegal && steps.Load() > s.steps {
			// The search was cut, not refuted: no verdict.
			inconclusive++
			t.Logf("history %d (seed %#x): no verdict within the search budget of %d model steps (%v); the next one",
				runs-1, seed, s.steps, took.Round(time.Millisecond))
			continue
		}
		if res == porcupine.Ok {
			continue
		}
		f, err := os.CreateTemp("", "ratekit-lincheck-*.html")
		visualization = "(not written: " + errText(err) + ")"
		if err == nil {
			f.Close()
			if err := porcupine.VisualizePath(h.model, info, f.Name()); err != nil {
				visualization = "(not written: " + err.Error() + ")"
			} else {
				visualization = f.Name()
			}
		}
		if st, ok := h.model.Init().(state); ok && s.goroutines == 1 {
			for i, op := range ops {
				next, want := st.step(op.Input.(input))
				if want != op.Output.(output) {
					t.Logf("sequential mismatch at op %d: %v\n got  %v\n want %v\n state before: %s", i, op.Input, op.Output, want, st.key())
					break
				}
				st = next
			}
		}
		report("history %d is not linearizable (RATEKIT_LINCHECK_SEED=%#x replays its operations; the interleaving is the scheduler's); visualization: %s\n%s",
			runs-1, seed, visualization, describe(ops))
		return runs, visualization
	}
	return runs, ""
}

// withStamps returns ops with, for each Take of 0 < n <= maxBurst, an
// operation Stamp of its time and n, called after the Take was called and
// returning before it returned (times are scaled by 4 to make room), and
// ops itself if maxBurst <= 0. A Take that no other goroutine's operation
// overlapped gets none: it cannot have lost its compare-and-swap, there
// being no other writer, so it raised the bound only if admitted.
//
// tokenbucket's Take raises the bound on stamps before its compare-and-swap
// (see its Refund): a Take that loses the CAS raises it at one instant and
// is decided at a later one, when it retries, and a Refund between the two
// sees the raise. The Take may then be admitted or denied; a denied one
// leaves the raise in place. So the raise is an event of its own, somewhere
// in the Take's interval, which the model may take or not (a Take whose n
// no Burst admits never raises; one that never found room does not either,
// but the history cannot tell it from one that did).
func withStamps(ops []porcupine.Operation, maxBurst int) []porcupine.Operation {
	if maxBurst <= 0 {
		return ops
	}
	out := make([]porcupine.Operation, 0, len(ops)+len(ops)/2)
	for i, op := range ops {
		op.Call, op.Return = 4*op.Call, 4*op.Return
		out = append(out, op)
		if in := op.Input.(input); in.Kind == opTake && 0 < in.N && in.N <= maxBurst && overlapped(ops, i) {
			in.Kind = opStamp
			out = append(out, porcupine.Operation{ClientId: op.ClientId, Input: in, Output: output{}, Call: op.Call + 1, Return: op.Return - 1})
		}
	}
	return out
}

// overlapped reports whether another goroutine's operation overlapped
// ops[i] in time.
func overlapped(ops []porcupine.Operation, i int) bool {
	op := ops[i]
	for _, o := range ops {
		if o.ClientId != op.ClientId && o.Call < op.Return && op.Call < o.Return {
			return true
		}
	}
	return false
}

// overlaps counts the operations during which another goroutine's
// operation was called or returned.
func overlaps(ops []porcupine.Operation) int {
	type event struct {
		at     int64
		client int
	}
	var events []event
	for _, op := range ops {
		events = append(events, event{op.Call, op.ClientId}, event{op.Return, op.ClientId})
	}
	slices.SortFunc(events, func(a, b event) int { return int(a.at - b.at) })
	n := 0
	for _, op := range ops {
		i, _ := slices.BinarySearchFunc(events, op.Call, func(e event, at int64) int { return int(e.at - at) })
		for ; i < len(events) && events[i].at <= op.Return; i++ {
			if events[i].client != op.ClientId {
				n++
				break
			}
		}
	}
	return n
}

// describe lists a history in call order.
func describe(ops []porcupine.Operation) string {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "  g%d [%d,%d] %v -> %v\n", op.ClientId, op.Call, op.Return, op.Input, op.Output)
	}
	return b.String()
}

// mustCheck checks a limiter that must be linearizable.
func mustCheck(t *testing.T, step time.Duration, newHistory func(t *testing.T, r *rand.Rand) *history) {
	check(t, step, newHistory, t.Errorf)
}

// defaultSteps is the search budget of one history, in steps of its
// model's states (see budgeted): 16 times the longest search seen in 525
// histories of the keyed checks, the slowest there are (31k steps; on a
// machine at load 24 on 2 cores, such searches took up to 20 seconds, the
// 20s timeout this budget replaced).
const defaultSteps = 500_000

// budgeted returns m counting its Step calls in steps; once they pass
// budget, every Step fails, so porcupine's search backtracks out at once
// and reports Illegal. Such a result is no verdict: the caller tells it
// from a refutation by steps > budget. Unlike porcupine's timeout, which
// reads the wall clock and so fires sooner on a loaded machine, the budget
// depends on the history alone (a search over given operations is
// deterministic), not on how fast the machine runs it. A search that ends
// within it is complete: Ok and Illegal are then porcupine's verdicts.
func budgeted(m porcupine.Model, budget int64) (porcupine.Model, *atomic.Int64) {
	steps := new(atomic.Int64)
	// porcupine calls StepContext, made from Step if nil; a
	// NondeterministicModel's ToModel sets both.
	if step := m.Step; step != nil {
		m.Step = func(s, in, out any) (bool, any) {
			if steps.Add(stepCost(s)) > budget {
				return false, s
			}
			return step(s, in, out)
		}
	}
	if step := m.StepContext; step != nil {
		m.StepContext = func(ctx context.Context, s, in, out any) (bool, any) {
			if steps.Add(stepCost(s)) > budget {
				return false, s
			}
			return step(ctx, s, in, out)
		}
	}
	return m, steps
}

// stepCost is what a Step from state s costs: a NondeterministicModel's
// state is the set of its model's states, as a []any, and each of them
// takes a step of its own.
func stepCost(s any) int64 {
	if set, ok := s.([]any); ok {
		return int64(max(len(set), 1))
	}
	return 1
}
