package main

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	in := `goos: linux
cpu: Test CPU
BenchmarkOneKey/ratekit-2   100   10.0 ns/op   0 B/op   0 allocs/op
BenchmarkOneKey/ratekit-2   100   14.0 ns/op   0 B/op   0 allocs/op
BenchmarkOneKey/ratekit-2   100   12.0 ns/op   0 B/op   0 allocs/op
BenchmarkOneKey/ratekit-log-2 100 20.0 ns/op   0 B/op   0 allocs/op
BenchmarkOneKey/xrate-2     100   40 ns/op     0 B/op   0 allocs/op
BenchmarkOneKey/uber-2      100   30 ns/op     16 B/op  1 allocs/op
BenchmarkSub/case/ratekit-variant-2 100 5 ns/op 0 B/op 0 allocs/op
BenchmarkAlone/ratekit      100   5 ns/op
BenchmarkPeerOnly/uber-2    100   5 ns/op   0 B/op   0 allocs/op
BenchmarkKeyed/1k/ratekit-2 100   50 ns/op   64.50 B/key   0 B/op   0 allocs/op
BenchmarkKeyed/1k/ulule-2   100   150 ns/op   300.0 B/key   16 B/op   1 allocs/op
BenchmarkNotACase-2         100   5 ns/op
`
	res := parse(strings.NewReader(in))
	got := res.table()
	for _, want := range []string{
		"| OneKey | 12.0 | 0 | uber 30.0 (1); xrate 40.0 (0) | uber | 2.50x | yes |",
		"| OneKey | 20.0 (ratekit-log) | 0 | same peers | uber | 1.50x | no |",
		"| Sub/case | 5.00 (ratekit-variant) | 0 | no peer does this | — | — | — |",
		"| Alone | 5.00 | — | no peer does this | — | — | — |",
		"| PeerOnly | — | — | uber 5.00 (0) | uber | — | — |",
		"| Keyed/1k | 50.0 | 0 | ulule 150.0 (1) | ulule | 3.00x | yes |",
		"| Keyed/1k | ratekit 64.5 | ulule 300.0 |",
		"cpu: Test CPU",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NotACase") {
		t.Errorf("a benchmark without /impl made a row:\n%s", got)
	}
}

func TestTableMetric(t *testing.T) {
	in := `BenchmarkOneKey/ratekit-2  100  30.0 ns/op  10.0 cpu-ns/op  0 B/op  0 allocs/op
BenchmarkOneKey/xrate-2    100  40.0 ns/op  25.0 cpu-ns/op  0 B/op  0 allocs/op
`
	res := parse(strings.NewReader(in))
	res.metric = "cpu-ns/op"
	got := res.table()
	for _, want := range []string{
		"| case | ratekit cpu-ns/op | allocs | peers cpu-ns/op (allocs) |",
		"| OneKey | 10.0 | 0 | xrate 25.0 (0) | xrate | 2.50x | yes |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| case | cpu-ns/op: ratekit") {
		t.Errorf("the compared metric has a table of extras too:\n%s", got)
	}
}
