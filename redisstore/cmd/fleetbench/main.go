// Command fleetbench measures a fleet of replicas deciding against one
// Redis: decisions per second and the over- and under-admission seen, on
// one hot key and on many keys, for each mode of redisstore: direct (a
// round trip per decision), with the deny cache, with quota leases, and
// with both.
//
// It starts a redis-server of its own on a loopback port (or uses -addr),
// then, per case, two worker processes (itself, with -worker) that decide
// with many goroutines for -dur against a FixedWindow of one second at the
// server's time. Each worker counts, per key and window, the units it
// admitted and the requests it was refused; the parent adds both workers'
// counts up, window by window:
//
//	over   units admitted beyond Limit in a key's window (must be 0)
//	under  units short of Limit in a key's window that refused requests
//	       (the fleet said no while the quota had room), first and last
//	       windows of the run excluded (they are partial)
//
// Usage: go run ./cmd/fleetbench [-dur 4s] [-g 32] [-addr host:port]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

var (
	worker   = flag.Bool("worker", false, "run as a worker (internal)")
	addr     = flag.String("addr", "", "Redis address; empty starts a redis-server of its own")
	dur      = flag.Duration("dur", 4*time.Second, "how long each case runs")
	gor      = flag.Int("g", 32, "goroutines per worker process")
	mode     = flag.String("mode", "direct", "worker: direct, deny, lease or lease+deny")
	keys     = flag.Int("keys", 1, "worker: how many keys, chosen uniformly")
	limit    = flag.Int("limit", 1000, "worker: Limit per one-second window per key")
	prefix   = flag.String("prefix", "fb:", "worker: key prefix")
	startAt  = flag.Int64("start", 0, "worker: Unix ns to start at")
	casesArg = flag.String("cases", "", "comma-separated case names to run (default all)")
)

// counts is a worker's result: per "key/window", units admitted and
// requests refused; and the decisions made.
type counts struct {
	Decisions int64
	Admitted  map[string]int
	Refused   map[string]int
}

func main() {
	flag.Parse()
	if *worker {
		if err := work(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := lead(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func work() error {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: *gor})
	defer rdb.Close()
	s, err := redisstore.New(rdb, redisstore.Options{Prefix: *prefix})
	if err != nil {
		return err
	}
	l, err := s.Limiter(redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "fb", Limit: *limit, Window: time.Second})
	if err != nil {
		return err
	}
	var q *redisstore.Local
	if *mode != "direct" {
		q, err = l.Local(redisstore.LocalConfig{
			Lease: strings.Contains(*mode, "lease"), DenyCache: strings.Contains(*mode, "deny"),
			MaxKeys: 2 * *keys,
		})
		if err != nil {
			return err
		}
	}
	take := l.Take
	if q != nil {
		take = q.Take
	}
	time.Sleep(time.Until(time.Unix(0, *startAt)))
	end := time.Now().Add(*dur)
	stop := make(chan struct{})
	if q != nil {
		go func() { // sweep ended leases, as a service would
			tk := time.NewTicker(200 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					q.Sweep(ctx)
				}
			}
		}()
	}
	res := make([]counts, *gor)
	var wg sync.WaitGroup
	var failed error
	var mu sync.Mutex
	for g := range *gor {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := counts{Admitted: map[string]int{}, Refused: map[string]int{}}
			rng := rand.New(rand.NewPCG(uint64(g), uint64(os.Getpid())))
			for n := 0; ; n++ {
				if n%64 == 0 && time.Now().After(end) {
					break
				}
				key := "k"
				if *keys > 1 {
					key = strconv.Itoa(rng.IntN(*keys))
				}
				t0 := time.Now()
				d, err := take(ctx, key, 1)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				c.Decisions++
				// The window is the one whose end E is the first at or
				// after t0 + ResetAfter (RetryAfter for a refusal, which
				// a FixedWindow sets to the window's end too): the server
				// decided at S >= t0 with ResetAfter = E - S, and a lease's
				// or a cached refusal's is aged from before its round trip,
				// so t0 + ResetAfter = E - (S - t0) <= E, and a call's
				// stall S - t0 below a window keeps E the next end. Server
				// and workers share this machine's clock.
				r := d.ResetAfter
				if !d.Allowed {
					r = d.RetryAfter
				}
				w := (t0.UnixNano() + int64(r) + int64(time.Second) - 1) / int64(time.Second)
				if d.Allowed {
					c.Admitted[key+"/"+strconv.FormatInt(w, 10)]++
				} else {
					c.Refused[key+"/"+strconv.FormatInt(w, 10)]++
				}
			}
			res[g] = c
		}()
	}
	wg.Wait()
	close(stop)
	if failed != nil {
		return failed
	}
	if q != nil {
		q.Close(ctx)
	}
	all := counts{Admitted: map[string]int{}, Refused: map[string]int{}}
	for _, c := range res {
		all.Decisions += c.Decisions
		for k, v := range c.Admitted {
			all.Admitted[k] += v
		}
		for k, v := range c.Refused {
			all.Refused[k] += v
		}
	}
	return json.NewEncoder(os.Stdout).Encode(all)
}

type benchCase struct {
	name  string
	keys  int
	limit int
}

func lead() error {
	if *addr == "" {
		stop, a, err := startRedis()
		if err != nil {
			return err
		}
		defer stop()
		*addr = a
	}
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	defer rdb.Close()
	cases := []benchCase{
		// Throughput: a Limit no run reaches.
		{"hot key, unbound", 1, redisstore.MaxLimit},
		{"100k keys, unbound", 100_000, redisstore.MaxLimit},
		// Accuracy: a Limit every mode reaches within each window.
		{"hot key, 2000/s", 1, 2000},
		{"100k keys, 1/s", 100_000, 1},
	}
	modes := []string{"direct", "deny", "lease", "lease+deny"}
	fmt.Printf("fleetbench: 2 worker processes × %d goroutines, %v per case, FixedWindow of 1s, redis %s\n\n", *gor, *dur, *addr)
	fmt.Printf("%-20s %-11s %14s %12s %8s %8s\n", "case", "mode", "decisions/s", "admitted/s", "over", "under")
	for _, c := range cases {
		if *casesArg != "" && !strings.Contains(*casesArg, c.name) {
			continue
		}
		for _, m := range modes {
			if err := rdb.FlushAll(context.Background()).Err(); err != nil {
				return err
			}
			r, err := runCase(c, m)
			if err != nil {
				return fmt.Errorf("%s %s: %w", c.name, m, err)
			}
			fmt.Printf("%-20s %-11s %14.0f %12.0f %8d %8d\n", c.name, m, r.rate, r.admitted, r.over, r.under)
		}
	}
	return nil
}

type outcome struct {
	rate, admitted float64
	over, under    int
}

func runCase(c benchCase, m string) (outcome, error) {
	start := time.Now().Add(500 * time.Millisecond)
	var outs [2]counts
	var errs [2]error
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-worker", "-addr", *addr, "-mode", m, "-keys", strconv.Itoa(c.keys),
				"-limit", strconv.Itoa(c.limit), "-dur", dur.String(), "-g", strconv.Itoa(*gor),
				"-start", strconv.FormatInt(start.UnixNano(), 10), "-prefix", "fb:")
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err == nil {
				err = json.Unmarshal(out, &outs[i])
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return outcome{}, err
		}
	}
	admitted, refused := map[string]int{}, map[string]int{}
	var decisions int64
	windows := map[int64]bool{}
	for _, o := range outs {
		decisions += o.Decisions
		for k, v := range o.Admitted {
			admitted[k] += v
			windows[window(k)] = true
		}
		for k, v := range o.Refused {
			refused[k] += v
			windows[window(k)] = true
		}
	}
	ws := make([]int64, 0, len(windows))
	for w := range windows {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
	var r outcome
	var total int
	for _, v := range admitted {
		total += v
		if v > c.limit {
			r.over += v - c.limit
		}
	}
	for k := range refused {
		w := window(k)
		if len(ws) > 2 && w != ws[0] && w != ws[len(ws)-1] && admitted[k] < c.limit {
			r.under += c.limit - admitted[k]
		}
	}
	r.rate = float64(decisions) / dur.Seconds()
	r.admitted = float64(total) / dur.Seconds()
	return r, nil
}

func window(k string) int64 {
	w, _ := strconv.ParseInt(k[strings.LastIndexByte(k, '/')+1:], 10, 64)
	return w
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and waits (bounded) until it answers.
func startRedis() (stop func(), addr string, err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server not found (apt-get install redis-server), or pass -addr")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "fleetbench-")
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", filepath.Clean(dir), "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return stop, addr, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("redis-server did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
