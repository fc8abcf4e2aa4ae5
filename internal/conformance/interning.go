package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
)

// Interning describes how a word-state algorithm's New shares parameters
// between the limiters of equal Configs (internal/cell's Interner), for the
// checks of Run: C is the package's Config, L its limiter. Every func field
// but those marked optional must be set.
type Interning[C any, L ratekit.Limiter] struct {
	New        func(C) (L, error)
	SameParams func(a, b L) bool // a and b decide with one parameter set
	Interned   func() int        // the parameter sets New shares
	// Start is the instant the checks take and peek at.
	Start time.Time
	// Config is a valid Config whose Decision Limit is at least 6, and
	// Others Configs that each differ from it in one field, the map key.
	Config C
	Others map[string]C
	// Numbered returns the i-th of many distinct Configs: its Decision
	// Limit is 1+i%7 and its Name fmt.Sprint(i).
	Numbered func(i int) C
	// Template, optional, returns a deprecated Template's limiter of a
	// Config, which must be New's.
	Template func(C) L
	// Unhashable, optional, is a Config whose Clock cannot be a map key.
	Unhashable *C
	// Reconfigure and Inline, optional, are the limiter's Reconfigure and
	// whether its state is still in its inline block; Config2, a Config
	// of a larger Decision Limit than Config's.
	Reconfigure func(L, C) error
	Inline      func(L) bool
	Config2     C
	// PerKey, optional, is the most a limiter of New may cost in bytes.
	PerKey float64
}

// Run runs the checks, each a subtest.
func (s Interning[C, L]) Run(t *testing.T) {
	t.Run("NewSharesParams", s.sharesParams)
	t.Run("InternBounded", s.internBounded)
	if s.Reconfigure != nil {
		t.Run("ReconfigureLeavesSiblings", s.reconfigureLeavesSiblings)
	}
	if s.PerKey > 0 {
		t.Run("NewMemory", s.newMemory)
	}
}

func (s Interning[C, L]) must(t *testing.T, c C) L {
	t.Helper()
	l, err := s.New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return l
}

// capacity is the Decision Limit of l's Config.
func (s Interning[C, L]) capacity(l L) int { return l.Peek(s.Start, 0).Limit }

// separate checks that a and b, which may share parameters, share nothing
// else: a drained leaves b full.
func (s Interning[C, L]) separate(t *testing.T, a, b L) {
	t.Helper()
	c := s.capacity(a)
	if !a.Take(s.Start, c).Allowed || a.Take(s.Start, 1).Allowed {
		t.Fatalf("a fresh limiter did not admit exactly its Limit %d", c)
	}
	if got := b.Peek(s.Start, 0).Remaining; got != s.capacity(b) {
		t.Fatalf("a sibling drained, the other has %d left; want %d", got, s.capacity(b))
	}
}

// sharesParams: New with equal Configs shares one parameter set (an
// OnLimitReached compared by identity, a Clock as an interface value), so
// that a factory calling New per key costs what a Template's limiter does;
// Configs that differ in anything do not share; sharing parameters is
// sharing nothing else. A Config whose Clock cannot be hashed is not
// interned, and New neither panics nor fails.
func (s Interning[C, L]) sharesParams(t *testing.T) {
	a, b := s.must(t, s.Config), s.must(t, s.Config)
	if !s.SameParams(a, b) {
		t.Fatal("two limiters of one Config do not share parameters")
	}
	if s.Template != nil && !s.SameParams(a, s.Template(s.Config)) {
		t.Fatal("a Template's limiter does not share New's parameters")
	}
	for name, c := range s.Others {
		if s.SameParams(a, s.must(t, c)) {
			t.Errorf("Configs that differ in %s share parameters", name)
		}
	}
	s.separate(t, a, b)
	if s.Unhashable != nil {
		if a, b := s.must(t, *s.Unhashable), s.must(t, *s.Unhashable); s.SameParams(a, b) {
			t.Error("limiters of an unhashable Config share parameters")
		} else {
			s.separate(t, a, b)
		}
	}
}

// internBounded: distinct Configs beyond the intern table's bound (a
// Config per key, say named by its key) do not grow it without end, and
// every limiter still decides by its own Config.
func (s Interning[C, L]) internBounded(t *testing.T) {
	ls := make([]L, cell.MaxInterned+100)
	for i := range ls {
		ls[i] = s.must(t, s.Numbered(i))
	}
	if got := s.Interned(); got > cell.MaxInterned {
		t.Fatalf("%d parameter sets interned; the bound is %d", got, cell.MaxInterned)
	}
	for i, l := range ls {
		if d := l.Peek(s.Start, 0); d.Limit != 1+i%7 || d.Policy != fmt.Sprint(i) {
			t.Fatalf("limiter %d decides with Limit %d, Policy %q; want %d, %q", i, d.Limit, d.Policy, 1+i%7, fmt.Sprint(i))
		}
	}
}

// reconfigureLeavesSiblings: a limiter's Reconfigure moves its state to
// the parameters of its new Config (shared with New's limiters of that
// Config) and out of its inline block, keeping its count; its siblings,
// which shared its old parameters, are as they were. Back on the first
// Config, it shares its siblings' parameters again.
func (s Interning[C, L]) reconfigureLeavesSiblings(t *testing.T) {
	a, b := s.must(t, s.Config), s.must(t, s.Config)
	c, c2 := s.capacity(a), s.capacity(s.must(t, s.Config2))
	if !s.Inline(a) || !a.Take(s.Start, 4).Allowed || !b.Take(s.Start, 1).Allowed {
		t.Fatal("fresh limiters: not inline, or a Take denied")
	}
	if err := s.Reconfigure(a, s.Config2); err != nil {
		t.Fatal(err)
	}
	if s.Inline(a) || !s.Inline(b) || !s.SameParams(a, s.must(t, s.Config2)) || !s.SameParams(b, s.must(t, s.Config)) {
		t.Error("after one sibling's Reconfigure: want it out of line on its new Config's parameters, the other as it was")
	}
	if got := a.Peek(s.Start, 0).Remaining; got != c2-4 {
		t.Errorf("reconfigured: %d left; want %d, its 4 units still counted", got, c2-4)
	}
	if got := b.Peek(s.Start, 0); got.Remaining != c-1 || got.Limit != c {
		t.Errorf("the sibling has %d of %d left; want %d of %d", got.Remaining, got.Limit, c-1, c)
	}
	if err := s.Reconfigure(a, s.Config); err != nil {
		t.Fatal(err)
	}
	if !s.SameParams(a, b) || a.Peek(s.Start, 0).Remaining != c-4 {
		t.Errorf("back on the first Config: shares %v, %d left; want true, %d", s.SameParams(a, b), a.Peek(s.Start, 0).Remaining, c-4)
	}
}

// newMemory: New per key costs one allocation, at most PerKey bytes, its
// parameters shared (#17: no more per key than a Template's).
func (s Interning[C, L]) newMemory(t *testing.T) {
	s.must(t, s.Config) // interned once
	if got := testing.AllocsPerRun(100, func() { _, _ = s.New(s.Config) }); got != 1 {
		t.Fatalf("New allocates %v times; want 1", got)
	}
	perKey := BytesPer(100_000, func() L {
		l, _ := s.New(s.Config)
		return l
	})
	t.Logf("%.1f bytes per New limiter", perKey)
	if perKey > s.PerKey {
		t.Fatalf("%.1f bytes per New limiter; want at most %v", perKey, s.PerKey)
	}
}
