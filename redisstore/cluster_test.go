package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

// startCluster starts a Redis Cluster of three masters, each a
// redis-server process on a loopback port, joined by redis-cli --cluster
// create, and returns a ClusterClient of it. The processes are killed at
// cleanup; start-up is bounded (30s) and polled, the one place the tests
// wait on the wall clock.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	needRedis(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-cli is not installed; CI must install it (.ci/run does, from Debian's redis-tools)")
		}
		t.Skip("redis-cli not installed (apt-get install redis-tools)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	var addrs []string
	for i := range 3 {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// A port clusterPort found free may be taken before redis-server
		// binds it (CI may share the machine): the process then exits at
		// once, and another pair of ports is tried.
		for attempt := 1; ; attempt++ {
			port, err := clusterPort()
			if err != nil {
				t.Fatal(err)
			}
			srv, err := tryServer(dir, port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000")
			if err != nil {
				if attempt < 3 && srv.exitedEarly() {
					continue
				}
				t.Fatalf("cluster node %d: %v", i, err)
			}
			t.Cleanup(srv.stop)
			addrs = append(addrs, srv.addr())
			break
		}
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must see the whole cluster before clients route to it.
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("cluster node %s not ready: %v %q", addr, err, info)
			}
			time.Sleep(20 * time.Millisecond) // polling start-up
		}
		c.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { cc.Close() })
	// The client's view of the slots is loaded lazily: wait until it
	// reaches every master.
	for {
		var n atomic.Int32 // ForEachMaster calls concurrently
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			n.Add(1)
			return c.Ping(ctx).Err()
		})
		if err == nil && n.Load() == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster client: %d masters, %v", n.Load(), err)
		}
		cc.ReloadState(ctx)
		time.Sleep(20 * time.Millisecond) // polling start-up
	}
	return cc
}

// clusterPort returns a free loopback port whose cluster bus port (+10000)
// is free too.
func clusterPort() (int, error) {
	for range 100 {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if p+10000 > 65535 {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		ln.Close()
		return p, nil
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// TestCluster runs against a real three-master Redis Cluster, through
// go-redis's ClusterClient: every algorithm (script against the reference
// models, with keys in many slots), TakeAll within one hash slot, the
// lease mode, and the error for keys in different slots.
func TestCluster(t *testing.T) {
	cc := startCluster(t)
	sd := seed(t)
	store := func(t *testing.T, evalOnly bool) *redisstore.Store {
		s, err := redisstore.New(cc, redisstore.Options{Prefix: fmt.Sprintf("cl%d:", prefixes.Add(1)), TTLSlack: time.Hour, EvalOnly: evalOnly})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("algorithms", func(t *testing.T) {
		for _, evalOnly := range []bool{false, true} {
			t.Run(fmt.Sprint("EvalOnly=", evalOnly), func(t *testing.T) { matchModels(t, store(t, evalOnly), sd) })
		}
		// The keys really are spread over the masters.
		spread := map[string]bool{}
		for i := range 6 {
			if c, err := cc.MasterForKey(context.Background(), "k"+strconv.Itoa(i)); err == nil {
				spread[c.Options().Addr] = true
			}
		}
		if len(spread) < 2 {
			t.Errorf("the model test's keys all hash to one master: %v", spread)
		}
	})
	t.Run("TakeAll", func(t *testing.T) { takeAllMatches(t, store(t, false), sd) })
	t.Run("semaphore", func(t *testing.T) {
		s := store(t, false)
		sem := mustSemaphore(t, s, redisstore.SemaphoreConfig{Name: "jobs", Limit: 2, Lease: time.Minute})
		rate := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.FixedWindow, Name: "ip", Limit: 10, Window: time.Minute})
		for i := range 3 {
			d, ls, err := s.HoldAt(context.Background(), start, 1, rate.On("{ds}:ip"), sem.On("{ds}"))
			if err != nil || d.Allowed != (i < 2) || len(ls) != map[bool]int{true: 1, false: 0}[i < 2] {
				t.Fatalf("Hold %d = %v, %v, %v", i, d, ls, err)
			}
		}
	})
	t.Run("cross-slot", func(t *testing.T) {
		s := store(t, false)
		a := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "a", Limit: 5, Window: time.Minute})
		b := mustLimiter(t, s, redisstore.Config{Algorithm: redisstore.Rolling, Name: "b", Limit: 5, Window: time.Minute})
		_, err := s.TakeAll(context.Background(), 1, a.On("{org1}"), b.On("{org2}"))
		if !errors.Is(err, redisstore.ErrCrossSlot) || !strings.Contains(err.Error(), "hash tag") {
			t.Fatalf("TakeAll across slots: %v; want ErrCrossSlot naming the fix", err)
		}
		// Nothing was taken.
		if d, _ := a.Peek(context.Background(), "{org1}", 0); d.Remaining != 5 {
			t.Fatalf("a cross-slot TakeAll took units: %v", d)
		}
	})
	t.Run("leases", func(t *testing.T) {
		s := store(t, false)
		for _, cfg := range leaseConfigs {
			t.Run(cfg.Name, func(t *testing.T) { leasesConform(t, s, cfg, sd) })
		}
	})
}
