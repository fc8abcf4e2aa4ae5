// Package lincheck checks ratekit's limiters for linearizability: its tests
// record random concurrent histories of Take, Peek, Refund, Reconfigure and
// UnmarshalBinary (and, for Keyed, Takes by key while keys are inserted,
// swept, evicted and the tables grow; for TakeAll, composites of two
// limiters decided together beside direct calls), and check each history with
// github.com/anishathalye/porcupine against the algorithm's sequential
// reference model in internal/model. The package has no API; it is a nested
// module so that porcupine stays out of the root go.mod.
//
// Every operation carries an explicit time, drawn from a logical clock the
// goroutines share and advance (some stamps stale), so the models, which are
// deterministic given the operation, its time and n, decide exactly what the
// limiter must. The token bucket's one exception is the bound on stamps its
// Refund reads, which a Take may raise and then lose its race: a Take is
// checked as itself and a Stamp in its interval, which the model may take
// or not (withStamps). Real-time order comes from an atomic sequence counter read
// before each call and after its return.
//
// The short pass runs in CI, a couple of seconds per algorithm:
//
//	cd internal/lincheck && go test ./...
//
// The long pass runs each algorithm for a minute, with longer histories:
//
//	cd internal/lincheck && RATEKIT_LINCHECK=long go test -timeout 30m ./...
//
// RATEKIT_LINCHECK_TIME=5m sets the time per algorithm instead,
// RATEKIT_LINCHECK_GOROUTINES and RATEKIT_LINCHECK_OPS the goroutines of a
// history and the operations of each (one goroutine makes a sequential
// history, and a failure then names the first operation the model decides
// otherwise). Each test logs its seed; RATEKIT_LINCHECK_SEED=<seed> replays
// the same operations (the interleaving is the scheduler's and is not
// replayed). A history that is not linearizable fails the test, which
// prints it and writes porcupine's HTML visualization to a temporary file
// whose path it prints. The search of one history has a budget of model
// steps, not of time, so that a loaded machine decides as an idle one does;
// a history whose search outgrows it gets no verdict (logged, not failed,
// and another history is checked in its place; a test none of whose
// histories gets one fails).
package lincheck
