package rolling_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/internal/model"
	"github.com/ratekit/ratekit/rolling"
)

// TestModelFarStale: the reference model decides a Take stamped centuries
// before a full window, the zero time.Time included, as the limiter does:
// ResetAfter and RetryAfter beyond what a Duration holds are Never-1 in
// both (Never is for requests that can never be admitted), and so are they
// before a window refunded to zero (spent).
func TestModelFarStale(t *testing.T) {
	for _, spent := range []bool{false, true} {
		cfg := rolling.Config{Limit: 2, Window: time.Hour, Name: "m"}
		l := mustNew(t, cfg)
		m := model.NewRolling(cfg.Limit, cfg.Window, cfg.Name, false)
		require.Equal(t, m.Take(t0, 2), l.Take(t0, 2))
		if spent {
			l.Refund(t0, 2)
			m.Refund(t0, 2)
		}
		for _, at := range []time.Time{{}, t0.AddDate(-300, 0, 0), t0.AddDate(-200, 0, 0), t0.Add(-time.Hour)} {
			for _, n := range []int{0, 1, 3} {
				require.Equal(t, m.Peek(at, n), l.Peek(at, n), "spent %v, Peek(%v, %d)", spent, at, n)
				require.Equal(t, m.Take(at, n), l.Take(at, n), "spent %v, Take(%v, %d)", spent, at, n)
			}
		}
	}
}
