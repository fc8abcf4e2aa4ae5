package bench

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestNowDenyAcrossTheHour: every denying real-clock case (the "now-deny"
// rows of BenchmarkOneKey and BenchmarkOneKeyParallel) denies a call made
// just after a Unix hour's end when its setup drained the limiter just
// before it, and still 58 minutes later: a run that straddles the hour
// measures the path it is named after and does not fail its verdict check.
// ratekit-fixedwindow's deny case, one an hour in windows aligned to the
// hour, admitted the call after the hour's end: a benchmark run of a few
// seconds failed about once in a thousand, whenever the wall clock crossed
// an hour during it. In a synctest bubble the real clock is the bubble's,
// which starts on an hour. ulule is left out: its memory store's cleaner
// goroutine never returns, which a bubble refuses; its window is anchored
// to the first hit.
func TestNowDenyAcrossTheHour(t *testing.T) {
	for _, impl := range oneKeyImpls {
		if impl.now == nil || impl.name == "ulule" {
			continue
		}
		t.Run(impl.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Hour - time.Nanosecond)
				take := impl.now(t, true) // drains the limiter 1ns before the hour's end
				if take == nil {
					return // no denying real-clock case
				}
				time.Sleep(time.Nanosecond)
				if take() {
					t.Fatalf("%s: admitted on the hour, after its setup drained it 1ns before", impl.name)
				}
				time.Sleep(58 * time.Minute)
				if take() {
					t.Fatalf("%s: admitted 58 minutes into the run", impl.name)
				}
			})
		})
	}
}
