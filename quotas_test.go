package ratekit_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/fixedwindow"
	"github.com/ratekit/ratekit/internal/conformance"
	"github.com/ratekit/ratekit/rolling"
	"github.com/ratekit/ratekit/slidingwindow"
	"github.com/ratekit/ratekit/tokenbucket"
)

// TestRealQuotas holds issue #20 item 4 for the embedded algorithms: quotas
// that real services set (10^9 a day, 10^9 per 30 days, Rollbar's 100,000 a
// day and 5,500 a minute) either work exactly, or New fails with an error
// that names the largest Limit that works and the algorithm that takes the
// quota instead. Working means: Limit-1 and then 1 pass at one instant, one
// more does not, and the whole Limit passes again once the quota is back
// (a Window on for a token bucket, a rolling window and a Log; two fixed
// windows on for a fixed window and a Counter, whose previous window weighs).
func TestRealQuotas(t *testing.T) {
	const day = 24 * time.Hour
	t0 := conformance.DefaultStart
	type maker func(limit int, window time.Duration) (ratekit.Limiter, error)
	algorithms := []struct {
		name string
		make maker
		// back is when the whole Limit passes again after it was taken at t0.
		back func(w time.Duration) time.Time
	}{
		{"tokenbucket", func(l int, w time.Duration) (ratekit.Limiter, error) {
			return tokenbucket.New(tokenbucket.Config{Limit: l, Window: w, Burst: l})
		}, func(w time.Duration) time.Time { return t0.Add(w) }},
		{"fixedwindow", func(l int, w time.Duration) (ratekit.Limiter, error) {
			return fixedwindow.New(fixedwindow.Config{Limit: l, Window: w})
		}, func(w time.Duration) time.Time { return unixWindow(t0, w, 1) }},
		{"rolling", func(l int, w time.Duration) (ratekit.Limiter, error) {
			return rolling.New(rolling.Config{Limit: l, Window: w})
		}, func(w time.Duration) time.Time { return t0.Add(w) }},
		{"slidingwindow.Log", func(l int, w time.Duration) (ratekit.Limiter, error) {
			return slidingwindow.NewLog(slidingwindow.Config{Limit: l, Window: w})
		}, func(w time.Duration) time.Time { return t0.Add(w) }},
		{"slidingwindow.Counter", func(l int, w time.Duration) (ratekit.Limiter, error) {
			return slidingwindow.NewCounter(slidingwindow.Config{Limit: l, Window: w})
		}, func(w time.Duration) time.Time { return unixWindow(t0, w, 2) }},
	}
	quotas := []struct {
		limit  int
		window time.Duration
	}{
		{1_000_000_000, day},
		{1_000_000_000, 30 * day},
		{100_000, day},
		{5_500, time.Minute},
	}
	for _, a := range algorithms {
		for _, q := range quotas {
			t.Run(a.name+"/"+strconv.Itoa(q.limit)+"-per-"+q.window.String(), func(t *testing.T) {
				l, err := a.make(q.limit, q.window)
				if err != nil {
					if !errors.Is(err, ratekit.ErrInvalidConfig) {
						t.Fatalf("New: %v does not wrap ErrInvalidConfig", err)
					}
					// The error names the largest Limit that works, and
					// an algorithm that takes the quota, which does.
					msg := err.Error()
					if !strings.Contains(msg, "at most") {
						t.Fatalf("New(%d per %v): %q names no largest Limit", q.limit, q.window, msg)
					}
					takes := ""
					for _, b := range algorithms {
						short := b.name[strings.LastIndex(b.name, ".")+1:]
						if b.name == a.name || !strings.Contains(msg, short) {
							continue
						}
						if _, err := b.make(q.limit, q.window); err == nil {
							takes = b.name
						} else {
							t.Fatalf("New(%d per %v): %q names %s, which refuses it too: %v", q.limit, q.window, msg, b.name, err)
						}
					}
					if takes == "" {
						t.Fatalf("New(%d per %v): %q names no algorithm that takes it", q.limit, q.window, msg)
					}
					t.Logf("refused: %v", err)
					return
				}
				steps := []struct {
					at   time.Time
					n    int
					want bool
				}{
					{t0, q.limit - 1, true},
					{t0, 1, true},
					{t0, 1, false},
					{a.back(q.window).Add(-1), q.limit, false},
					{a.back(q.window), q.limit, true},
					{a.back(q.window), 1, false},
				}
				for i, st := range steps {
					if d := l.Take(st.at, st.n); d.Allowed != st.want {
						t.Fatalf("step %d: Take(+%v, %d) = %v; want allowed=%v", i, st.at.Sub(t0), st.n, d, st.want)
					}
				}
			})
		}
	}
}

// unixWindow returns the start of the k-th fixed window of length w after
// the one holding t, windows aligned to Unix time.
func unixWindow(t time.Time, w time.Duration, k int64) time.Time {
	return time.Unix(0, (t.UnixNano()/int64(w)+k)*int64(w))
}
