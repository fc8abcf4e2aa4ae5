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
// it starts: their Member views, in the members' order, and that order
// sorted by address, the order they are locked in. AllOf makes it once;
// TakeAll on the stack for each call.
type jointPlan struct {
	ms    [maxJoint]cell.Member
	self  [maxJoint]any   // each member as the composite holds it (see cell.Member)
	order [maxJoint]uint8 // the members in lock order
	k     int             // how many; 0: the general path
}

// plan fills p for members and reports whether they can be decided
// together: two to maxJoint members that are not nil, every one a
// cell.Member and none listed twice (its decisions would depend on the
// order it is asked in). Nil members are skipped.
func (p *jointPlan) plan(members []Limiter) bool {
	var addr [maxJoint]uintptr
	for _, m := range members {
		if !isNilLimiter(m) && !p.add(&addr, m) {
			return false
		}
	}
	return p.k >= 2 // one member's own Take is cheaper than a lock
}

// planAsks is plan for TakeEach's asks, none of which may be nil (a nil
// member's Verdict is TakeEach's to fill).
func (p *jointPlan) planAsks(asks []Ask) bool {
	var addr [maxJoint]uintptr
	for i := range asks {
		if m := asks[i].Limiter; isNilLimiter(m) || !p.add(&addr, m) {
			return false
		}
	}
	return p.k >= 2
}

// add appends m to the plan, keeping order sorted by address (insertion
// sort: k <= maxJoint), and reports whether it could: false for a member
// that is not a cell.Member, one listed twice, or one too many.
func (p *jointPlan) add(addr *[maxJoint]uintptr, m Limiter) bool {
	jm, ok := m.(cell.Member)
	if !ok || p.k == maxJoint {
		return false
	}
	k := p.k
	p.ms[k] = jm
	p.self[k] = m
	a := uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&m))[1])
	j := k
	for ; j > 0 && addr[p.order[j-1]] > a; j-- {
		p.order[j] = p.order[j-1]
	}
	if j > 0 && addr[p.order[j-1]] == a {
		return false // listed twice
	}
	p.order[j], addr[k] = uint8(k), a
	p.k++
	return true
}

// takeJoint is TakeAll, into *dec, for members that all keep their state
// in one word of internal/cell (see plan), or false, having changed
// nothing, for the general path.
func takeJoint(dec *Decision, now time.Time, n int, members []Limiter) bool {
	var p jointPlan
	if !p.plan(members) {
		return false
	}
	_, ok := p.take(dec, now, n, nil)
	return ok
}

// takeEachJoint is TakeEach for asks whose members can be decided together
// (see planAsks): it fills every Verdict and returns the index of the one
// that decides, or false, having changed nothing, for the general path.
func takeEachJoint(now time.Time, asks []Ask) (int, bool) {
	var p jointPlan
	if !p.planAsks(asks) {
		return -1, false
	}
	return p.take(nil, now, 0, asks)
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
// The member that decides is decideEach's: of the admissions, the least
// Remaining, ties to the longest ResetAfter and then to the first; of the
// denials, the longest RetryAfter, ties to the first. take returns its
// index and fills its Decision once, into *dec, or, for TakeEach, every
// member's Verdict, as TakeEach's general path would (the members before
// a denial with what their Take would have said). It reports false,
// having changed nothing, when a member's decision is one this path leaves
// to the general one (see cell.Hold's Slow).
func (p *jointPlan) take(dec *Decision, now time.Time, n int, asks []Ask) (int, bool) {
	var steps [maxJoint]cell.Step
	k, last := p.k, p.k-1
	for x := range last {
		i := p.order[x]
		if asks != nil {
			n = asks[i].N
		}
		h, mv, v := p.ms[i].Joint(p.self[i], true, now, n)
		if h.Slow() {
			release(&steps, p.order[:x])
			return -1, false
		}
		s := &steps[i]
		s.Hold, s.Move, s.V = h, mv, v
	}
	il := p.order[last]
	if asks != nil {
		n = asks[il].N
	}
	for {
		h, mv, v := p.ms[il].Joint(p.self[il], false, now, n)
		if h.Slow() {
			release(&steps, p.order[:last])
			return -1, false
		}
		s := &steps[il]
		s.Hold, s.Move, s.V = h, mv, v
		bi, di := -1, -1 // the binding admission, the longest denial
		for i := range k {
			v := &steps[i].V
			switch {
			case !v.OK:
				if di < 0 || v.Retry > steps[di].V.Retry {
					di = i
				}
			case di >= 0:
			case bi < 0, v.Remaining < steps[bi].V.Remaining,
				v.Remaining == steps[bi].V.Remaining && v.Reset > steps[bi].V.Reset:
				bi = i
			}
		}
		if di >= 0 {
			release(&steps, p.order[:last])
			bi = di
		} else {
			if s := &steps[il]; !s.CompareAndCommit(s.Next, s.Stamp) {
				continue // the last member changed since it was loaded: decide it again
			}
			for _, i := range p.order[:last] {
				s := &steps[i]
				s.Commit(s.Next, s.Stamp)
			}
		}
		if asks == nil {
			fill(dec, p.ms[bi], &steps[bi])
			return bi, true
		}
		for i := range k {
			fill(&asks[i].Verdict, p.ms[i], &steps[i])
		}
		return bi, true
	}
}

// fill writes the Decision of s, m's Step, into *d, field by field.
func fill(d *Decision, m cell.Member, s *cell.Step) {
	d.Allowed = s.V.OK
	d.Limit, d.Window, d.Policy = m.JointPolicy(s.Hold)
	d.Remaining = s.V.Remaining
	d.ResetAfter = s.V.Reset
	d.RetryAfter = s.V.Retry
}

// release unlocks the members in locked, storing back their words.
func release(steps *[maxJoint]cell.Step, locked []uint8) {
	for _, i := range locked {
		steps[i].Release()
	}
}
