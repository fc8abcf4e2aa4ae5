// Command benchtable runs the side-by-side benchmarks of this module and
// prints, for each case, ratekit's ns/op and allocs/op beside each peer's and
// the ratio to the fastest peer, as a Markdown table.
//
// Benchmarks follow one naming rule: Benchmark<Case>/<impl>, where impl is
// "ratekit" (or starts with "ratekit-" for a variant) or the peer's short
// name. Each cell is the median of -count runs, which is what makes numbers
// from a shared, noisy machine worth quoting.
//
// Usage, from the bench directory:
//
//	go run ./cmd/benchtable                 # runs go test -bench . -count 5
//	go run ./cmd/benchtable -count 10 -bench 'OneKey'
//	go test -run '^$' -bench . -count 5 | go run ./cmd/benchtable -in -
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

func main() {
	in := flag.String("in", "", "read benchmark output from this file ('-': standard input) instead of running go test")
	count := flag.Int("count", 5, "runs of each benchmark; cells are medians")
	bench := flag.String("bench", ".", "benchmark regexp, as for go test -bench")
	benchtime := flag.String("benchtime", "", "as for go test -benchtime (default: go test's)")
	cpu := flag.String("cpu", "", "as for go test -cpu")
	raw := flag.String("raw", "", "also write the raw go test output to this file")
	flag.Parse()

	var out []byte
	var err error
	switch *in {
	case "":
		args := []string{"test", "-run", "^$", "-bench", *bench, "-benchmem", "-count", fmt.Sprint(*count)}
		if *benchtime != "" {
			args = append(args, "-benchtime", *benchtime)
		}
		if *cpu != "" {
			args = append(args, "-cpu", *cpu)
		}
		args = append(args, "./...")
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		fmt.Fprintf(os.Stderr, "running go %s\n", strings.Join(args, " "))
		out, err = cmd.Output()
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
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	res := parse(bytes.NewReader(out))
	if len(res.cases) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results named Benchmark<Case>/<impl> in the input")
		os.Exit(1)
	}
	fmt.Print(res.table())
}

// sample is one impl's runs in one case.
type sample struct {
	ns     []float64
	allocs []float64
}

type results struct {
	cases map[string]map[string]*sample
	order []string
	env   []string // goos/goarch/cpu lines
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
		for j := 4; j+1 < len(f); j++ {
			if f[j+1] == "allocs/op" {
				fmt.Sscan(f[j], &allocs)
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

func (res *results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s; medians of each benchmark's runs.\n\n", runtime.Version(), strings.Join(res.env, ", "))
	b.WriteString("| case | ratekit ns/op | allocs | peers ns/op (allocs) | fastest peer | peer/ratekit |\n")
	b.WriteString("|---|---:|---:|---|---|---:|\n")
	for _, cs := range res.order {
		m := res.cases[cs]
		impls := make([]string, 0, len(m))
		for impl := range m {
			impls = append(impls, impl)
		}
		sort.Strings(impls)
		ours, oursNs, oursAllocs := "", -1.0, -1.0
		var peers []string
		best, bestNs := "", -1.0
		for _, impl := range impls {
			ns, al := median(m[impl].ns), median(m[impl].allocs)
			if isOurs(impl) {
				if oursNs < 0 || ns < oursNs {
					ours, oursNs, oursAllocs = impl, ns, al
				}
				continue
			}
			peers = append(peers, fmt.Sprintf("%s %s (%s)", impl, fmtNs(ns), fmtAllocs(al)))
			if bestNs < 0 || ns < bestNs {
				best, bestNs = impl, ns
			}
		}
		oursCell, ratio := "—", "—"
		if oursNs >= 0 {
			oursCell = fmtNs(oursNs)
			if ours != "ratekit" {
				oursCell += " (" + ours + ")"
			}
		}
		if oursNs > 0 && bestNs > 0 {
			ratio = fmt.Sprintf("%.2fx", bestNs/oursNs)
		}
		peerCell := strings.Join(peers, "; ")
		if peerCell == "" {
			peerCell, best = "no peer does this", "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cs, oursCell, fmtAllocs(oursAllocs), peerCell, best, ratio)
	}
	return b.String()
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
