package slidingwindow_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/slidingwindow"
)

// TestCounterRefundAfterShorterWindow is the redisstore script's scenario
// (sccarry) on the in-process Counter: Limit 5, Window 3s, 5 taken at S and
// 4 at S+6s-1µs; then the Window is 1s, by Reconfigure or by a restore of
// the saved state into a Counter of 1s: both old windows' 9 units count in
// [S+5s, S+6s). X, 1 at S+7s, moves the Counter past that window and is
// refunded: at stale times in [S+6s, S+7s) the window it forgot must count
// as the 9 it holds, as it does in a twin that never took X (0, 0 and 2
// admitted at S+6.25s, +6.5s and +6.75s). Before the fix a forgotten window
// counted as the Limit, 5, and the Counter admitted 1, 2 and 3.
func TestCounterRefundAfterShorterWindow(t *testing.T) {
	sec := time.Second
	S := time.Unix((time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC).Unix()/3+1)*3, 0) // on the 3s grid
	cfg := slidingwindow.Config{Limit: 5, Window: 3 * sec}
	short := cfg
	short.Window, short.Clock = sec, mockAt(S.Add(6*sec-time.Microsecond))
	for _, how := range []string{"Reconfigure", "restore"} {
		t.Run(how, func(t *testing.T) {
			var l, twin *slidingwindow.Counter
			for i := range 2 {
				c := mustCounter(t, cfg)
				for _, tk := range []struct {
					at time.Duration
					n  int
				}{{0, 5}, {6*sec - time.Microsecond, 4}} {
					if !c.Take(S.Add(tk.at), tk.n).Allowed {
						t.Fatalf("Take of %d at S+%v denied", tk.n, tk.at)
					}
				}
				if how == "Reconfigure" {
					if err := c.Reconfigure(short); err != nil {
						t.Fatal(err)
					}
				} else {
					saved, err := c.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					c = mustCounter(t, short)
					if err := c.UnmarshalBinary(saved); err != nil {
						t.Fatal(err)
					}
				}
				if i == 0 {
					l = c
				} else {
					twin = c
				}
			}
			x := S.Add(7 * sec)
			if !l.Take(x, 1).Allowed {
				t.Fatal("X, 1 at S+7s, denied")
			}
			l.Refund(x, 1)
			for i, q := range []time.Duration{6250 * time.Millisecond, 6500 * time.Millisecond, 6750 * time.Millisecond} {
				at := S.Add(q)
				got, want := capacityAt(l, at, 5), capacityAt(twin, at, 5)
				if got != want || want != []int{0, 0, 2}[i] {
					t.Errorf("at S+%v: the Counter admits %d; the twin that never took X, %d (want %d)", q, got, want, []int{0, 0, 2}[i])
				}
			}
		})
	}
}
