package ratekit

import (
	"time"
	"unsafe"

	"github.com/ratekit/ratekit/internal/cell"
)

// maxJoint bounds the members decided together: their state lives on the
// stack (or in an All), so a composite of more takes the general path.
// Composites are short: tiers per org, token and IP are three, Rollbar's
// user and system limits two.
const maxJoint = 4

// jointPlan is what a joint decision needs to know of its members before
// it starts: their Member views sorted by address, the order they are
// locked in, and where each stands in the members' order. AllOf makes it
// once; TakeAll and TakeEach on the stack for each call. Keeping the
// members in lock order, not an index into them, saves a dependent load
// and a bounds check per member on every decision.
type jointPlan struct {
	ms   [maxJoint]cell.Member // in lock order
	self [maxJoint]any         // each as the composite holds it (see cell.Member)
	idx  [maxJoint]uint8       // each one's index in the members' order
	k    int                   // how many; 0: the general path
}

// plan fills p for members, or for TakeEach's asks when asks is not nil,
// and reports whether they can be decided together: two to maxJoint
// members that are not nil, every one a cell.Member and no state listed
// twice (see below). Nil members
// are skipped; nil asks take the general path (a nil member's Verdict is
// TakeEach's to fill).
//
// TakeAll and TakeEach plan on every call, so this is one loop with no
// call but the type assertion (whose cache the runtime keeps per call
// site), and it gives up as soon as a member cannot join.
func (p *jointPlan) plan(members []Limiter, asks []Ask) bool {
	count := len(members)
	if asks != nil {
		count = len(asks)
	}
	var state [maxJoint]uintptr
	for i := range count {
		// The member where the caller keeps it: its data word is read
		// there, not from a copy the compiler would spill to the stack.
		var pm *Limiter
		if asks != nil {
			pm = &asks[i].Limiter
		} else {
			pm = &members[i]
		}
		data := (*[2]unsafe.Pointer)(unsafe.Pointer(pm))[1]
		a := uintptr(data)
		m := *pm
		if a == 0 {
			// A nil data word: a nil member (see isNilLimiter), which
			// TakeAll skips, or a value of a nil pointer that is not one.
			if asks == nil && isNilLimiter(m) {
				continue
			}
			return false
		}
		jm, ok := m.(cell.Member)
		if !ok || p.k >= maxJoint {
			return false
		}
		// A member listed twice, or beside a struct copy of itself, is one
		// state word asked twice: its decisions would depend on the order
		// it is asked in, and locking its word twice would wait for
		// itself. So duplicates are told by the state in force, not by the
		// limiter's address: a copy (which the Limiter contract forbids,
		// and go vet flags) is at another address but shares its
		// original's block. Each is compared with those before it,
		// written out (a loop costs more than its compares, callgrind).
		// Zero limiters, with no block, all compare equal: they take the
		// general path anyway (see cell.Member).
		st := cell.StateOf(data)
		switch k := p.k; k {
		case 3:
			if state[2] == st {
				return false
			}
			fallthrough
		case 2:
			if state[1] == st {
				return false
			}
			fallthrough
		case 1:
			if state[0] == st {
				return false
			}
			state[k] = st
		case 0:
			state[0] = st
		}
		// Insertion by address, each placed member's read from the data
		// word of its self (no array of addresses to zero and fill):
		// k < maxJoint.
		j := p.k
		for ; j > 0 && uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&p.self[j-1]))[1]) > a; j-- {
			p.ms[j], p.self[j], p.idx[j] = p.ms[j-1], p.self[j-1], p.idx[j-1]
		}
		p.ms[j], p.self[j], p.idx[j] = jm, m, uint8(p.k)
		p.k++
	}
	return p.k >= 2 // one member's own Take is cheaper than a lock
}

// takeJoint is TakeAll, into *dec, for members that all keep their state
// in one word of internal/cell (see plan), or false, having changed
// nothing, for the general path.
func takeJoint(dec *Decision, now time.Time, n int, members []Limiter) bool {
	var p jointPlan
	if !p.plan(members, nil) {
		return false
	}
	_, ok := p.take(dec, now, n, nil)
	return ok
}

// take decides the planned members together, into *dec. In lock order it
// locks every member but the last and loads the last, deciding each on the
// word it finds; then it either stores every new word, the last by CAS
// (its linearization point, while the others are locked; if the CAS fails
// it decides the last again), or, if a member denies, stores nothing but
// the locked words back. So it is all or none with no refund, and no
// caller ever sees units a denied TakeAll took (see Joint decisions in
// internal/cell's documentation, which argues why it is exact).
//
// Each member is asked for n units, or, for TakeEach, for its ask's N.
// The member that decides is bind's. take returns its index in the
// members' order and fills its Decision once, into *dec, or, for
// TakeEach, every member's Verdict, as TakeEach's general path would (the
// members before a denial with what their Take would have said). It
// reports false, having changed nothing, when a member's decision is one
// this path leaves to the general one (see cell.Hold's Slow).
func (p *jointPlan) take(dec *Decision, now time.Time, n int, asks []Ask) (int, bool) {
	var steps [maxJoint]cell.Step
	k := p.k
	if k < 2 || k > maxJoint {
		return -1, false // not planned; and, for the compiler, every x < k below is in range
	}
	wall := cell.Wall(now) // once for every member (see cell.Epoch)
	last := k - 1
	bl := 0 // the member that decides among the locked ones (see bind), chosen as they answer
	for x := range last {
		if asks != nil {
			n = asks[p.idx[x]].N
		}
		h, mv, v := p.ms[x].Joint(p.self[x], true, now, wall, n)
		if h.Slow() {
			release(&steps, x)
			return -1, false
		}
		s := &steps[x]
		s.Hold, s.Move, s.V = h, mv, v
		if x > 0 && verdictBinds(&s.V, &steps[bl].V, p.idx[x], p.idx[bl]) {
			bl = x
		}
	}
	if asks != nil {
		n = asks[p.idx[last]].N
	}
	for {
		h, mv, v := p.ms[last].Joint(p.self[last], false, now, wall, n)
		if h.Slow() {
			release(&steps, last)
			return -1, false
		}
		s := &steps[last]
		s.Hold, s.Move, s.V = h, mv, v
		b := bl // bind's answer, the last member compared once per decision
		if verdictBinds(&s.V, &steps[bl].V, p.idx[last], p.idx[bl]) {
			b = last
		}
		if !steps[b].V.OK {
			release(&steps, last)
		} else {
			if !s.CompareAndCommit(s.Next, s.Stamp) {
				continue // the last member changed since it was loaded: decide it again
			}
			for x := range last {
				s := &steps[x]
				s.Commit(s.Next, s.Stamp)
			}
		}
		if asks == nil {
			fill(dec, p.ms[b], &steps[b])
			return int(p.idx[b]), true
		}
		// fill, written out for each member: a call per member costs
		// more than its stores (callgrind).
		for x := range k {
			d, s := &asks[p.idx[x]].Verdict, &steps[x]
			d.Allowed = s.V.OK
			d.Limit, d.Window, d.Policy = p.ms[x].JointPolicy(s.Hold)
			d.Remaining = s.V.Remaining
			d.ResetAfter = s.V.Reset
			d.RetryAfter = s.V.Retry
		}
		return int(p.idx[b]), true
	}
}

// peek is PeekAll for the planned members, into *dec: what take would
// decide, read at one instant. It locks every member but the last, in lock
// order, loads the last, decides each on the word it found and stores the
// locked words back: while the last is loaded none of the others can
// change, so the words decided on are the members' state at that load
// (see Joint decisions in internal/cell's documentation). It reports
// false, having changed nothing, as take does.
//
// Reading without the locks cannot promise that: a word read twice, the
// same both times, may have changed and changed back in between (a Take
// and its exact Refund), so a lock-free double read of the words can
// still combine states of two instants. The price is take's: 2(k-1)
// locked instructions, and Takes of the locked members wait meanwhile.
func (p *jointPlan) peek(dec *Decision, now time.Time, n int) bool {
	var steps [maxJoint]cell.Step
	k := p.k
	if k < 2 || k > maxJoint {
		return false
	}
	wall := cell.Wall(now)
	last := k - 1
	for x := range last {
		h, mv, v := p.ms[x].Joint(p.self[x], true, now, wall, n)
		if h.Slow() {
			release(&steps, x)
			return false
		}
		s := &steps[x]
		s.Hold, s.Move, s.V = h, mv, v
	}
	h, mv, v := p.ms[last].Joint(p.self[last], false, now, wall, n)
	release(&steps, last)
	if h.Slow() {
		return false
	}
	s := &steps[last]
	s.Hold, s.Move, s.V = h, mv, v
	b := p.bind(&steps)
	fill(dec, p.ms[b], &steps[b])
	return true
}

// bind returns the lock position of the member that decides, as
// decideEach would pick it: of the admissions, the least Remaining, ties
// to the longest ResetAfter and then to the first in the members' order;
// any denial before an admission, and of the denials the longest
// RetryAfter, ties to the first.
func (p *jointPlan) bind(steps *[maxJoint]cell.Step) int {
	b, k := 0, min(p.k, maxJoint)
	for x := 1; x < k; x++ {
		if verdictBinds(&steps[x].V, &steps[b].V, p.idx[x], p.idx[b]) {
			b = x
		}
	}
	return b
}

// verdictBinds reports whether the verdict v of the member at iv in the members'
// order decides rather than w, of the member at iw (see bind). It
// inlines: take asks it as each member's answer comes.
func verdictBinds(v, w *cell.Verdict, iv, iw uint8) bool {
	switch {
	case v.OK != w.OK:
		return !v.OK
	case !v.OK:
		if v.Retry != w.Retry {
			return v.Retry > w.Retry
		}
	case v.Remaining != w.Remaining:
		return v.Remaining < w.Remaining
	case v.Reset != w.Reset:
		return v.Reset > w.Reset
	}
	return iv < iw
}

// fill writes the Decision of s, m's Step, into *d, field by field.
func fill(d *Decision, m cell.Member, s *cell.Step) {
	d.Allowed = s.V.OK
	d.Limit, d.Window, d.Policy = m.JointPolicy(s.Hold)
	d.Remaining = s.V.Remaining
	d.ResetAfter = s.V.Reset
	d.RetryAfter = s.V.Retry
}

// release unlocks the first locked members (in lock order), storing back
// their words.
func release(steps *[maxJoint]cell.Step, locked int) {
	for x := range locked {
		steps[x].Release()
	}
}
