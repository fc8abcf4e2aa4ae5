package ratekit

import "time"

// All is a set of limiters that admit a request together or not at all: a
// user-defined daily quota and a system per-minute ceiling on one token, or
// per-org, per-token and per-IP tiers on one HTTP request. Whichever member
// is hit first decides, and a request that one member refuses counts against
// none of the others.
//
// Build it with AllOf. *All is itself a Holder, so composites nest. It is
// safe for concurrent use if its members are; its member list is fixed.
//
// Nil members mean "no limit", the same in AllOf, TakeAll, PeekAll and
// ReleaseAll: a nil Limiter interface, or one holding a nil pointer (a
// typed nil, such as a nil *tokenbucket.Limiter from a lookup that found
// no limit for a user), is skipped, never called, so it admits everything
// and holds nothing. A composite whose members are all nil admits as
// AllOf() does.
type All struct {
	members []Limiter
	joint   jointPlan // members decided together (see TakeAll), planned once
}

var _ Holder = (*All)(nil)

// AllOf returns a limiter that admits n units only when every member admits
// them, all or none (see TakeAll). The members slice is copied, without its
// nil members (see All). AllOf() with no members admits every request of
// n >= 0.
func AllOf(members ...Limiter) *All {
	ms := make([]Limiter, 0, len(members))
	for _, m := range members {
		if !isNil[Limiter](m) {
			ms = append(ms, m)
		}
	}
	a := &All{members: ms}
	if !a.joint.plan(ms, nil) {
		a.joint = jointPlan{}
	}
	return a
}

// Members returns a copy of the member list, in order.
func (a *All) Members() []Limiter {
	return append([]Limiter(nil), a.members...)
}

// Take is TakeAll(now, n, members...).
func (a *All) Take(now time.Time, n int) (d Decision) {
	if a.joint.k != 0 {
		if _, ok := a.joint.take(&d, now, n, nil); ok {
			return d
		}
	}
	d, _ = decideEach(now, a.members, n, false)
	return d
}

// Peek is PeekAll(now, n, members...).
func (a *All) Peek(now time.Time, n int) (d Decision) {
	if a.joint.k != 0 && a.joint.peek(&d, now, n) {
		return d
	}
	d, _ = decideEach(now, a.members, n, true)
	return d
}

// Refund refunds n units at `at` to every member: the inverse of an allowed
// Take. Holders among the members are released.
func (a *All) Refund(at time.Time, n int) {
	for _, m := range a.members {
		m.Refund(at, n)
	}
}

// Release releases n units from the Holders among the members, for a request
// that was admitted by Take and has finished. Rate members keep what was
// taken: their units come back with time.
func (a *All) Release(n int) { ReleaseAll(n, a.members...) }

// TakeAll takes n units at now from every member, or from none.
//
// Members are asked in order. If all admit, the units stay taken and the
// Decision describes the binding member: the one with the least Remaining
// (ties: the longest ResetAfter). If a member denies, every member that had
// already admitted is refunded at now, the members after it are asked with
// Peek, and the Decision is the denial with the longest RetryAfter among all
// that would deny, so a client that waits that long is not refused again by
// another member.
//
// All or none holds under any interleaving of concurrent callers: units are
// only ever taken by a member's own atomic Take and given back by its exact
// Refund, so a denied TakeAll never leaves units taken and never lets more
// in than each member admits on its own. While a TakeAll is between a Take
// and its rollback, a concurrent caller may see those units as taken and be
// denied; it is never wrongly admitted. Put the member most likely to deny
// first: it makes the rollback rare.
//
// Members that all keep their state in one word (token buckets, fixed
// windows, rolling windows and sliding Counters, two to four of them, none
// listed twice nor beside a copy of itself, see Limiter) are decided together instead, with no rollback: TakeAll
// locks each member's word, decides every member on it, and stores all the
// new words or none, so a concurrent caller never sees units that a denied
// TakeAll took, and the TakeAll is one atomic step. Other members, and
// mixes, take the path above. The Decision is the same either way.
//
// TakeAll does not allocate and asks each member once when all admit. Nil
// members are skipped (see All). With no members other than nil ones it
// admits n >= 0 and denies n < 0 with RetryAfter Never.
func TakeAll(now time.Time, n int, members ...Limiter) (d Decision) {
	if takeJoint(&d, now, n, members) {
		return d
	}
	d, _ = decideEach(now, members, n, false)
	return d
}

// PeekAll reports what TakeAll(now, n, members...) would decide, taking
// nothing. It does not allocate. Nil members are skipped (see All).
//
// Members that TakeAll decides together are read together: PeekAll
// reports what TakeAll would have decided at one instant, holding each
// member's word but the last for that instant as TakeAll does (a Take of
// one of them meanwhile waits). A decision that TakeAll leaves to its
// other path (one a member's Take would write on a refusal, such as the
// first refusal of a window, which calls OnLimitReached, or a token
// bucket's at a time far from its epoch) is peeked member by member, as
// other members and mixes are: each Peek is exact, but under concurrent
// Takes they may describe different instants.
func PeekAll(now time.Time, n int, members ...Limiter) (d Decision) {
	var p jointPlan
	if p.plan(members, nil) && p.peek(&d, now, n) {
		return d
	}
	d, _ = decideEach(now, members, n, true)
	return d
}

// ReleaseAll releases n units from every Holder among members (rate limiters
// are skipped: their units come back with time; so are nil members, see
// All). Call it when a request admitted by TakeAll over the same members has
// finished.
func ReleaseAll(n int, members ...Limiter) {
	for _, m := range members {
		if h, ok := m.(Holder); ok && !isNil[Limiter](m) {
			h.Release(n)
		}
	}
}

// binds reports whether the allowed decision d binds more tightly than cur:
// less Remaining, or as much and a longer ResetAfter.
func binds(d, cur Decision) bool {
	if d.Remaining != cur.Remaining {
		return d.Remaining < cur.Remaining
	}
	return d.ResetAfter > cur.ResetAfter
}

func emptyDecision(n int) Decision {
	if n < 0 {
		return Decision{RetryAfter: Never}
	}
	return Decision{Allowed: true}
}
