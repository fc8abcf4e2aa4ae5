package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ratekit/ratekit/redisstore"
)

// TestRefundAcrossWindowChangeSlidingCounter: a sliding counter key whose
// policy's Window changes counts both its windows in the new window that
// holds the last instant of its current one, so that window, and each
// window before it, may hold more than the Limit. Once a Take X moves the
// key past them, a stale time there must count the window it forgot as
// what it may hold, or refunding X lets the stale time admit more than had
// X never happened. The twin key sees every call but X.
//
// Longer (Limit 5, Window 1s): 5 at S+3s, 4 at S+5s-1µs, 4 at S+6s-1µs
// (each old window holds 5 or 4); then Window 3s: the key's word counts 8
// in [S+3s, S+6s). X = 1 at S+9s moves the key past that window; refunded,
// the key judged it at S+8s as holding 5 (the Limit), not 8: 3 admitted
// where the twin, still counting the 8, admits 2. Counter's forgotFrom:
// an old window's most times ceil(new/old).
//
// Shorter (Limit 5, Window 3s): 5 at S, 4 at S+6s-1µs; then Window 1s:
// the word counts 9 in [S+5s, S+6s). X = 1 at S+7s; refunded, the key
// judged that window as holding 5 (ceil(1s/3s) old windows' most): 2
// admitted at S+6.5s where the twin admits 0. The carried count is a
// bound of its own.
func TestRefundAcrossWindowChangeSlidingCounter(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	type take struct {
		at time.Duration
		n  int
	}
	sec := time.Second
	for _, tc := range []struct {
		name    string
		ow, nw  time.Duration
		takes   []take
		x       time.Duration
		queries []time.Duration
	}{
		{"longer", sec, 3 * sec, []take{{3 * sec, 5}, {5*sec - time.Microsecond, 4}, {6*sec - time.Microsecond, 4}}, 9 * sec,
			[]time.Duration{6 * sec, 7 * sec, 8 * sec, 8500 * time.Millisecond, 9*sec - time.Microsecond}},
		{"shorter", 3 * sec, sec, []take{{0, 5}, {6*sec - time.Microsecond, 4}}, 7 * sec,
			[]time.Duration{6 * sec, 6250 * time.Millisecond, 6500 * time.Millisecond, 6750 * time.Millisecond, 7*sec - time.Microsecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := redisstore.Config{Algorithm: redisstore.SlidingCounter, Name: "sc-rewin-" + tc.name, Limit: 5, Window: tc.ow}
			old := mustLimiter(t, s, cfg)
			cfg.Window = tc.nw
			nw := mustLimiter(t, s, cfg)
			// S: a Unix time on both Windows' grid.
			S := time.UnixMicro((start.UnixMicro()/(3*sec.Microseconds()) + 1) * 3 * sec.Microseconds())
			at := func(d time.Duration) time.Time { return S.Add(d) }
			for i, k := range []string{"key", "twin"} {
				for _, tk := range tc.takes {
					if !takeAt(t, old, k, at(tk.at), tk.n) {
						t.Fatalf("%s: Take of %d at S+%v denied under Window %v", k, tk.n, tk.at, tc.ow)
					}
				}
				if i == 0 {
					if !takeAt(t, nw, k, at(tc.x), 1) {
						t.Fatalf("X, 1 at S+%v under Window %v, denied", tc.x, tc.nw)
					}
					if err := nw.RefundAt(ctx, k, at(tc.x), 1); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, q := range tc.queries {
				got, want := capacityAt(t, nw, "key", at(q), 5), capacityAt(t, nw, "twin", at(q), 5)
				if got > want {
					t.Errorf("at S+%v: the key admits %d; the twin, which never took X, %d", q, got, want)
				}
			}
		})
	}
}
