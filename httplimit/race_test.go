//go:build race

package httplimit_test

// raceEnabled is true under -race, whose instrumentation allocates and whose
// sync.Pool drops items at random, so allocation counts mean nothing there.
const raceEnabled = true
