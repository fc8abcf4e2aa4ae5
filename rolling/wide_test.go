package rolling_test

import "github.com/ratekit/ratekit/internal/conformance"

// wide is conformance.Wide: a count past 2^31 that compiles on 32-bit.
var wide = conformance.Wide
