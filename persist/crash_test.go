package persist_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// The crash tests run a child process (this test binary, re-executed to run
// TestHelperProcess) that takes and checkpoints in a loop, kill it with
// SIGKILL in the middle of its checkpoints, and check what the file holds.
//
// The child works in rounds. In round r it takes one unit from each of
// crashKeys keys of a keyed set and from a single limiter, then
// checkpoints, and prints "done r". Each checkpoint commits one transaction
// for the single limiter, then crashKeys/crashBatch for the set (every key
// changed). After the child has restored the file's state, a key's count
// after round r is what it restored plus r. So if the child dies during
// checkpoint c, the file must hold, for every key, the count of round c-1
// or of round c (never anything else: no torn or partial state), and the
// single limiter's count of round c if any key has it. A third set takes
// continuously from another goroutine while the child checkpoints.
const (
	crashKeys  = 1000
	crashBatch = 100
	crashEnv   = "RATEKIT_PERSIST_CRASH_CHILD" // the store's path: run as the child
	pauseEnv   = "RATEKIT_PERSIST_CRASH_PAUSE" // "round:commit": stop there and wait
)

// crashLimiter is the limiter of every key: a window that stays open for
// the test (all takes are at t0) and never fills.
func crashLimiter() *rolling.Limiter {
	l, err := rolling.New(rolling.Config{Limit: wide(rolling.MaxLimit), Window: 1000 * time.Hour})
	if err != nil {
		panic(err)
	}
	return l
}

func crashKey(i int) string { return fmt.Sprintf("key-%04d", i) }

// TestHelperProcess is the child of the crash tests; run alone, it skips.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("the child process of the crash tests")
	}
	pauseRound, pauseCommit := -1, -1
	if p := os.Getenv(pauseEnv); p != "" {
		fmt.Sscanf(p, "%d:%d", &pauseRound, &pauseCommit)
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	s, err := persist.Open(path, persist.Options{CheckpointInterval: -1, BatchSize: crashBatch, NoSync: true})
	if err != nil {
		fail(err)
	}
	keys := newSet(func(string) *rolling.Limiter { return crashLimiter() })
	total := crashLimiter()
	if err := persist.AttachKeyed(s, "keys", keys, persist.StringKey{}); err != nil {
		fail(err)
	}
	if err := s.Attach("total", total); err != nil {
		fail(err)
	}
	// Another set takes continuously, concurrently with the checkpoints:
	// its states are not checked, only that they restore.
	noise := newSet(func(string) *rolling.Limiter { return crashLimiter() })
	if err := persist.AttachKeyed(s, "noise", noise, persist.StringKey{}); err != nil {
		fail(err)
	}
	go func() {
		for i := 0; ; i++ {
			noise.Take(t0, crashKey(i%200), 1)
			if i%64 == 0 {
				runtime.Gosched()
			}
		}
	}()
	round, commit := 0, 0
	persist.SetOnCommit(s, func() {
		commit++
		fmt.Printf("commit %d %d\n", round, commit)
		if round == pauseRound && commit == pauseCommit {
			fmt.Println("paused")
			io.Copy(io.Discard, os.Stdin) // until killed
			fail(fmt.Errorf("not killed"))
		}
	})
	for round = 1; ; round++ {
		for i := range crashKeys {
			keys.Take(t0, crashKey(i), 1)
		}
		total.Take(t0, 1)
		commit = 0
		if err := s.Checkpoint(); err != nil {
			fail(err)
		}
		fmt.Printf("done %d\n", round)
	}
}

// crashState is what a store file holds: each key's count and the single
// limiter's.
type crashState struct {
	keys  map[string]int
	total int
}

// readCrashState opens the file as the child does, checks that it restores
// without error, and returns what it restored. It closes the file without
// writing (as if it crashed too), so that it changes nothing.
func readCrashState(t *testing.T, path string) crashState {
	t.Helper()
	s, err := persist.Open(path, persist.Options{CheckpointInterval: -1})
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	defer persist.Abandon(s)
	keys := newSet(func(string) *rolling.Limiter { return crashLimiter() })
	total := crashLimiter()
	if err := persist.AttachKeyed(s, "keys", keys, persist.StringKey{}); err != nil {
		t.Fatalf("restoring the set after the crash: %v", err)
	}
	if err := s.Attach("total", total); err != nil {
		t.Fatalf("restoring the single limiter after the crash: %v", err)
	}
	noise := newSet(func(string) *rolling.Limiter { return crashLimiter() })
	if err := persist.AttachKeyed(s, "noise", noise, persist.StringKey{}); err != nil {
		t.Fatalf("restoring the busy set after the crash: %v", err)
	}
	st := crashState{keys: map[string]int{}, total: used(total, t0)}
	for k, l := range keys.All() {
		st.keys[k] = used(l, t0)
	}
	return st
}

// startChild starts the child on path and returns its command and a
// scanner of its stdout lines.
func startChild(t *testing.T, path, pause string) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, pauseEnv+"="+pause)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child's stderr:\n%s", stderr.String())
		}
	})
	return cmd, bufio.NewScanner(stdout), stdin
}

// waitFor reads the child's lines until one equals want, and returns the
// last "done" round seen.
func waitFor(t *testing.T, sc *bufio.Scanner, want string) int {
	t.Helper()
	done := 0
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "done "); ok {
			done, _ = strconv.Atoi(r)
		}
		if line == want {
			return done
		}
	}
	t.Fatalf("the child ended before printing %q: %v", want, sc.Err())
	return 0
}

// kill kills the child with SIGKILL and waits for it to die.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func skipCrash(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs fork and SIGKILL")
	}
	if testing.Short() {
		t.Skip("-short")
	}
}

// Killed between two batches of a checkpoint, the file holds exactly the
// batches committed so far over the checkpoint before.
func TestCrashBetweenBatches(t *testing.T) {
	skipCrash(t)
	path := tempPath(t)
	// Round 3's checkpoint: commit 1 is the single limiter, 2 to 4 are
	// three batches of the set.
	cmd, sc, _ := startChild(t, path, "3:4")
	waitFor(t, sc, "paused")
	kill(t, cmd)

	st := readCrashState(t, path)
	if st.total != 3 {
		t.Errorf("single limiter: %d, want 3", st.total)
	}
	counts := map[int]int{}
	for _, c := range st.keys {
		counts[c]++
	}
	if len(st.keys) != crashKeys || counts[3] != 3*crashBatch || counts[2] != crashKeys-3*crashBatch {
		t.Errorf("%d keys; counts %v, want %d at 3 and %d at 2", len(st.keys), counts, 3*crashBatch, crashKeys-3*crashBatch)
	}
}

// Killed at whatever point the child has reached (inside a bbolt commit,
// between two, marshalling), again and again on the same file: the file
// opens cleanly every time, every key has a complete state, and every state
// is from the last checkpoint the child completed or the one it was in.
func TestCrashAnywhere(t *testing.T) {
	skipCrash(t)
	path := tempPath(t)
	base := crashState{keys: map[string]int{}}
	for run := range 5 {
		cmd, sc, _ := startChild(t, path, "")
		// Let it complete a few checkpoints, then kill it at once: it is
		// somewhere in the next ones.
		p := 2 + run
		waitFor(t, sc, fmt.Sprintf("done %d", p))
		kill(t, cmd)

		st := readCrashState(t, path)
		if len(st.keys) != crashKeys {
			t.Fatalf("run %d: %d keys restored, want %d", run, len(st.keys), crashKeys)
		}
		// Rounds since the child's start, per key.
		lo, hi := int(^uint(0)>>1), -1
		for k, c := range st.keys {
			d := c - base.keys[k]
			lo, hi = min(lo, d), max(hi, d)
		}
		total := st.total - base.total
		t.Logf("run %d: killed after round %d; keys at rounds %d..%d, single limiter at %d", run, p, lo, hi, total)
		switch {
		case lo < p:
			t.Errorf("run %d: a key lost a completed checkpoint: at round %d, want %d or later", run, lo, p)
		case hi > lo+1:
			t.Errorf("run %d: keys at rounds %d to %d: more than two checkpoints", run, lo, hi)
		case total != hi && !(total == lo+1 && hi == lo):
			t.Errorf("run %d: single limiter at round %d, keys at %d..%d", run, total, lo, hi)
		}
		base = st
	}
}
