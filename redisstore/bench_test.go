package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/ratekit/ratekit/redisstore"
)

// decider is one decision against Redis, as each library makes it.
type decider func(ctx context.Context, key string) error

// benchCases are ratekit's algorithms and the peers that use Redis, each
// with a quota large enough that the steady state is admitting, except the
// sliding log, which runs a realistic 100 per second and mostly denies, so
// that its denials' walk of the oldest entries is measured too.
var benchCases = []struct {
	name string
	make func(b *testing.B, c *redis.Client, prefix string) decider
}{
	{"ratekit/tokenbucket", ratekitCase(redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "b", Limit: 1 << 30, Window: time.Hour, Burst: 1 << 20})},
	{"ratekit/tokenbucket-evalsha", func(b *testing.B, c *redis.Client, prefix string) decider {
		s, err := redisstore.New(c, redisstore.Options{Prefix: prefix, EvalOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		l := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "b", Limit: 1 << 30, Window: time.Hour, Burst: 1 << 20})
		return func(ctx context.Context, key string) error {
			_, err := l.Take(ctx, key, 1)
			return err
		}
	}},
	{"ratekit/fixedwindow", ratekitCase(redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "b", Limit: 1 << 30, Window: time.Hour})},
	{"ratekit/rolling", ratekitCase(redisstore.Config{Algorithm: redisstore.Rolling, Name: "b", Limit: 1 << 30, Window: time.Hour})},
	{"ratekit/slidingcounter", ratekitCase(redisstore.Config{Algorithm: redisstore.SlidingCounter, Name: "b", Limit: 1 << 20, Window: time.Hour})},
	{"ratekit/slidinglog", ratekitCase(redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "b", Limit: 100, Window: time.Second})},
	{"ratekit/takeall3", func(b *testing.B, c *redis.Client, prefix string) decider {
		s := benchStore(b, c, prefix)
		org := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "org", Limit: 1 << 30, Window: time.Hour})
		tok := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.TokenBucket, Name: "tok", Limit: 1 << 30, Window: time.Hour, Burst: 1 << 20})
		ip := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "ip", Limit: 1 << 30, Window: time.Hour})
		return func(ctx context.Context, key string) error {
			_, err := s.TakeAll(ctx, 1, org.On(key), tok.On(key+":t"), ip.On(key+":ip"))
			return err
		}
	}},
	{"peer/redis_rate-gcra", func(b *testing.B, c *redis.Client, prefix string) decider {
		l := redis_rate.NewLimiter(c)
		lim := redis_rate.Limit{Rate: 1 << 30, Burst: 1 << 20, Period: time.Hour}
		return func(ctx context.Context, key string) error {
			_, err := l.Allow(ctx, prefix+key, lim)
			return err
		}
	}},
	{"peer/ulule-fixedwindow", func(b *testing.B, c *redis.Client, prefix string) decider {
		st, err := ulredis.NewStoreWithOptions(c, limiter.StoreOptions{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		l := limiter.New(st, limiter.Rate{Period: time.Hour, Limit: 1 << 30})
		return func(ctx context.Context, key string) error {
			_, err := l.Get(ctx, key)
			return err
		}
	}},
}

func benchStore(b *testing.B, c *redis.Client, prefix string) *redisstore.Store {
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func ratekitCase(cfg redisstore.Config) func(*testing.B, *redis.Client, string) decider {
	return func(b *testing.B, c *redis.Client, prefix string) decider {
		l := mustLimiter(b, benchStore(b, c, prefix), cfg)
		return func(ctx context.Context, key string) error {
			_, err := l.Take(ctx, key, 1)
			return err
		}
	}
}

// roundTrips counts the commands a client sends.
type roundTrips struct{ n *atomic.Int64 }

func (roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// serverMicros is the CPU time the server has spent in calls of scripts
// and functions (and loading them), in µs, from INFO commandstats: a
// measure of a decision's cost on the server that the loopback's and the
// scheduler's noise do not blur. Every case here, ratekit's and the
// peers', decides in a script, and a script's time includes that of the
// commands it runs, which commandstats also counts under their own names
// (summing the two, as this function once did, counted them twice). cmds
// is how many commands it has run other than the calls of scripts and
// functions themselves (and INFO): the commands the scripts ran, and the
// peers' own, a count that load does not change.
func serverMicros(b *testing.B, c *redis.Client) (usec, cmds float64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	field := func(line, name string) float64 {
		i := strings.Index(line, name+"=")
		if i < 0 {
			b.Fatalf("no %s in %q", name, line)
		}
		v, err := strconv.ParseFloat(strings.SplitN(line[i+len(name)+1:], ",", 2)[0], 64)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		switch line[:strings.Index(line, ":")] {
		case "cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval", "cmdstat_function|load", "cmdstat_script|load":
			usec += field(line, "usec")
		default:
			cmds += field(line, "calls")
		}
	}
	return usec, cmds
}

// BenchmarkDecision measures decisions per second against the shared
// loopback redis-server, with 1 and 16 concurrent clients on one key, and
// reports round trips per decision (rt/op, not counting the INFO the
// benchmark itself sends), the server's CPU time per decision
// (server-µs/op) and the commands a decision runs on the server, inside
// the script or not (cmds/op). Run with -count 6 and compare
// with benchstat; the ratios between cases in one run are what matter, as
// the absolute numbers are the loopback's and this machine's.
func BenchmarkDecision(b *testing.B) {
	needRedis(b)
	for _, bc := range benchCases {
		for _, clients := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", bc.name, clients), func(b *testing.B) {
				c := redis.NewClient(&redis.Options{Addr: sharedAddr, PoolSize: clients})
				defer c.Close()
				var rts atomic.Int64
				prefix := fmt.Sprintf("bench%d:", prefixes.Add(1))
				decide := bc.make(b, c, prefix)
				ctx := context.Background()
				if err := decide(ctx, "warm"); err != nil { // loads scripts
					b.Fatal(err)
				}
				c.AddHook(roundTrips{&rts})
				before, cmdsBefore := serverMicros(b, c)
				b.ReportAllocs()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if err := decide(ctx, "org42"); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				after, cmdsAfter := serverMicros(b, c)
				b.ReportMetric((after-before)/float64(b.N), "server-µs/op")
				b.ReportMetric((cmdsAfter-cmdsBefore)/float64(b.N), "cmds/op")
				b.ReportMetric(float64(rts.Load()-1)/float64(b.N), "rt/op")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			})
		}
	}
}

// BenchmarkSlidingLogScript measures the sliding log's script at injected
// instants, 100 a second per key, in three steady states: a Take every
// 20ms (every one admitted, each trimming the oldest entry), every 2ms
// (four in five denied) and every 2ms with every other one stamped half a
// Window back (stale: it reads the archive and the lost mark). cmds/op,
// the commands the script runs per decision, is what the script's version
// changes, and load does not blur it; server-µs/op is the server's time.
func BenchmarkSlidingLogScript(b *testing.B) {
	s, c := newStore(b)
	ctx := context.Background()
	l := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "b", Limit: 100, Window: time.Second})
	for _, bc := range []struct {
		name  string
		step  time.Duration
		stale bool
	}{{"admitted", 20 * time.Millisecond, false}, {"mostly-denied", 2 * time.Millisecond, false}, {"half-stale", 2 * time.Millisecond, true}} {
		b.Run(bc.name, func(b *testing.B) {
			key := fmt.Sprint("script", prefixes.Add(1))
			now := start
			for range 200 { // a full log, and an archive
				if _, err := l.TakeAt(ctx, key, now, 1); err != nil {
					b.Fatal(err)
				}
				now = now.Add(bc.step)
			}
			before, cmdsBefore := serverMicros(b, c)
			b.ResetTimer()
			for i := range b.N {
				at := now.Add(time.Duration(i) * bc.step)
				if bc.stale && i%2 == 1 {
					at = at.Add(-time.Second / 2)
				}
				if _, err := l.TakeAt(ctx, key, at, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			after, cmdsAfter := serverMicros(b, c)
			b.ReportMetric((after-before)/float64(b.N), "server-µs/op")
			b.ReportMetric((cmdsAfter-cmdsBefore)/float64(b.N), "cmds/op")
		})
	}
}

// BenchmarkSlidingLogWindowRollout measures the sliding log's script on a
// key whose calls alternate two Windows (1s and 1.5s, the same Limit and
// Name), as two replicas configured differently do while a change of
// Window rolls out, against the same key's calls under one Window (the
// peer, measured in the same run). A Take every 2s/Limit, half the Limit
// a second (every one admitted, so every one writes the key's Window):
// under alternation every call finds the key written under the other
// Window and recounts every entry (see slrecount in ratekit.lua). Limit
// sets the key's size: about Limit entries, live and archived.
func BenchmarkSlidingLogWindowRollout(b *testing.B) {
	s, c := newStore(b)
	ctx := context.Background()
	for _, limit := range []int{100, 1000, 10000} {
		step := 2 * time.Second / time.Duration(limit) // half the Limit a second
		one := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "r", Limit: limit, Window: time.Second})
		other := mustLimiter(b, s, redisstore.Config{Algorithm: redisstore.SlidingLog, Name: "r", Limit: limit, Window: 3 * time.Second / 2})
		for _, alternate := range []bool{false, true} {
			b.Run(fmt.Sprintf("limit=%d/alternate=%v", limit, alternate), func(b *testing.B) {
				key := fmt.Sprint("rollout", prefixes.Add(1))
				now := start
				for range 2 * limit { // a full log, and an archive
					if _, err := one.TakeAt(ctx, key, now, 1); err != nil {
						b.Fatal(err)
					}
					now = now.Add(step)
				}
				before, cmdsBefore := serverMicros(b, c)
				b.ResetTimer()
				for i := range b.N {
					l := one
					if alternate && i%2 == 0 {
						l = other
					}
					d, err := l.TakeAt(ctx, key, now.Add(time.Duration(i)*step), 1)
					if err != nil {
						b.Fatal(err)
					}
					if !d.Allowed {
						b.Fatalf("denied: %+v", d)
					}
				}
				b.StopTimer()
				after, cmdsAfter := serverMicros(b, c)
				b.ReportMetric((after-before)/float64(b.N), "server-µs/op")
				b.ReportMetric((cmdsAfter-cmdsBefore)/float64(b.N), "cmds/op")
			})
		}
	}
}
