package fixedwindow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/fixedwindow"
)

// TestReconfigureAtRangeEnd: Reconfigure carries a window by its start,
// which it holds exactly within ±2^62 seconds of 1970 (year 146 billion;
// see Time in the package documentation). A limiter made on a clock at
// the ends of that range, with 3 of 4 taken at its clock's instant, then
// reconfigured to the Config in force with the clock there, still counts
// them. (At 2^62 seconds itself the count moved to the window before, and
// 4 were left at the instant of the Takes: the documented bound.)
func TestReconfigureAtRangeEnd(t *testing.T) {
	for _, at := range []time.Time{
		time.Unix(1<<62-3600, 0), time.Unix(1<<62-1, 0), time.Unix(1<<62-1, 999_999_999),
		time.Unix(-(1<<62)+1, 0), time.Unix(-(1<<62)+1, 500),
	} {
		clk := mockAt(at)
		cfg := fixedwindow.Config{Limit: 4, Window: time.Second, Clock: clk}
		l := mustNew(t, cfg)
		require.True(t, l.Take(at, 3).Allowed, "%v", at.Unix())
		require.Equal(t, 1, l.Peek(at, 0).Remaining, "Unix %d: 3 of 4 taken", at.Unix())
		require.NoError(t, l.Reconfigure(cfg))
		require.Equal(t, 1, l.Peek(at, 0).Remaining, "Unix %d: Remaining at the instant of the Takes, after Reconfigure to the Config in force", at.Unix())
		require.False(t, l.Take(at, 2).Allowed, "Unix %d: Take(2) after the Reconfigure", at.Unix())
	}
}
