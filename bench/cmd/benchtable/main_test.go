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
BenchmarkOneKey/xrate-2     100   40 ns/op     0 B/op   0 allocs/op
BenchmarkOneKey/uber-2      100   30 ns/op     16 B/op  1 allocs/op
BenchmarkSub/case/ratekit-variant-2 100 5 ns/op 0 B/op 0 allocs/op
BenchmarkAlone/ratekit      100   5 ns/op
BenchmarkNotACase-2         100   5 ns/op
`
	res := parse(strings.NewReader(in))
	got := res.table()
	for _, want := range []string{
		"| OneKey | 12.0 | 0 | uber 30.0 (1); xrate 40.0 (0) | uber | 2.50x |",
		"| Sub/case | 5.00 (ratekit-variant) | 0 | no peer does this | — | — |",
		"| Alone | 5.00 | — | no peer does this | — | — |",
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
