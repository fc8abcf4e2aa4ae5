package slidingwindow

import (
	"time"

	"github.com/ratekit/ratekit/internal/cell"
)

// Joint is internal to ratekit, not for use: ratekit.TakeAll decides the
// limiters it returns it for together, all or none, with no refund (see
// internal/cell). Its result's type is internal and may change.
func (c *Counter) Joint() cell.Joint { return (*counterJoint)(c) }

// counterJoint is a Counter as a cell.Joint. (The Log keeps more than a
// word and takes the general path.)
type counterJoint Counter

func (j *counterJoint) Lock() (cell.Hold, bool) {
	return cell.LockHold(&j.c), true
}

// Decide is Take's decision on a locked word.
func (j *counterJoint) Decide(e cell.Erased, w int64, now time.Time, n int) (int64, int64, cell.Verdict, bool) {
	p := cell.ParamsOf[counterParams](e)
	next, store, v := p.decide(uint64(w), p.since(now), n)
	if !store {
		next = uint64(w)
	}
	return int64(next), cell.NoStamp, cell.Verdict{Remaining: v.remaining, Reset: v.reset, Retry: v.retry, OK: v.ok}, false
}

func (j *counterJoint) Policy(e cell.Erased) (int, time.Duration, string) {
	p := cell.ParamsOf[counterParams](e)
	return p.limit, time.Duration(p.window), p.name
}
