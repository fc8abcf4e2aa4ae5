// Package bench benchmarks ratekit against the Go limiters its users would
// otherwise pick, doing the same work in the same run. It is its own module
// so that the peers never enter ratekit's go.mod.
package bench

// The peers, imported here so that go.mod keeps them even while a case that
// uses one is being written.
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
