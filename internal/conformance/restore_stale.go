package conformance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// restoreStale holds "state survives a restart" to "a stale time never
// admits more": a limiter restored from its own MarshalBinary must decide,
// at every instant, stale ones included, no more generously than the
// limiter it was saved from. A restore may forget what no instant counts
// any more, or count more than it must; it may not forget a unit that some
// instant, however stale, still counts.
//
// Random scripts of Takes at instants spread over several windows (stale
// ones included, nanoseconds apart and whole windows apart) and Refunds of
// earlier admitted Takes run on a limiter and on a twin. Both are fresh, so
// they must decide every Take alike and, at the end, admit alike at every
// query instant (the twin is never marshalled: it shows what the original
// decides). Then the limiter's state is saved and restored into a fresh
// limiter (a restart), and also into the limiter that saved it (a round
// trip of its own state); the restored copy is saved and restored once
// more. At every query instant, on a grid over the script's windows and
// next to each stamp (a nanosecond before, at, a Window on and a
// nanosecond before that), each restored limiter must admit, in one Take,
// no more than the twin.
//
// Limiters without MarshalBinary and UnmarshalBinary, and Holders, are
// skipped. The seed is logged and read back from SeedEnv.
func (s Subject) restoreStale(t *testing.T) {
	marshal, restore := s.saver(t)
	w, c := s.window(t), s.Capacity
	rng := rand.New(rand.NewPCG(seed(t), 0x57a1e))
	third, half := max(c/3, 1), max(c/2, 1)
	// The targeted scripts first: units that expire at the newest instant
	// the limiter saw but count a nanosecond before it (a sliding log that
	// saves only what counts at its clock forgets them), and windows
	// refunded to zero (a word that looks fresh but is not, at stale
	// instants).
	targeted := [][]rsOp{
		{{at: 0, n: half}, {at: w, n: third}},
		{{at: 0, n: half}, {at: w - 1, n: 1}, {at: w, n: third}},
		{{at: 0, n: half}, {at: w / 2, n: third}, {at: 2 * w, n: 1}},
		{{at: 0, n: c}, {at: w + w/3, n: c, refund: true}, {refundNext: true}},
		{{at: -w / 2, n: c}, {at: w, n: third, refund: true}, {refundNext: true}},
		{{at: 0, n: c}, {at: w / 4, n: 0}, {at: 2 * w, n: half, refund: true}, {refundNext: true}},
		{{at: 0, n: third, refund: true}, {at: w / 2, n: third}, {refundNext: true}},
	}
	for i, script := range targeted {
		s.restoreStaleScript(t, fmt.Sprintf("targeted script %d", i), script, marshal, restore, nil)
	}
	offset := func() time.Duration {
		d := time.Duration(rng.IntN(8)) * w / 4
		switch rng.IntN(4) {
		case 0:
			d += time.Duration(rng.IntN(3)) - 1 // nanoseconds either side
		case 1:
			d += time.Duration(rng.Int64N(int64(w)))
		}
		return d - w // -w to 3w
	}
	// 60 rounds keep a Log of 1000 under 3 s with -race on a loaded
	// machine; the seed varies from run to run.
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	for round := range rounds {
		var script []rsOp
		for range 2 + rng.IntN(8) {
			if rng.IntN(4) == 0 {
				script = append(script, rsOp{refundNext: true})
				continue
			}
			script = append(script, rsOp{at: offset(), n: []int{1, third, half, c}[rng.IntN(4)], refund: rng.IntN(3) == 0})
		}
		s.restoreStaleScript(t, fmt.Sprintf("round %d", round), script, marshal, restore, rng)
	}
}

// rsOp is one step of a restoreStale script: a Take of n at Start+at
// (refunded later if refund is set and it was admitted), or, with
// refundNext, the Refund of a pending refunded Take (the rng's pick, or
// the first).
type rsOp struct {
	at         time.Duration
	n          int
	refund     bool
	refundNext bool
}

// restoreStaleScript runs script on a limiter and its twin, refunds what is
// left pending, restores the limiter's state (see restoreStale) and
// compares.
func (s Subject) restoreStaleScript(t *testing.T, name string, script []rsOp,
	marshal func(ratekit.Limiter) []byte, restore func(ratekit.Limiter, []byte), rng *rand.Rand) {
	t.Helper()
	w := s.window(t)
	type take struct {
		at time.Duration
		n  int
	}
	l, twin := s.New(t), s.New(t)
	var hist []string
	var pending []take
	stamps := []time.Duration{0}
	refund := func(i int) {
		p := pending[i]
		l.Refund(s.Start.Add(p.at), p.n)
		twin.Refund(s.Start.Add(p.at), p.n)
		hist = append(hist, fmt.Sprintf("Refund(%s, %d)", signed(p.at), p.n))
		pending = append(pending[:i], pending[i+1:]...)
	}
	for _, op := range script {
		if op.refundNext {
			if len(pending) > 0 {
				i := 0
				if rng != nil {
					i = rng.IntN(len(pending))
				}
				refund(i)
			}
			continue
		}
		at := s.Start.Add(op.at)
		got, want := l.Take(at, op.n).Allowed, twin.Take(at, op.n).Allowed
		hist = append(hist, fmt.Sprintf("Take(%s, %d)=%v", signed(op.at), op.n, got))
		if got != want {
			t.Fatalf("%s: two fresh limiters decided Take(Start%s, %d) differently (%v, %v); script: %s",
				name, signed(op.at), op.n, got, want, strings.Join(hist, ", "))
		}
		stamps = append(stamps, op.at)
		if got && op.refund {
			pending = append(pending, take{op.at, op.n})
		}
	}
	for len(pending) > 0 {
		refund(0)
	}

	state := marshal(l)
	fresh := s.New(t)
	restore(fresh, state)
	own := l
	restore(own, marshal(own))
	again := s.New(t)
	restore(again, marshal(fresh))
	restored := []struct {
		what string
		l    ratekit.Limiter
	}{
		{"restored into a fresh limiter", fresh},
		{"restored from its own state", own},
		{"restored twice", again},
	}

	var queries []time.Duration
	for q := -2 * w; q <= 5*w; q += w / 8 {
		queries = append(queries, q-1, q)
	}
	for _, at := range stamps {
		queries = append(queries, at-1, at, at+w-1, at+w, at+2*w-1)
	}
	slices.Sort(queries)
	queries = slices.Compact(queries)
	for _, q := range queries {
		at := s.Start.Add(q)
		want := s.capacity(twin, at)
		for _, r := range restored {
			if got := s.capacity(r.l, at); got > want {
				t.Fatalf("%s: %s, the limiter admits %d at Start%s; the limiter it was saved from %d\n"+
					"window %v, capacity %d; script: %s; state of %d bytes",
					name, r.what, got, signed(q), want, w, s.Capacity, strings.Join(hist, ", "), len(state))
			}
		}
	}
}
