package tokenbucket_test

import "github.com/ratekit/ratekit/internal/conformance"

// wide is conformance.Wide: a count past 2^31 that compiles on 32-bit.
var wide = conformance.Wide

// need64 is conformance.Need64: skips a test whose counts pass 2^31 on 32-bit.
var need64 = conformance.Need64
