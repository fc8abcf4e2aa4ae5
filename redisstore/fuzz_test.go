package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// FuzzScript drives the script and the reference model of one of
// modelConfigs with the same operations, decoded from the fuzzer's bytes,
// and requires identical Decisions. Each input runs on a key of its own.
//
// Bytes, after the first (which picks the config), come in threes: the
// operation (low 2 bits: Take, Take, Peek, Refund) and the time step (the
// next bits, an index into steps, which include steps back); n (a signed
// byte); and a flag that makes n the capacity or one below it (bit 0) and,
// for the sliding log and counter and the token bucket, changes its Limit
// before the operation (bits 6-7: 1 the config's, 2 a third of it, 3 twice
// it; a token bucket's rate, if its refill time allows), as a Limiter of
// the same Name with another Limit does; the window algorithms' Limit
// changes are TestScriptMatchesModel's. If the first byte is 0x80 or more,
// bits 1-2 of the flag change a sliding counter's Window likewise (1 the
// config's, 2 a third of it, 3 three times it). Each input makes hundreds of round trips, so minimise
// briefly: go test -run '^$' -fuzz FuzzScript -fuzztime 90s -fuzzminimizetime 3s
func FuzzScript(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 0, 1, 5, 0, 3, 1, 2, 4, 2})
	f.Add([]byte{3, 0, 0, 1, 0, 0, 1, 0, 0, 3, 0x20, 0, 1})
	f.Add([]byte{8, 0, 0, 5, 4, 0, 1, 0x13, 9, 2, 0, 0, 1})
	f.Add([]byte{10, 0, 0, 5, 0x28, 0, 2, 0x1c, 0, 4, 0x33, 5, 1})
	f.Add([]byte{12, 0, 0, 0xff, 0, 0, 0x80, 0x2c, 7, 1})
	// Issue #16 item 2: a Take, a later one rolled back, then stale Peeks
	// and Takes before it (sl, then sc).
	f.Add([]byte{8, 0, 5, 0, 0x28, 5, 0, 0x03, 5, 0, 0x32, 5, 0, 0x32, 1, 0, 0x32, 5, 0, 0x30, 1, 0, 0x32, 5, 0, 0x30, 1, 0})
	f.Add([]byte{11, 0, 1, 0, 0x28, 5, 0, 0x03, 5, 0, 0x32, 5, 0, 0x32, 1, 0, 0x32, 5, 0, 0x30, 1, 0, 0x32, 5, 0, 0x30, 1, 0})
	// A rolling window refunded to zero (spent), then a stale Take before
	// its start: it opens its window at the spent start (rw).
	f.Add([]byte{6, 0x00, 1, 0, 0x24, 1, 0, 0x03, 1, 0, 0x30, 1, 0, 0x02, 1, 0})
	// The lost mark (sl): Takes of 1 at start and start+W under 5, one
	// under 1 at start+3W that forgets both, then under 5 again Peeks and a
	// Take stepping back to start+5W/3, where the unit forgotten at
	// start+W still counts: nothing is admitted there.
	f.Add([]byte{8, 0x00, 1, 0, 0x24, 1, 0, 0x28, 1, 0x80, 0x32, 1, 0x40, 0x32, 1, 0, 0x32, 1, 0, 0x32, 1, 0, 0x30, 1, 0, 0x02, 5, 0})
	// A lowered Limit (sc-600): a full window at start, 600 at
	// start+2W+3µs (the counter moves past the full window and forgets
	// it), refunded under Limit 200, then stale Peeks stepping back: the
	// forgotten window counts as the 600 it held, not the lowered Limit.
	f.Add([]byte{12, 0x00, 0, 1, 0x28, 0, 1, 0x03, 0, 0x81, 0x32, 1, 0, 0x32, 1, 0, 0x32, 1, 0, 0x32, 1, 0, 0x32, 1, 0, 0x30, 1, 0})
	// A longer Window (sc; 0x80 turns Window changes on): 5 at start and
	// 4 in the next 1s window, a Peek under a Window of 3s (the word's two
	// windows count 9 in one of 3s), a Take a window and more on that
	// moves the key past them, refunded, then stale Peeks stepping back
	// into the window forgotten: it counts as 5·ceil(3s/1s), not as 5.
	f.Add([]byte{0x83, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x1c, 0x01, 0x00, 0x14, 0x01, 0x00, 0x00, 0x01, 0x00, 0x2a, 0x01, 0x06, 0x28, 0x01, 0x00,
		0x03, 0x01, 0x00, 0x32, 0x01, 0x00, 0x32, 0x01, 0x00, 0x32, 0x01, 0x00, 0x32, 0x01, 0x00, 0x32, 0x01, 0x00, 0x32, 0x01, 0x00, 0x30, 0x01, 0x00})
	// A shorter Window (sc, then a third of it): the same 9 units carried
	// into one window of 333333µs, a Take two windows on, refunded, then
	// stale Peeks in the window after the carried one: the window the key
	// forgot counts as the 9 carried, not as the Limit.
	f.Add([]byte{0x83, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x1c, 0x01, 0x00, 0x14, 0x01, 0x00, 0x00, 0x01, 0x00, 0x1e, 0x01, 0x04, 0x14, 0x01, 0x00,
		0x03, 0x01, 0x00, 0x32, 0x01, 0x00, 0x16, 0x01, 0x00, 0x32, 0x01, 0x00, 0x30, 0x01, 0x00})
	s, _ := newStore(f)
	var inputs int
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 1 {
			return
		}
		cfg := modelConfigs[int(data[0])%len(modelConfigs)]
		cur := cfg // the policy in force
		// A sliding counter's or log's Window changes too if the first
		// byte has its top bit set (older inputs do not).
		rewindow := data[0] >= 0x80 && (cfg.Algorithm == redisstore.SlidingCounter || cfg.Algorithm == redisstore.SlidingLog)
		l := mustLimiter(t, s, cfg)
		base := l
		m := newModel(cfg)
		inputs++
		key := fmt.Sprint("fuzz", inputs)
		capacity := cfg.Limit
		if cfg.Burst > 0 {
			capacity = cfg.Burst
		}
		st := steps(cfg.Window)
		now := start
		ctx := context.Background()
		for i := 1; i+2 < len(data) && i < 3*200; i += 3 {
			op, step := data[i]&3, int(data[i]>>2)%len(st)
			now = now.Add(st[step]).Truncate(time.Microsecond)
			n := int(int8(data[i+1]))
			if n > capacity+1 {
				n = n % (capacity + 2)
			}
			if data[i+2]&1 == 1 && n >= 0 {
				n = capacity - n%2
			}
			c := cur
			if lim := data[i+2] >> 6; lim > 0 && cfg.Algorithm != redisstore.FixedWindow && cfg.Algorithm != redisstore.Rolling {
				c.Limit = []int{cfg.Limit, max(cfg.Limit/3, 1), min(2*cfg.Limit, redisstore.MaxLimit)}[lim-1]
			}
			if win := data[i+2] >> 1 & 3; rewindow && win > 0 {
				c.Window = []time.Duration{cfg.Window, max((cfg.Window / 3).Truncate(time.Microsecond), time.Microsecond), 3 * cfg.Window}[win-1]
			}
			if c != cur && c.Validate() == nil { // a token bucket's refill time may not
				cur = c
				l = mustLimiter(t, s, c)
				if c == cfg {
					l = base
				}
				if tm, ok := m.(*tbModel); ok {
					tm.setRate(int64(c.Limit), c.Window, int64(c.Burst))
				} else {
					m.setLimit(int64(c.Limit))
				}
				if wm, ok := m.(interface{ setWindow(time.Duration) }); ok {
					wm.setWindow(c.Window)
				}
			}
			us := scriptMicros(now)
			switch op {
			case 2:
				got, err := l.PeekAt(ctx, key, now, n)
				check(t, 0, 0, i, "Peek", n, now, got, m.decide(us, n, false), err)
			case 3:
				m.refund(us, n)
				if err := l.RefundAt(ctx, key, now, n); err != nil {
					t.Fatal(err)
				}
			default:
				got, err := l.TakeAt(ctx, key, now, n)
				check(t, 0, 0, i, "Take", n, now, got, m.decide(us, n, true), err)
			}
		}
	})
}
