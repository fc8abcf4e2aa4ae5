package conformance

import (
	"encoding"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
)

// refundReconfigure holds the refund contract and "units taken stay counted
// whatever limits Reconfigure sets and unsets" together, over random
// scripts that mix them: Takes at instants spread over several windows
// (stale ones included), Reconfigures of the capacity down and up, restores
// of the limiter's own state, and refunds of earlier admitted Takes, some
// of them across a Reconfigure or a restore. A twin runs the same script
// without the Takes that are refunded (but those refunded across a
// restore, whose refund gives nothing back: see refundReconfigureScript),
// taking only what the limiter under test admitted; both are reconfigured
// and restored alike. At the end, the
// capacity back at Capacity, the limiter must admit no more in one Take,
// at any query instant, than its twin: a refund may give back less than it
// took, never more, and no limit set in between may make a unit taken
// disappear. The seed is logged and read back from SeedEnv.
//
// Anchored limiters are left out (a refund there cannot undo a window the
// refunded Take opened; see refund_interleave.go), as are subjects that
// cannot be reconfigured.
func (s Subject) refundReconfigure(t *testing.T) {
	if !s.reconfigureCheck(t) {
		return
	}
	if s.Anchored {
		t.Skip("an anchored limiter's refund cannot undo the window its Take opened (see RefundInterleaved)")
	}
	rng := rand.New(rand.NewPCG(seed(t), 0x5eed))
	w, c := s.window(t), s.Capacity
	_, canSave := s.New(t).(encoding.BinaryMarshaler)
	canSave = canSave && !s.Holder
	offset := func() time.Duration {
		d := time.Duration(rng.IntN(4)) * w / 4
		switch rng.IntN(4) {
		case 0:
			d += time.Duration(rng.IntN(3)) // nanoseconds
		case 1:
			d += time.Duration(rng.Int64N(int64(w)))
		}
		return d - w + time.Duration(rng.IntN(3))*w // -w to 3w
	}
	rounds := 400
	if testing.Short() {
		rounds = 80
	}
	// First the targeted scripts: a Take, then a Reconfigure at Start
	// (the same capacity, or down and up), when the bucket or window is
	// full again, or not, then the refund. A limiter that re-reads its
	// state at the Reconfigure's instant (a token bucket's empty part,
	// carried from there) has forgotten the Take by then: the refund must
	// not give it back at the instants before.
	half := max(c/2, 1)
	targeted := [][]rcOp{
		{{kind: rcTake, at: -w, n: half, refund: true}, {kind: rcReconf, n: c}, {kind: rcRefund}},
		{{kind: rcTake, at: -w, n: half, refund: true}, {kind: rcReconf, n: 2 * c}, {kind: rcReconf, n: c}, {kind: rcTake, at: -w + w/4, n: 1}, {kind: rcRefund}},
		{{kind: rcTake, at: -w / 2, n: c, refund: true}, {kind: rcReconf, n: c}, {kind: rcRefund}},
		{{kind: rcTake, at: 0, n: half, refund: true}, {kind: rcReconf, n: 1}, {kind: rcReconf, n: c}, {kind: rcRefund}},
		// A full window, then a Take a window on, which moves a sliding
		// Counter's word past it (it forgets it), refunded after the
		// limit went down: at stale instants the forgotten window must
		// count as what it held, not as the lowered limit.
		{{kind: rcTake, at: -3 * w / 4, n: c}, {kind: rcTake, at: w, n: c, refund: true}, {kind: rcReconf, n: half}, {kind: rcRefund}},
		// A twin holds the refunded Take's units fewer than the limiter:
		// a Log whose ring a lowered Limit shrank to the units it held
		// then had to overwrite, in the twin, a unit the limiter kept,
		// and judged the instants where it counts by its conservative
		// lost mark (found by a random round: 1000 admitted at
		// Start+39h-1ns of a 1000/day Log where the twin admits 0). A
		// twin must not be made stricter than its Takes by such a rule.
		{{kind: rcTake, at: -w/2 + 1, n: max(c/3, 1)}, {kind: rcReconf, n: half},
			{kind: rcTake, at: w/2 + 1, n: max(c/3, 1), refund: true}, {kind: rcReconf, n: 2 * c},
			{kind: rcTake, at: 3*w/4 + 2, n: max(c/3, 1)}, {kind: rcReconf, n: half},
			{kind: rcTake, at: 2*w - w/14, n: half}, {kind: rcReconf, n: 2 * c}, {kind: rcRefund}},
	}
	for i, script := range targeted {
		s.refundReconfigureScript(t, fmt.Sprintf("targeted script %d", i), script, nil)
	}
	for round := range rounds {
		var script []rcOp
		for range 3 + rng.IntN(10) {
			switch op := rng.IntN(10); {
			case op < 5:
				script = append(script, rcOp{kind: rcTake, at: offset(), n: []int{1, max(c/3, 1), half, c}[rng.IntN(4)], refund: rng.IntN(2) == 0})
			case op < 7:
				script = append(script, rcOp{kind: rcReconf, n: []int{1, half, c, 2 * c}[rng.IntN(4)]})
			case op < 8 && canSave:
				script = append(script, rcOp{kind: rcRestore})
			default:
				script = append(script, rcOp{kind: rcRefund})
			}
		}
		s.refundReconfigureScript(t, fmt.Sprintf("round %d", round), script, rng)
	}
}

// rcOp is one step of a refundReconfigure script.
type rcOp struct {
	kind   int
	at     time.Duration // rcTake: from Start
	n      int           // rcTake: units; rcReconf: the capacity
	refund bool          // rcTake: refunded later, so the twin does not take it
}

const (
	rcTake = iota
	rcReconf
	rcRestore
	rcRefund // the pending refunded Take picked by the rng, or the first
)

// refundReconfigureScript runs script on a limiter and its twin (see
// refundReconfigure), refunds what is left pending, and compares them.
//
// A refund of a Take made before a restore of the limiter's own state, and
// refunded after it, gives nothing back: the Take's units may have been
// counted in the replaced state, not the restored one (every algorithm's
// UnmarshalBinary says so). So the twin takes those Takes, and the limiter
// must admit no more than a twin that kept them. (Against a twin that never
// took them it may admit more, and rightly: a Log whose Limit went down
// keeps a ring of the units it holds, and the twin, holding one unit fewer,
// overwrites a unit the limiter keeps and so judges the instants where
// that unit counts by its conservative lost mark.) The script runs on the
// limiter first, which tells which refunds cross a restore, then on the
// twin.
func (s Subject) refundReconfigureScript(t *testing.T, name string, script []rcOp, rng *rand.Rand) {
	t.Helper()
	w, c := s.window(t), s.Capacity
	type take struct {
		op       int // its index in script
		at       time.Duration
		n        int
		restores int // restores before it
	}
	l, twin := s.New(t), s.New(t)
	roundTrip := func(x ratekit.Limiter) {
		t.Helper()
		b, err := x.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary: %v", err)
		}
		if err := x.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary of its own state: %v", err)
		}
	}
	var hist []string
	var pending []take // admitted by l, to be refunded
	admitted := make([]bool, len(script))
	kept := make([]bool, len(script)) // refunded across a restore: the twin takes them
	restores := 0
	refund := func(i int) {
		p := pending[i]
		l.Refund(s.Start.Add(p.at), p.n)
		kept[p.op] = restores > p.restores
		hist = append(hist, fmt.Sprintf("Refund(%s, %d)", signed(p.at), p.n))
		pending = append(pending[:i], pending[i+1:]...)
	}
	for i, op := range script {
		switch op.kind {
		case rcTake:
			ok := l.Take(s.Start.Add(op.at), op.n).Allowed
			admitted[i] = ok
			if ok && op.refund {
				pending = append(pending, take{i, op.at, op.n, restores})
			}
			hist = append(hist, fmt.Sprintf("Take(%s, %d)=%v refunded=%v", signed(op.at), op.n, ok, ok && op.refund))
		case rcReconf:
			s.reconfigure(t, l, op.n)
			hist = append(hist, fmt.Sprintf("Reconfigure(%d)", op.n))
		case rcRestore:
			roundTrip(l)
			restores++
			hist = append(hist, "restore own state")
		case rcRefund:
			if len(pending) > 0 {
				i := 0
				if rng != nil {
					i = rng.IntN(len(pending))
				}
				refund(i)
			}
		}
	}
	for len(pending) > 0 {
		refund(0)
	}
	for i, op := range script {
		switch op.kind {
		case rcTake:
			if admitted[i] && (!op.refund || kept[i]) {
				twin.Take(s.Start.Add(op.at), op.n)
			}
		case rcReconf:
			s.reconfigure(t, twin, op.n)
		case rcRestore:
			roundTrip(twin)
		}
	}
	// No Reconfigure back to Capacity here: one after the refunds would
	// read both states afresh at Start and hide what the refunds gave.
	for q := -2 * w; q <= 5*w; q += w / 8 {
		for _, e := range []time.Duration{-1, 0} {
			at := s.Start.Add(q + e)
			if got, want, more := s.admitsMore(l, twin, at); more {
				t.Fatalf("%s: at Start%s the limiter admits %d, its twin (no refunded Takes, but those refunded across a restore) %d\nwindow %v, capacity %d; script: %s",
					name, signed(q+e), got, want, w, c, strings.Join(hist, ", "))
			}
		}
	}
}
