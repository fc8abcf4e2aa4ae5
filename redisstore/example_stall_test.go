package redisstore_test

import (
	"context"
	"io"
	"os"
	"testing"
)

// TestExampleForOutputUnderStall: ExampleLimiter_For's output holds when
// Redis takes longer than the example's 50ms Timeout to answer, as a call
// can on a loaded CI machine (its first call also dials and loads the
// script): the fallback then decides, and nothing the example prints may
// depend on which of the two did. Before, the example printed its OnError
// line to stdout, and a stall failed it. CLIENT PAUSE stalls the shared
// server for 300ms, deterministically.
func TestExampleForOutputUnderStall(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	// All clients (the default mode; Redis before 6.2 takes no mode).
	if err := c.Do(ctx, "CLIENT", "PAUSE", "300").Err(); err != nil {
		t.Fatal(err)
	}
	got := stdoutOf(t, ExampleLimiter_For)
	// The next test finds the server answering: a PING waits out the pause.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if want := "true burst 9\n"; got != want {
		t.Fatalf("ExampleLimiter_For with Redis stalled printed %q; want %q, its Output", got, want)
	}
}

// stdoutOf returns what f writes to os.Stdout.
func stdoutOf(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	defer func() {
		os.Stdout = saved
	}()
	f()
	w.Close()
	s := <-out
	r.Close()
	return s
}
