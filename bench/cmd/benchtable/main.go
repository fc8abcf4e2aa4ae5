// Command benchtable runs the side-by-side benchmarks of this module and
// prints, for each case, ratekit's ns/op and allocs/op beside each peer's and
// the ratio to the fastest peer, as a Markdown table.
//
// Benchmarks follow one naming rule: Benchmark<Case>/<impl>, where impl is
// "ratekit" (or starts with "ratekit-" for a variant) or the peer's short
// name. Each cell is the median of -count runs, which is what makes numbers
// from a shared, noisy machine worth quoting.
//
// A case gets one row per ratekit implementation ("ratekit" first, then its
// variants, each against the same peers), and the column "2x, 0 allocs"
// says whether that row meets the project's goal: at least twice as fast as
// the fastest peer, allocating nothing. A case no peer can do says so.
// Metrics a benchmark reports with b.ReportMetric (other than ns/op, B/op
// and allocs/op), such as bytes per key, follow in a second table.
//
// Usage, from the bench directory:
//
//	go run ./cmd/benchtable                 # each Benchmark in its own go test process, -count 6
//	go run ./cmd/benchtable -count 10 -bench 'OneKey'
//	go test -run '^$' -bench . -count 6 | go run ./cmd/benchtable -in -
//	go run ./cmd/benchtable -in raw.txt -metric cpu-ns/op
//
// -metric picks what the table compares: ns/op (wall time, the default) or
// any metric the benchmarks report, such as cpu-ns/op (CPU time per op,
// which on a machine shared with other work excludes the time spent
// waiting for a core).
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
)

// run runs the benchmarks that match bench, each top-level benchmark in a
// go test process of its own, and returns their output. One process per
// benchmark keeps one case's leftovers (goroutines of peers' stores, a
// large heap for the collector to mark) from slowing the cases after it:
// in one process, a Keyed case measured 58 ns/op in its first runs and
// 95 ns/op in its later ones. -timeout 0: a benchmark at -count 6 may take
// longer than go test's default 10 minutes.
func run(bench string, count int, benchtime, cpu string, verbose bool) ([]byte, error) {
	top, rest, _ := strings.Cut(bench, "/")
	list, err := exec.Command("go", "test", "-list", top, ".").Output()
	if err != nil {
		return nil, fmt.Errorf("listing benchmarks: %w", err)
	}
	var out bytes.Buffer
	var failed error
	for _, name := range strings.Fields(string(list)) {
		if !strings.HasPrefix(name, "Benchmark") {
			continue // test names, and go test's "ok" line
		}
		pattern := "^" + name + "$"
		if rest != "" {
			pattern += "/" + rest
		}
		args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count", fmt.Sprint(count), "-timeout", "0"}
		if benchtime != "" {
			args = append(args, "-benchtime", benchtime)
		}
		if cpu != "" {
			args = append(args, "-cpu", cpu)
		}
		args = append(args, ".")
		cmd := exec.Command("go", args...)
		cmd.Stdout = &out
		if verbose {
			cmd.Stdout = io.MultiWriter(&out, os.Stderr)
		}
		cmd.Stderr = os.Stderr
		fmt.Fprintf(os.Stderr, "running go %s\n", strings.Join(args, " "))
		if err := cmd.Run(); err != nil && failed == nil {
			failed = fmt.Errorf("%s: %w", name, err)
		}
	}
	return out.Bytes(), failed
}

func main() {
	in := flag.String("in", "", "read benchmark output from this file ('-': standard input) instead of running go test")
	count := flag.Int("count", 6, "runs of each benchmark; cells are medians")
	bench := flag.String("bench", ".", "benchmark regexp, as for go test -bench")
	benchtime := flag.String("benchtime", "", "as for go test -benchtime (default: go test's)")
	cpu := flag.String("cpu", "", "as for go test -cpu")
	raw := flag.String("raw", "", "also write the raw go test output to this file")
	verbose := flag.Bool("v", false, "echo go test's output to standard error as it runs")
	metric := flag.String("metric", "ns/op", "the metric the table compares: ns/op, or one the benchmarks report (cpu-ns/op)")
	flag.Parse()

	var out []byte
	var err error
	switch *in {
	case "":
		out, err = run(*bench, *count, *benchtime, *cpu, *verbose)
	case "-":
		out, err = io.ReadAll(os.Stdin)
	default:
		out, err = os.ReadFile(*in)
	}
	if *raw != "" && len(out) > 0 {
		if werr := os.WriteFile(*raw, out, 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", werr)
		}
	}
	// A failed benchmark (one that measured another path than its name
	// says) fails go test but leaves the others' results: print what there
	// is, and still exit non-zero.
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
	}
	res := parse(bytes.NewReader(out))
	res.metric = *metric
	if len(res.cases) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results named Benchmark<Case>/<impl> in the input")
		os.Exit(1)
	}
	fmt.Print(res.table())
	if err != nil {
		os.Exit(1)
	}
}

// sample is one impl's runs in one case.
type sample struct {
	ns     []float64
	allocs []float64
	extra  map[string][]float64 // by unit, for units other than ns/op, B/op, allocs/op
}

type results struct {
	cases  map[string]map[string]*sample
	order  []string
	units  []string // extra units, in order of first appearance
	env    []string // goos/goarch/cpu lines
	metric string   // what the table compares: "ns/op" (or "") or an extra unit
}

// value returns s's runs of the compared metric.
func (res *results) value(s *sample) []float64 {
	if res.metric == "" || res.metric == "ns/op" {
		return s.ns
	}
	return s.extra[res.metric]
}

func (res *results) metricName() string {
	if res.metric == "" {
		return "ns/op"
	}
	return res.metric
}

func parse(r io.Reader) *results {
	res := &results{cases: map[string]map[string]*sample{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "cpu:") || strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "goarch:") {
			if !contains(res.env, line) {
				res.env = append(res.env, line)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || f[3] != "ns/op" {
			continue
		}
		name := trimProcs(strings.TrimPrefix(f[0], "Benchmark"))
		i := strings.LastIndex(name, "/")
		if i < 0 {
			continue
		}
		cs, impl := name[:i], name[i+1:]
		var ns, allocs float64
		fmt.Sscan(f[2], &ns)
		allocs = -1
		extra := map[string]float64{}
		for j := 4; j+1 < len(f); j += 2 {
			var v float64
			if _, err := fmt.Sscan(f[j], &v); err != nil {
				continue
			}
			switch unit := f[j+1]; unit {
			case "allocs/op":
				allocs = v
			case "B/op", "ns/op", "MB/s":
			default:
				extra[unit] = v
				if !contains(res.units, unit) {
					res.units = append(res.units, unit)
				}
			}
		}
		m := res.cases[cs]
		if m == nil {
			m = map[string]*sample{}
			res.cases[cs] = m
			res.order = append(res.order, cs)
		}
		s := m[impl]
		if s == nil {
			s = &sample{}
			m[impl] = s
		}
		s.ns = append(s.ns, ns)
		if allocs >= 0 {
			s.allocs = append(s.allocs, allocs)
		}
		for unit, v := range extra {
			if s.extra == nil {
				s.extra = map[string][]float64{}
			}
			s.extra[unit] = append(s.extra[unit], v)
		}
	}
	return res
}

// trimProcs drops the "-N" GOMAXPROCS suffix go test adds to names.
func trimProcs(name string) string {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return name
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return name
		}
	}
	return name[:i]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func isOurs(impl string) bool { return impl == "ratekit" || strings.HasPrefix(impl, "ratekit-") }

// ours sorts ratekit's impls: "ratekit" first, then its variants by name.
func ours(impls []string) []string {
	var out []string
	for _, impl := range impls {
		if isOurs(impl) {
			out = append(out, impl)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == "ratekit") != (out[j] == "ratekit") {
			return out[i] == "ratekit"
		}
		return out[i] < out[j]
	})
	return out
}

func (res *results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s; medians of each benchmark's runs; %s.\n\n", runtime.Version(), strings.Join(res.env, ", "), res.metricName())
	fmt.Fprintf(&b, "| case | ratekit %s | allocs | peers %s (allocs) | fastest peer | peer/ratekit | 2x, 0 allocs |\n", res.metricName(), res.metricName())
	b.WriteString("|---|---:|---:|---|---|---:|:---:|\n")
	for _, cs := range res.order {
		m := res.cases[cs]
		impls := make([]string, 0, len(m))
		for impl := range m {
			impls = append(impls, impl)
		}
		sort.Strings(impls)
		var peers []string
		best, bestNs := "—", -1.0
		for _, impl := range impls {
			if isOurs(impl) {
				continue
			}
			ns, al := median(res.value(m[impl])), median(m[impl].allocs)
			if ns < 0 {
				continue // the metric was not reported
			}
			peers = append(peers, fmt.Sprintf("%s %s (%s)", impl, fmtNs(ns), fmtAllocs(al)))
			if bestNs < 0 || ns < bestNs {
				best, bestNs = impl, ns
			}
		}
		peerCell := strings.Join(peers, "; ")
		if peerCell == "" {
			peerCell = "no peer does this"
		}
		rows := ours(impls)
		if len(rows) == 0 {
			rows = []string{""} // peers only: ratekit cannot do this case
		}
		for i, impl := range rows {
			oursNs, oursAllocs := -1.0, -1.0
			oursCell := "—"
			if impl != "" {
				oursNs, oursAllocs = median(res.value(m[impl])), median(m[impl].allocs)
				oursCell = fmtNs(oursNs)
				if impl != "ratekit" {
					oursCell += " (" + impl + ")"
				}
			}
			ratio, goal := "—", "—"
			if oursNs > 0 && bestNs > 0 {
				ratio = fmt.Sprintf("%.2fx", bestNs/oursNs)
				goal = "no"
				if bestNs/oursNs >= 2 && oursAllocs == 0 {
					goal = "yes"
				}
			}
			pc := peerCell
			if i > 0 && len(peers) > 0 {
				pc = "same peers"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", cs, oursCell, fmtAllocs(oursAllocs), pc, best, ratio, goal)
		}
	}
	for _, unit := range res.units {
		if unit == "cpu-ns/op" || unit == res.metric {
			continue // a table of its own: -metric cpu-ns/op
		}
		fmt.Fprintf(&b, "\n| case | %s: ratekit | %s: peers |\n|---|---|---|\n", unit, unit)
		for _, cs := range res.order {
			m := res.cases[cs]
			impls := make([]string, 0, len(m))
			for impl := range m {
				if len(m[impl].extra[unit]) > 0 {
					impls = append(impls, impl)
				}
			}
			if len(impls) == 0 {
				continue
			}
			sort.Strings(impls)
			var our, their []string
			for _, impl := range impls {
				cell := fmt.Sprintf("%s %s", impl, fmtNs(median(m[impl].extra[unit])))
				if isOurs(impl) {
					our = append(our, cell)
				} else {
					their = append(their, cell)
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cs, orDash(strings.Join(our, "; ")), orDash(strings.Join(their, "; ")))
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func fmtNs(ns float64) string {
	switch {
	case ns < 0:
		return "—"
	case ns < 10:
		return fmt.Sprintf("%.2f", ns)
	case ns < 1000:
		return fmt.Sprintf("%.1f", ns)
	}
	return fmt.Sprintf("%.0f", ns)
}

func fmtAllocs(a float64) string {
	if a < 0 {
		return "—"
	}
	return fmt.Sprintf("%g", a)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
