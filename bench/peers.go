// Package bench benchmarks ratekit against the Go limiters its users would
// otherwise pick, doing the same work in the same run. It is its own module
// so that the peers never enter ratekit's go.mod.
//
// Every benchmark is named Benchmark<Case>/<impl>: impl is "ratekit", a
// ratekit variant "ratekit-<algorithm>", or a peer's short name:
//
//	xrate      golang.org/x/time/rate          token bucket, float tokens, mutex
//	uber       go.uber.org/ratelimit           blocking pacer (Take sleeps), atomic
//	juju       github.com/juju/ratelimit       token bucket, mutex
//	sethvargo  github.com/sethvargo/go-limiter memorystore: keyed, refilled per interval tick
//	ulule      github.com/ulule/limiter/v3     memory store: keyed counter expiring a Period after its first hit
//	throttled  github.com/throttled/throttled/v2 GCRA over memstore: keyed, CAS per key
//	xsync      golang.org/x/sync/semaphore     weighted semaphore, mutex
//
// cmd/benchtable runs them and prints ratekit beside every peer; RESULTS.md
// keeps the latest table. Each case's file says how the peers are
// configured and which of them cannot do it.
package bench

// The peers, imported here so that go.mod keeps them whichever cases use
// them.
import (
	_ "github.com/juju/ratelimit"
	_ "github.com/sethvargo/go-limiter/memorystore"
	_ "github.com/throttled/throttled/v2/store/memstore"
	_ "github.com/ulule/limiter/v3/drivers/store/memory"
	_ "go.uber.org/ratelimit"
	_ "golang.org/x/sync/semaphore"
	_ "golang.org/x/time/rate"

	_ "github.com/ratekit/ratekit"
)
