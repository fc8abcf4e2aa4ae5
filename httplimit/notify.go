package httplimit

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit"
)

// notifySlots is the size of the table that deduplicates OnLimitReached
// calls. It bounds memory (8 KiB) whatever the number of keys; more keys
// denied at once than slots only means some notices repeat.
const notifySlots = 1024

// notifier calls OnLimitReached once per tier and key per episode of being
// limited, without a map that a flood of keys could grow.
//
// Each slot is one atomic word: a 24-bit fingerprint of (tier, key) above a
// 40-bit deadline in milliseconds since the notifier's epoch (2^40 ms is
// about 34 years). A denial of (tier, key) whose slot holds its fingerprint
// and a deadline still ahead is a repeat and is not reported; any other
// denial claims the slot with a CAS and is reported, with the deadline set to
// when the key is expected to be admitted again at full capacity (the
// longer of RetryAfter and ResetAfter), rounded down to the millisecond. Two keys sharing a slot evict each
// other, which can only repeat a notice, never lose one, unless their
// fingerprints also collide (1 in 2^24 of slot collisions).
type notifier struct {
	fn    func(policy, key string, d ratekit.Decision)
	seed  maphash.Seed
	epoch time.Time
	slots [notifySlots]atomic.Uint64
}

const (
	deadlineBits = 40
	deadlineMask = 1<<deadlineBits - 1
)

func newNotifier(fn func(policy, key string, d ratekit.Decision), epoch time.Time) *notifier {
	return &notifier{fn: fn, seed: maphash.MakeSeed(), epoch: epoch}
}

// limitReached reports the denial d of tier (its index and name) on key, unless
// it is a repeat. Denials that waiting cannot cure (RetryAfter Never) are not
// limits being reached and are never reported.
func (n *notifier) limitReached(now time.Time, tier int, name, key string, d ratekit.Decision) {
	if d.Allowed || d.RetryAfter == ratekit.Never {
		return
	}
	h := maphash.String(n.seed, key) ^ (uint64(tier+1) * 0x9e3779b97f4a7c15)
	slot := &n.slots[h%notifySlots]
	fp := (h >> 32) & (1<<(64-deadlineBits) - 1)
	nowMs := toMillis(now.Sub(n.epoch))
	// Both terms round down, so the deadline is never later than the
	// episode's true end: a denial in the next episode is always reported
	// (one in the episode's last two milliseconds may be reported again).
	until := min(nowMs+toMillis(max(d.RetryAfter, d.ResetAfter)), deadlineMask)
	for {
		old := slot.Load()
		if old>>deadlineBits == fp && nowMs < old&deadlineMask {
			return // already reported for this episode
		}
		if slot.CompareAndSwap(old, fp<<deadlineBits|until) {
			n.fn(name, key, d)
			return
		}
	}
}

// toMillis converts d to milliseconds, clamped to [0, deadlineMask].
func toMillis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return min(uint64(d/time.Millisecond), deadlineMask)
}
