package ratekit

import "time"

// Ask is one member of a TakeEach: a limiter, the units asked of it, and,
// once TakeEach returns, that member's own answer.
type Ask struct {
	// Limiter is the member. nil admits any N >= 0 and takes nothing, as
	// AllOf's nil members do.
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
// All or none holds as for TakeAll, under any interleaving. TakeEach
// allocates nothing; the caller owns asks and may reuse it. Nil members
// never bind an admission; with no asks, or only nil ones asked for N >= 0,
// it admits with index -1.
func TakeEach(now time.Time, asks []Ask) (Decision, int) {
	bind, bi := emptyDecision(0), -1
	for i := range asks {
		a := &asks[i]
		d := take(a.Limiter, now, a.N)
		a.Verdict = d
		if !d.Allowed {
			for j := range asks[:i] {
				if l := asks[j].Limiter; l != nil {
					l.Refund(now, asks[j].N)
				}
			}
			bind, bi = d, i
			for j := i + 1; j < len(asks); j++ {
				p := peek(asks[j].Limiter, now, asks[j].N)
				asks[j].Verdict = p
				if !p.Allowed && p.RetryAfter > bind.RetryAfter {
					bind, bi = p, j
				}
			}
			return bind, bi
		}
		if a.Limiter != nil && (bi < 0 || binds(d, bind)) {
			bind, bi = d, i
		}
	}
	return bind, bi
}

func take(l Limiter, now time.Time, n int) Decision {
	if l == nil {
		return emptyDecision(n)
	}
	return l.Take(now, n)
}

func peek(l Limiter, now time.Time, n int) Decision {
	if l == nil {
		return emptyDecision(n)
	}
	return l.Peek(now, n)
}
