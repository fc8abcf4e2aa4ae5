package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/redisstore"
)

// The tests run against real redis-server processes that they start
// themselves, on loopback, on free ports, without persistence. shared is
// the one most tests use; restart tests start their own.
var (
	redisBin   string // path of redis-server, "" if absent
	shared     *server
	sharedAddr string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// quiet discards go-redis's log lines: the tests break connections on
// purpose.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func run(m *testing.M) int {
	redis.SetLogger(quiet{})
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, "redisstore: redis-server is not installed; CI must install it (.ci/run does, from Debian's redis-server package)")
			return 1
		}
		fmt.Fprintln(os.Stderr, "redisstore: redis-server not found: tests that need Redis are skipped (apt-get install redis-server)")
		return m.Run()
	}
	redisBin = bin
	dir, err := os.MkdirTemp("", "redisstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shared, err = startServer(dir, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisstore: starting redis-server:", err)
		return 1
	}
	defer shared.stop()
	sharedAddr = shared.addr()
	return m.Run()
}

// server is a redis-server process of the tests' own.
type server struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been waited for
	killed bool          // by stop
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pickPort is startServer's source of free ports: freePort, but for a test
// of a port taken in the meantime.
var pickPort = freePort

// startServer starts redis-server in dir on port (0: a free one) and waits
// until it answers PING. A port freePort found free may be taken by
// another process before redis-server binds it (CI may share the machine):
// redis-server then exits at once, and with port 0 another free port is
// tried, up to three in all.
func startServer(dir string, port int) (*server, error) {
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = pickPort(); err != nil {
				return nil, err
			}
		}
		s, err := tryServer(dir, p)
		if err == nil {
			return s, nil
		}
		if port == 0 && attempt < 3 && s.exitedEarly() {
			continue
		}
		return nil, err
	}
}

// exitedEarly reports whether a server tryServer failed to start had
// exited by itself (a port taken) rather than been stopped for not
// answering.
func (s *server) exitedEarly() bool {
	select {
	case <-s.exited:
		return !s.killed
	default:
		return false
	}
}

// tryServer starts redis-server in dir on port, with extra arguments, and
// waits until it answers PING, or has exited, or 10 seconds have passed.
// On an error, the process has exited.
func tryServer(dir string, port int, extra ...string) (*server, error) {
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"}, extra...)
	cmd := exec.Command(redisBin, args...)
	cmd.Dir = dir
	s := &server{dir: dir, port: port, cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		close(s.exited)
		return s, err
	}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	// Polling for readiness: the process has no other signal we can wait on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			return s, fmt.Errorf("redis-server on port %d exited before it answered (%v): %w", port, cmd.ProcessState, err)
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return s, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the process and waits for it.
func (s *server) stop() {
	s.killed = true
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// needRedis skips t when redis-server is absent (never in CI: TestMain
// fails there first).
func needRedis(tb testing.TB) {
	tb.Helper()
	if redisBin == "" {
		tb.Skip("redis-server not installed")
	}
}

// newClient returns a client of the shared server, closed at cleanup.
func newClient(tb testing.TB) *redis.Client {
	tb.Helper()
	needRedis(tb)
	c := redis.NewClient(&redis.Options{Addr: sharedAddr, PoolSize: 32})
	tb.Cleanup(func() { c.Close() })
	return c
}

var prefixes atomic.Int64

// newStore returns a Store on the shared server with a prefix of its own,
// so that tests never see each other's keys.
func newStore(tb testing.TB) (*redisstore.Store, *redis.Client) {
	tb.Helper()
	c := newClient(tb)
	return mustStore(tb, c), c
}

func mustStore(tb testing.TB, c redis.UniversalClient) *redisstore.Store {
	tb.Helper()
	s, err := redisstore.New(c, redisstore.Options{
		Prefix: fmt.Sprintf("t%d:", prefixes.Add(1)),
		// Injected times run slower than the server's clock in tests.
		TTLSlack: time.Hour,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustLimiter(tb testing.TB, s *redisstore.Store, cfg redisstore.Config) *redisstore.Limiter {
	tb.Helper()
	l, err := s.Limiter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// TestStartServerPortTaken: a port taken between freePort and redis-server's
// bind (by another process on a shared machine) costs startServer one more
// try on another port, not a failed TestMain.
func TestStartServerPortTaken(t *testing.T) {
	needRedis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	var picks int
	pickPort = func() (int, error) {
		if picks++; picks == 1 {
			return taken, nil
		}
		return freePort()
	}
	defer func() { pickPort = freePort }()
	s, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatalf("startServer with its first port taken: %v", err)
	}
	defer s.stop()
	if s.port == taken || picks != 2 {
		t.Fatalf("server on port %d after %d picks; want another port than the taken %d, at the second", s.port, picks, taken)
	}
}
