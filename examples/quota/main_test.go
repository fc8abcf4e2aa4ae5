package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The demo's promise: a second run starts where the first stopped.
func TestQuotaSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "quota.db")
	t0 := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)

	var out bytes.Buffer
	if err := run(&out, db, 30, t0); err != nil {
		t.Fatal(err)
	}
	first := out.String()
	// 30 events at once: the system burst of 25 admits 25, refuses 5, and
	// the refused ones do not use the daily quota.
	for _, want := range []string{
		"tok_prod     admitted 25 of 30, refused by system: 5",
		"daily quota left 75, resets in 24h0m0s",
	} {
		if !strings.Contains(first, want) {
			t.Fatalf("first run lacks %q:\n%s", want, first)
		}
	}

	// A restart within the minute: the system window opened by the first
	// run's first event is still open and admits nothing more (a token
	// bucket would have refilled), and refused events use no daily quota.
	out.Reset()
	if err := run(&out, db, 30, t0.Add(59*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tok_prod     admitted  0 of 30, refused by system: 30",
		"daily quota left 75, resets in 23h59m1s",
		"last refusal: system, Retry-After 710ms", // the window closes at t0+1m
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("run within the minute lacks %q:\n%s", want, out.String())
		}
	}

	// A restart a minute later: a new system window opens, the daily
	// window is the same one, 25 events further on.
	out.Reset()
	if err := run(&out, db, 30, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	second := out.String()
	for _, want := range []string{
		"tok_prod     admitted 25 of 30, refused by system: 5",
		"daily quota left 50, resets in 23h59m0s",
	} {
		if !strings.Contains(second, want) {
			t.Fatalf("second run lacks %q:\n%s", want, second)
		}
	}

	// Two more runs use up the day: the daily limit refuses next.
	for i := 2; i <= 4; i++ {
		out.Reset()
		if err := run(&out, db, 30, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if last := out.String(); !strings.Contains(last, "refused by daily: 30") || !strings.Contains(last, "daily quota left 0") {
		t.Fatalf("fifth run: want the daily quota used up:\n%s", last)
	}
}
