package ratekit

import (
	"time"
	"unsafe"

	"github.com/ratekit/ratekit/internal/cell"
)

// maxJoint bounds the members takeJoint decides together: its state lives
// on the stack, so a composite of more takes the general path.
const maxJoint = 8

// takeJoint is TakeAll, into *dec, for members that all keep their state
// in one word of internal/cell (token buckets, fixed windows, sliding
// Counters): it locks every member, in the order of their addresses, decides each
// on its locked word, and stores every new word or, if one member denies,
// every old one. So it is all or none with no refund, and a concurrent
// caller never sees units a denied TakeAll took (see Joint decisions in
// internal/cell's documentation, which argues why it is exact).
//
// It reports false, having changed nothing, when the general path must
// decide: fewer than two members that are not nil, more than maxJoint, a
// member that is not a cell.Jointer, one that cannot be locked or whose
// decision must write on a denial or replace its state (see cell.Joint).
// The Decision is filled once, for the binding member, chosen as
// decideEach chooses it.
func takeJoint(dec *Decision, now time.Time, n int, members []Limiter) bool {
	var (
		js    [maxJoint]cell.Joint
		addr  [maxJoint]uintptr // each member's address: the lock order
		slot  [maxJoint]uint8   // each member's hold
		holds [maxJoint]cell.Hold
		words [maxJoint]int64 // each hold's word, as the decisions so far leave it
		stamp [maxJoint]int64 // each hold's stamp, the latest its decisions raise
	)
	k := 0
	for _, m := range members {
		if isNilLimiter(m) {
			continue
		}
		jr, ok := m.(cell.Jointer)
		if !ok || k == maxJoint {
			return false
		}
		js[k] = jr.Joint()
		addr[k] = uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&m))[1])
		k++
	}
	if k < 2 {
		return false // one member's own Take is cheaper than a lock
	}

	// The lock order: members sorted by address (insertion sort: k <= 8),
	// a member listed twice sharing one hold.
	var order [maxJoint]uint8
	for i := range k {
		j := i
		for ; j > 0 && addr[order[j-1]] > addr[i]; j-- {
			order[j] = order[j-1]
		}
		order[j] = uint8(i)
	}
	nh := 0
	for x := range k {
		i := order[x]
		if x > 0 && addr[order[x-1]] == addr[i] {
			slot[i] = slot[order[x-1]]
			continue
		}
		h, ok := js[i].Lock()
		if !ok {
			release(holds[:nh])
			return false
		}
		holds[nh], words[nh], stamp[nh] = h, h.Word, cell.NoStamp
		slot[i] = uint8(nh)
		nh++
	}

	// Decide in the members' order, as decideEach asks them: each admitted
	// Take on the word the earlier ones left; once one denies, the rest as
	// Peeks of the locked words, for the longest denial.
	bi, di := -1, -1 // the binding admission, the longest denial
	var bv, dv cell.Verdict
	for i := range k {
		u := slot[i]
		w := words[u]
		if di >= 0 {
			w = holds[u].Word
		}
		next, st, v, slow := js[i].Decide(holds[u].P, w, now, n)
		if slow {
			release(holds[:nh])
			return false
		}
		switch {
		case di >= 0:
			if !v.OK && v.Retry > dv.Retry {
				di, dv = i, v
			}
		case !v.OK:
			di, dv = i, v
		default:
			words[u], stamp[u] = next, max(stamp[u], st)
			if bi < 0 || v.Remaining < bv.Remaining || v.Remaining == bv.Remaining && v.Reset > bv.Reset {
				bi, bv = i, v
			}
		}
		if di >= 0 && dv.Retry == Never {
			break
		}
	}
	if di >= 0 {
		release(holds[:nh])
		bi, bv = di, dv
	} else {
		for u := range nh {
			holds[u].Commit(words[u], stamp[u])
		}
	}
	dec.Allowed = bv.OK
	dec.Limit, dec.Window, dec.Policy = js[bi].Policy(holds[slot[bi]].P)
	dec.Remaining = bv.Remaining
	dec.ResetAfter = bv.Reset
	dec.RetryAfter = bv.Retry
	return true
}

// release unlocks every hold, storing back the words they locked.
func release(holds []cell.Hold) {
	for u := range holds {
		holds[u].Release()
	}
}
