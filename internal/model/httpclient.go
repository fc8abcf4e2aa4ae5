package model

// This file is the reference model of httpclient's per-host pacing (the
// host type in httpclient/pace.go). It keeps every bound a response gave in
// a plain slice, with no cap and no merging, and decides the same way the
// package documents; the fuzz test in httpclient drives both with the same
// operations and requires the same decisions as long as the real host has
// not had to merge bounds to stay within its cap.

import (
	"math"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// PaceReason mirrors httpclient.Reason for the decisions the model makes.
type PaceReason string

// The reasons a Pacer gives; "" when a request goes at once.
const (
	HoldOff   PaceReason = "hold-off"
	Exhausted PaceReason = "quota-exhausted"
	Pacing    PaceReason = "pacing"
	InFlight  PaceReason = "in-flight"
)

// PaceBound is "at most Budget more requests before ResetAt" (no ResetAt:
// until the next response), recorded at Epoch.
type PaceBound struct {
	Budget  int
	ResetAt time.Time
	Limit   int
	Epoch   uint64
}

// Pacer is the model of one host's pacing state.
type Pacer struct {
	Pace      int // Config.PaceBelow; 0 or less: never spread
	MaxCount  int // the cap on a budget (httpclient's maxCount)
	NotBefore time.Time
	Bounds    []PaceBound
	Limit     int
	Epoch     uint64    // responses recorded so far
	Horizon   time.Time // when the spreading under way ends
	ProbeDue  bool      // a horizon has passed with no response since
	// Interval is the pacer's interval: the spacing when the spreading
	// under way began (or when the first paced request came, if later).
	Interval time.Duration
	HasPacer bool
	InFlight int
	Pending  int
}

// low: the bound has a reset to spread over, pacing is on, and its budget
// is at most Pace percent of its limit (any budget when the limit is
// unknown).
func (p *Pacer) low(b PaceBound) bool {
	return !b.ResetAt.IsZero() && p.Pace > 0 && (b.Limit == 0 || b.Budget*100 <= b.Limit*p.Pace)
}

// Admit returns whether a request may go at now; whether it must first be
// paced (then it is pending until Send or Cancel); the epoch it goes at, if
// at once; how long to wait before asking again, if not admitted; and why.
// The model decides whether pacing is needed, and at what interval
// (Spacing), not when each slot comes: that is the pacer's (tokenbucket's)
// business, tested there.
func (p *Pacer) Admit(now time.Time) (admitted, paced bool, epoch uint64, wait time.Duration, why PaceReason) {
	if now.Before(p.NotBefore) {
		return false, false, 0, p.NotBefore.Sub(now), HoldOff
	}
	// Bounds whose reset has come lapse; if none is left, assume the
	// whole Limit less what is in flight or pending.
	var kept []PaceBound
	for _, b := range p.Bounds {
		if b.ResetAt.IsZero() || now.Before(b.ResetAt) {
			kept = append(kept, b)
		}
	}
	lapsed := len(kept) < len(p.Bounds)
	if lapsed && len(kept) == 0 && p.Limit > 0 {
		kept = []PaceBound{{Budget: max(p.Limit-p.InFlight-p.Pending, 0), Limit: p.Limit, Epoch: p.Epoch}}
	}
	p.Bounds = kept
	if lapsed {
		p.endSpread()
	}
	// The spreading under way reached its horizon: one probe is due.
	if !p.Horizon.IsZero() && !now.Before(p.Horizon) {
		p.Horizon = time.Time{}
		p.ProbeDue = true
	}

	// A bound with nothing left and a reset: wait for the latest such
	// reset, unless a probe is due and every such bound has a limit.
	var exhausted time.Duration
	limitless := false
	for _, b := range p.Bounds {
		if b.Budget == 0 && !b.ResetAt.IsZero() {
			if b.ResetAt.Sub(now) > exhausted {
				exhausted = b.ResetAt.Sub(now)
			}
			if b.Limit == 0 {
				limitless = true
			}
		}
	}
	if exhausted > 0 {
		if !p.ProbeDue || limitless {
			return false, false, 0, exhausted, Exhausted
		}
		p.ProbeDue = false
		for i := range p.Bounds {
			if p.Bounds[i].Budget > 0 {
				p.Bounds[i].Budget--
			}
		}
		p.InFlight++
		return true, false, p.Epoch, 0, ""
	}
	// A bound with nothing left and no reset: wait for a response, or
	// probe with one request if none is coming.
	probe := false
	for _, b := range p.Bounds {
		if b.Budget == 0 && b.ResetAt.IsZero() {
			if p.InFlight+p.Pending > 0 {
				return false, false, 0, 0, InFlight
			}
			probe = true
		}
	}
	spread := false
	for _, b := range p.Bounds {
		if b.Budget > 0 && p.low(b) {
			spread = true
		}
	}
	if spread && !probe {
		starting := p.Horizon.IsZero()
		g := p.Spacing(now)
		paced = g > 0
		if paced && (starting || !p.HasPacer) {
			p.Interval, p.HasPacer = g, true
		}
	}
	for i := range p.Bounds {
		if p.Bounds[i].Budget > 0 {
			p.Bounds[i].Budget--
		}
	}
	if paced {
		p.Pending++
		return true, true, 0, 0, Pacing
	}
	p.InFlight++
	return true, false, p.Epoch, 0, ""
}

// Spacing returns the interval at which requests must go from now for each
// low budget to last until its end (its reset, or the horizon if sooner),
// the widest over the low bounds; a spreading that begins fixes its horizon
// at the latest reset among them.
func (p *Pacer) Spacing(now time.Time) time.Duration {
	if p.Horizon.IsZero() {
		for _, b := range p.Bounds {
			if b.Budget > 0 && p.low(b) && b.ResetAt.After(p.Horizon) {
				p.Horizon = b.ResetAt
			}
		}
	}
	var gap time.Duration
	for _, b := range p.Bounds {
		if b.Budget > 0 && p.low(b) {
			end := b.ResetAt
			if p.Horizon.Before(end) {
				end = p.Horizon
			}
			g := end.Sub(now)
			if g < 0 {
				g = 0
			}
			if g/time.Duration(b.Budget) > gap {
				gap = g / time.Duration(b.Budget)
			}
		}
	}
	if gap > 1<<60 { // the longest interval a token bucket of Burst 1 takes
		gap = 1 << 60
	}
	return gap
}

// Send is called when a pending request's slot has come: 0 and the epoch
// it goes at, else the hold-off still ahead.
func (p *Pacer) Send(now time.Time) (time.Duration, uint64) {
	if now.Before(p.NotBefore) {
		return p.NotBefore.Sub(now), 0
	}
	p.Pending--
	p.InFlight++
	return 0, p.Epoch
}

// Cancel gives a pending request's unit back to every bound.
func (p *Pacer) Cancel() {
	p.Pending--
	for i := range p.Bounds {
		if p.Bounds[i].Budget < p.MaxCount {
			p.Bounds[i].Budget++
		}
	}
}

// Record applies the response to a request sent at epoch sent, received at
// now: a hold-off (negative: none) and, if ok, Remaining, Limit and Reset
// (0: none).
func (p *Pacer) Record(sent uint64, now time.Time, holdOff time.Duration, remaining, limit int, reset time.Duration, ok bool) {
	p.InFlight--
	p.Epoch++
	if holdOff >= 0 && now.Add(holdOff).After(p.NotBefore) {
		p.NotBefore = now.Add(holdOff)
	}
	p.ProbeDue = false
	if !ok {
		return
	}
	nb := PaceBound{Budget: max(remaining-p.InFlight-p.Pending, 0), Limit: limit, Epoch: p.Epoch}
	if reset > 0 {
		nb.ResetAt = now.Add(reset)
	}
	// Keep every bound recorded after the request was sent (this response
	// may be older than it) that has a reset still ahead; bounds without
	// one last only until this response.
	var kept []PaceBound
	for _, b := range p.Bounds {
		if b.Epoch > sent && !b.ResetAt.IsZero() && now.Before(b.ResetAt) {
			kept = append(kept, b)
		}
	}
	p.Bounds = append(kept, nb)
	p.Limit = limit
	p.endSpread()
}

// endSpread ends the spreading (its horizon) when no bound is low.
func (p *Pacer) endSpread() {
	for _, b := range p.Bounds {
		if p.low(b) {
			return
		}
	}
	p.Horizon = time.Time{}
}

// RetryAfter is the reference reading of a Retry-After value: delta seconds,
// whole or decimal, computed exactly with big rationals, floored to the
// nanosecond and saturated at the largest time.Duration; or an HTTP-date,
// whose delay from ref is never negative.
func RetryAfter(v string, ref time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if decimal.MatchString(v) {
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			return 0, false
		}
		r.Mul(r, big.NewRat(int64(time.Second), 1))
		n := new(big.Int).Quo(r.Num(), r.Denom()) // floor: both are positive
		if !n.IsInt64() {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(n.Int64()), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(ref); d > 0 {
		return d, true
	}
	return 0, true
}

var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
