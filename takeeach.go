package ratekit

import (
	"time"
	"unsafe"
)

// Ask is one member of a TakeEach: a limiter, the units asked of it, and,
// once TakeEach returns, that member's own answer.
type Ask struct {
	// Limiter is the member. A nil member (a nil interface, or a typed nil
	// such as a nil *tokenbucket.Limiter: see All) is never called: its
	// Verdict admits any N >= 0 and denies a negative N with Never.
	Limiter Limiter
	// N is the units asked of this member (members may be asked for
	// different amounts: bytes of one, requests of another).
	N int
	// Verdict is set by TakeEach to this member's own Decision: its Take
	// for the members asked before a denial (for those before the
	// refusing member the units were given back since, so its Remaining
	// understates what is left by N), its denial for the member that
	// refused, and a Peek of N for the members after it.
	Verdict Decision
}

// TakeEach is TakeAll with a cost per member, and it says who decided: it
// takes asks[i].N units from every asks[i].Limiter, or takes nothing, sets
// each Verdict, and returns the composite Decision and the index of the
// member it describes.
//
// If every member admits, the units stay taken, and the Decision and index
// are the binding member's, as TakeAll's: the least Remaining, ties to the
// longest ResetAfter. If a member denies, the members before it are
// refunded (Refund(now, N), as TakeAll does), the members after it are
// asked with Peek (all of them, so every Verdict is filled), and the
// Decision and index are those of the denial with the longest RetryAfter
// (ties: the first). A caller therefore learns which members refused (the
// Verdicts that are not Allowed) without asking any member again: a refused
// request costs one Take per member up to the refusing one, a Refund per
// member before it and a Peek per member after it.
//
// All or none holds as for TakeAll, under any interleaving; TakeAll is
// TakeEach with the same N for every member (the two loops differ only in
// where they keep their answers, and share the refusal path). TakeEach
// allocates nothing; the caller owns asks and may reuse it. Asks that
// TakeAll would decide together (none nil, none listed twice) are decided
// together here too, with no refund, and the Verdicts are the same.
// Nil members never bind an admission; with no asks, or only nil ones
// asked for N >= 0, it admits with index -1.
func TakeEach(now time.Time, asks []Ask) (Decision, int) {
	if asks == nil {
		return emptyDecision(0), -1
	}
	// Asks whose members can be decided together (see plan): take fills
	// every Verdict, or changes nothing and leaves them to the loop below.
	// Planned here rather than in a helper: one call level less is 16
	// instructions (callgrind).
	var p jointPlan
	if p.plan(nil, asks) {
		if bi, ok := p.take(nil, now, 0, asks); ok {
			return asks[bi].Verdict, bi // decided together, as TakeAll's members are
		}
	}
	// The admitting members, written out for asks: each Take goes straight
	// into its Verdict, and the binding one is kept as an index, so that an
	// admission copies no Decision but the one it returns.
	bi := -1
	var rem int // the binding member's Remaining and ResetAfter, as binds compares
	var reset time.Duration
	asking := -1 // see decideEach
	defer unwind(now, nil, 0, asks, &asking)
	for i := range asks {
		a := &asks[i]
		if isNilLimiter(a.Limiter) {
			if a.Verdict = emptyDecision(a.N); !a.Verdict.Allowed {
				return refuseAt(now, nil, 0, asks, i, a.Verdict)
			}
			continue
		}
		asking = i
		a.Verdict = a.Limiter.Take(now, a.N)
		asking = -1
		if !a.Verdict.Allowed {
			return refuseAt(now, nil, 0, asks, i, a.Verdict)
		}
		if v := &a.Verdict; bi < 0 || v.Remaining < rem || v.Remaining == rem && v.ResetAfter > reset {
			bi, rem, reset = i, v.Remaining, v.ResetAfter
		}
	}
	if bi < 0 {
		return emptyDecision(0), -1
	}
	return asks[bi].Verdict, bi
}

// decideEach is the general path of TakeAll and PeekAll: it asks
// members[i] for n units each, with Peek (taking nothing) when peek is set
// and otherwise with Take. It returns the composite Decision and the index
// of the member it describes (-1: none did). Nil members (see All) are
// never called, and skipped. TakeEach is the same loop over its asks; all
// three refuse through refuseAt.
func decideEach(now time.Time, members []Limiter, n int, peek bool) (Decision, int) {
	var bind Decision
	bi := -1
	// A member's Take may panic (an OnLimitReached that panics, called by
	// the Take that denies): the members before it admitted, and unwinding
	// gives their units back, as the denial would have (see unwind).
	asking := -1
	if !peek {
		defer unwind(now, members, n, nil, &asking)
	}
	for i, l := range members {
		if isNilLimiter(l) {
			continue
		}
		var d Decision
		if peek {
			d = l.Peek(now, n)
		} else {
			asking = i
			d = l.Take(now, n)
			asking = -1
		}
		if !d.Allowed {
			if peek {
				return longestDenial(now, members, n, nil, i, d)
			}
			return refuseAt(now, members, n, nil, i, d)
		}
		if bi < 0 || binds(d, bind) {
			bind, bi = d, i
		}
	}
	if bi < 0 {
		return emptyDecision(n), -1
	}
	return bind, bi
}

// refuseAt ends a take that member i denied with d: the members before it
// are refunded (those that admitted; nil ones took nothing), and the
// answer is longestDenial's.
func refuseAt(now time.Time, members []Limiter, n int, asks []Ask, i int, d Decision) (Decision, int) {
	for j := range i {
		if l, k := member(members, n, asks, j); !isNilLimiter(l) {
			l.Refund(now, k)
		}
	}
	return longestDenial(now, members, n, asks, i, d)
}

// unwind, deferred by the loops that Take member by member, gives back
// the units of the members before *asking, the index of the member whose
// Take was running (-1: none), when that Take panicked: every member
// before it admitted, so the call, which never returns, counts against
// none of them, as a denial would not. It does not recover the panic.
func unwind(now time.Time, members []Limiter, n int, asks []Ask, asking *int) {
	if *asking >= 0 {
		for j := range *asking {
			if l, k := member(members, n, asks, j); !isNilLimiter(l) {
				l.Refund(now, k)
			}
		}
	}
}

// member returns the limiter and units of member i of a list: asks when
// it is not nil, else members, each asked for n.
func member(members []Limiter, n int, asks []Ask, i int) (Limiter, int) {
	if asks != nil {
		return asks[i].Limiter, asks[i].N
	}
	return members[i], n
}

// longestDenial returns, of member i's denial d and the denials that Peek
// reports for the members after it, the one with the longest RetryAfter
// (ties: the first) and its index. TakeEach's members are all asked, to
// fill every Verdict; TakeAll's and PeekAll's only until a denial says
// Never, which no other can exceed.
func longestDenial(now time.Time, members []Limiter, n int, asks []Ask, i int, d Decision) (Decision, int) {
	bi := i
	count := len(members)
	if asks != nil {
		count = len(asks)
	}
	for j := i + 1; j < count; j++ {
		if asks == nil && d.RetryAfter == Never {
			break
		}
		l, k := member(members, n, asks, j)
		var p Decision
		switch {
		case !isNilLimiter(l):
			p = l.Peek(now, k)
		case asks == nil:
			continue
		default:
			p = emptyDecision(k)
		}
		if asks != nil {
			asks[j].Verdict = p
		}
		if !p.Allowed && p.RetryAfter > d.RetryAfter {
			d, bi = p, j
		}
	}
	return d, bi
}

// isNilLimiter reports whether l is a nil member (see All): a nil
// interface, or a nil pointer (map, func, chan) in one.
//
// It runs for every member of every composite call, so it reflects only
// when it must. An interface value is two words, a type and a data word;
// the data word of a non-nil pointer (map, func, chan) is that pointer,
// and of any other value a pointer to a copy of it, never nil. Only a nil
// data word can therefore belong to a typed nil, and isNil tells which
// (a struct holding one nil pointer has a nil data word too, but is not
// nil).
func isNilLimiter(l Limiter) bool {
	return l == nil || (*[2]unsafe.Pointer)(unsafe.Pointer(&l))[1] == nil && isNil(l)
}
