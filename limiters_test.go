package ratekit_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/ratekit/ratekit"
)

// counter is a test Holder: Capacity units that come back only when released
// or refunded. Denials report a fixed RetryAfter; allowed decisions a fixed
// ResetAfter, so tests can set up which member binds.
type counter struct {
	mu       sync.Mutex
	name     string
	capacity int
	used     int
	retry    time.Duration
	reset    time.Duration
	takes    int // allowed Takes of n > 0, to see which members were asked
	peeks    int
}

var _ ratekit.Holder = (*counter)(nil)

func newCounter(name string, capacity int, retry, reset time.Duration) *counter {
	return &counter{name: name, capacity: capacity, retry: retry, reset: reset}
}

func (c *counter) decide(n int, take bool) ratekit.Decision {
	d := ratekit.Decision{Limit: c.capacity, Policy: c.name, Remaining: c.capacity - c.used}
	switch {
	case n < 0 || n > c.capacity:
		d.RetryAfter = ratekit.Never
	case c.used+n > c.capacity:
		d.RetryAfter = c.retry
	default:
		d.Allowed = true
		d.Remaining -= n
		if take {
			c.used += n
			if n > 0 {
				c.takes++
			}
		}
		if c.capacity-d.Remaining > 0 {
			d.ResetAfter = c.reset
		}
	}
	return d
}

func (c *counter) Take(_ time.Time, n int) ratekit.Decision {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decide(n, true)
}

func (c *counter) Peek(_ time.Time, n int) ratekit.Decision {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peeks++
	return c.decide(n, false)
}

func (c *counter) Refund(_ time.Time, n int) { c.Release(n) }

func (c *counter) Release(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 {
		c.used = max(0, c.used-n)
	}
}

func (c *counter) Idle(time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used == 0
}

func (c *counter) Used() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

func (c *counter) MarshalBinary() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.AppendUvarint([]byte("ctr"), uint64(c.used)), nil
}

func (c *counter) UnmarshalBinary(b []byte) error {
	if len(b) < 4 || string(b[:3]) != "ctr" {
		return fmt.Errorf("%w: counter: bad header", ratekit.ErrInvalidState)
	}
	v, n := binary.Uvarint(b[3:])
	if n <= 0 || 3+n != len(b) || v > uint64(c.capacity) {
		return fmt.Errorf("%w: counter: bad payload", ratekit.ErrInvalidState)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = int(v)
	return nil
}

// ticker is a test rate limiter: one unit per period, no burst. It is what
// the Wait tests wait on.
type ticker struct {
	mu     sync.Mutex
	period time.Duration
	next   time.Time
	takes  int
}

func (k *ticker) Take(now time.Time, n int) ratekit.Decision {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.decide(now, n, true)
}

func (k *ticker) Peek(now time.Time, n int) ratekit.Decision {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.decide(now, n, false)
}

func (k *ticker) decide(now time.Time, n int, take bool) ratekit.Decision {
	d := ratekit.Decision{Limit: 1, Window: k.period}
	switch {
	case n < 0 || n > 1:
		d.RetryAfter = ratekit.Never
	case n == 0:
		d.Allowed = true
	case now.Before(k.next):
		d.RetryAfter = k.next.Sub(now)
		d.ResetAfter = d.RetryAfter
	default:
		d.Allowed = true
		d.ResetAfter = k.period
		if take {
			k.next = now.Add(k.period)
			k.takes++
		}
	}
	return d
}

func (k *ticker) Refund(time.Time, int) {}

func (k *ticker) Takes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.takes
}
