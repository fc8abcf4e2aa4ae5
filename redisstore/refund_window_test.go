package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestRefundAcrossWindowChangeSlidingCounter: a sliding counter key whose
// policy's Window grows holds, in one window of the new Window, units of
// several old windows, so the window it forgets once a Take X moves it
// ahead may hold more than the Limit. A stale time in that window must
// count it as slidingwindow.Counter does (forgotFrom: the most an old
// window held times ceil(new/old)), or refunding X lets the stale time
// admit more than had X never happened. The twin key sees every call but
// X.
//
// Limit 5, Window 1s: 5 at S+3s, 4 at S+5s-1µs, 4 at S+6s-1µs (each old
// window holds 5 or 4); then Window 3s: the key's word counts 8 in
// [S+3s, S+6s). X = 1 at S+9s moves the key past that window; refunded,
// the key judged it at S+8s as holding 5 (the Limit), not 8: 3 admitted
// where the twin, still counting the 8, admits 2.
func TestRefundAcrossWindowChangeSlidingCounter(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	cfg := redisstore.Config{Algorithm: redisstore.SlidingCounter, Name: "sc-rewin", Limit: 5, Window: time.Second}
	old := mustLimiter(t, s, cfg)
	cfg.Window = 3 * time.Second
	nw := mustLimiter(t, s, cfg)
	// S: a Unix time on both Windows' grid.
	sec := int64(time.Second / time.Microsecond)
	S := time.UnixMicro((start.UnixMicro()/(3*sec) + 1) * 3 * sec)
	at := func(d time.Duration) time.Time { return S.Add(d) }
	for i, k := range []string{"key", "twin"} {
		for _, tk := range []struct {
			at time.Duration
			n  int
		}{{3 * time.Second, 5}, {5*time.Second - time.Microsecond, 4}, {6*time.Second - time.Microsecond, 4}} {
			if !takeAt(t, old, k, at(tk.at), tk.n) {
				t.Fatalf("%s: Take of %d at S+%v denied under Window 1s", k, tk.n, tk.at)
			}
		}
		if i == 0 {
			if !takeAt(t, nw, k, at(9*time.Second), 1) {
				t.Fatal("X, 1 at S+9s under Window 3s, denied")
			}
			if err := nw.RefundAt(ctx, k, at(9*time.Second), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []time.Duration{6 * time.Second, 7 * time.Second, 8 * time.Second, 8500 * time.Millisecond, 9*time.Second - time.Microsecond} {
		got, want := capacityAt(t, nw, "key", at(q), 5), capacityAt(t, nw, "twin", at(q), 5)
		if got > want {
			t.Errorf("at S+%v: the key admits %d; the twin, which never took X, %d", q, got, want)
		}
	}
}
