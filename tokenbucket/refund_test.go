package tokenbucket_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/tokenbucket"
)

// slowDeny is a TakeAll member that holds the TakeAll, between its earlier
// members' Takes and their rollback, until the test lets it deny.
type slowDeny struct{ entered, deny chan struct{} }

func (m slowDeny) Take(now time.Time, n int) ratekit.Decision {
	m.entered <- struct{}{}
	<-m.deny
	return m.Peek(now, n)
}
func (slowDeny) Peek(time.Time, int) ratekit.Decision {
	return ratekit.Decision{RetryAfter: time.Second, Policy: "slow"}
}
func (slowDeny) Refund(time.Time, int) {}

// Issue 16, item 2: TakeAll at t1 takes 5 from a bucket of Burst 10 that
// refills in 1 s; a slower member then denies; meanwhile callers stamped
// t2 = t1+1s take all 10 there is at t2; the rollback Refund(t1, 5) must not
// give back refill those callers already used. Had the 5 never been taken,
// the bucket would be empty at t2: nothing more passes at t2 (the old Refund
// let 5 more through, 15 at one instant).
func TestRefundAfterLaterStampedTakes(t *testing.T) {
	for _, viaTakeAll := range []bool{false, true} {
		l := mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: atT0()})
		t1, t2 := t0, t0.Add(time.Second)
		if viaTakeAll {
			m := slowDeny{entered: make(chan struct{}), deny: make(chan struct{})}
			done := make(chan ratekit.Decision)
			go func() { done <- ratekit.TakeAll(t1, 5, l, m) }()
			<-m.entered
			if d := l.Take(t2, 10); !d.Allowed {
				t.Fatalf("Take(t2, 10) = %v; want allowed (the bucket is full at t2)", d)
			}
			close(m.deny)
			if d := <-done; d.Allowed {
				t.Fatalf("TakeAll = %v; want the slow member's denial", d)
			}
		} else {
			if d := l.Take(t1, 5); !d.Allowed {
				t.Fatalf("Take(t1, 5) = %v", d)
			}
			if d := l.Take(t2, 10); !d.Allowed {
				t.Fatalf("Take(t2, 10) = %v; want allowed (the bucket is full at t2)", d)
			}
			l.Refund(t1, 5)
		}
		if d := l.Peek(t2, 1); d.Allowed || d.Remaining != 0 {
			t.Fatalf("TakeAll=%v: after 10 taken at t2 and the refund of 5 taken at t1, Peek(t2, 1) = %v; want denied, 0 remaining",
				viaTakeAll, d)
		}
		// It is exactly the state of a bucket that only saw Take(t2, 10).
		twin := mustNew(t, tokenbucket.Config{Limit: 10, Window: time.Second, Burst: 10, Clock: atT0()})
		twin.Take(t2, 10)
		for _, at := range []time.Duration{0, time.Second, 1500 * time.Millisecond, 2 * time.Second} {
			if got, want := l.Peek(t1.Add(at), 1), twin.Peek(t1.Add(at), 1); got != want {
				t.Fatalf("TakeAll=%v: Peek(t1+%v) = %v; a bucket that never saw the refunded Take says %v", viaTakeAll, at, got, want)
			}
		}
	}
}

// A refund with no Take in between restores exactly, at every instant from
// the Take's stamp on, whatever the bucket held: full, partly used (the
// refunded Take then starts from the TAT, later than its stamp), or used
// long before. (A Take stamped earlier than one admitted before it is
// refunded conservatively: see Refund.)
func TestRefundRestoresExactly(t *testing.T) {
	cfg := tokenbucket.Config{Limit: 7, Window: 10 * time.Second, Burst: 5, Clock: atT0()}
	for _, pre := range [][2]int64{{0, 0}, {0, 2}, {-1, 3}, {-3, 2}, {-30, 5}} {
		l, twin := mustNew(t, cfg), mustNew(t, cfg)
		if pre[1] > 0 {
			at := t0.Add(time.Duration(pre[0]) * time.Second)
			l.Take(at, int(pre[1]))
			twin.Take(at, int(pre[1]))
		}
		if !l.Take(t0, 2).Allowed {
			t.Fatalf("pre %v: Take(t0, 2) denied", pre)
		}
		l.Refund(t0, 2)
		for at := time.Duration(0); at < 20*time.Second; at += 357 * time.Millisecond {
			for _, n := range []int{1, 5} {
				if got, want := l.Peek(t0.Add(at), n), twin.Peek(t0.Add(at), n); got != want {
					t.Fatalf("pre %v: after Take(t0, 2) and Refund(t0, 2), Peek(t0+%v, %d) = %v; want %v", pre, at, n, got, want)
				}
			}
		}
	}
}
