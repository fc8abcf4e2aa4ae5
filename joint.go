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
	order [maxJoint]uint8 // the members in lock order
	k     int             // how many; 0: the general path
}

// plan fills p for members and reports whether they can be decided
// together: two to maxJoint members that are not nil, every one a
// cell.Member and none listed twice (its decisions would depend on the
// order it is asked in). Nil members are skipped.
func (p *jointPlan) plan(members []Limiter) bool {
	var addr [maxJoint]uintptr // each member's address: the lock order
	k := 0
	for _, m := range members {
		if isNilLimiter(m) {
			continue
		}
		jm, ok := m.(cell.Member)
		if !ok || k == maxJoint {
			return false
		}
		p.ms[k] = jm
		a := uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&m))[1])
		// Insertion sort by address (k <= maxJoint).
		j := k
		for ; j > 0 && addr[p.order[j-1]] > a; j-- {
			p.order[j] = p.order[j-1]
		}
		if j > 0 && addr[p.order[j-1]] == a {
			return false // listed twice
		}
		p.order[j], addr[k] = uint8(k), a
		k++
	}
	if k < 2 {
		return false // one member's own Take is cheaper than a lock
	}
	p.k = k
	return true
}

// takeJoint is TakeAll, into *dec, for members that all keep their state
// in one word of internal/cell (see plan), or false, having changed
// nothing, for the general path.
func takeJoint(dec *Decision, now time.Time, n int, members []Limiter) bool {
	var p jointPlan
	return p.plan(members) && p.take(dec, now, n)
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
// It reports false, having changed nothing, when a member's decision is
// one this path leaves to the general one (see cell.Step's Slow). The
// Decision is decideEach's: of the admissions, the least Remaining, ties
// to the longest ResetAfter and then to the first; of the denials, the
// longest RetryAfter, ties to the first. It is filled once, for that
// member.
func (p *jointPlan) take(dec *Decision, now time.Time, n int) bool {
	var steps [maxJoint]cell.Step
	k, last := p.k, p.k-1
	for x := range last {
		i := p.order[x]
		if steps[i] = p.ms[i].Joint(true, now, n); steps[i].Slow {
			release(&steps, p.order[:x])
			return false
		}
	}
	il := p.order[last]
	for {
		if steps[il] = p.ms[il].Joint(false, now, n); steps[il].Slow {
			release(&steps, p.order[:last])
			return false
		}
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
		s := &steps[bi]
		dec.Allowed = s.V.OK
		dec.Limit, dec.Window, dec.Policy = s.Policy(s.P)
		dec.Remaining = s.V.Remaining
		dec.ResetAfter = s.V.Reset
		dec.RetryAfter = s.V.Retry
		return true
	}
}

// release unlocks the members in locked, storing back their words.
func release(steps *[maxJoint]cell.Step, locked []uint8) {
	for _, i := range locked {
		steps[i].Release()
	}
}
