package core

import (
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/internal/cell"
)

// Fill writes the Decision of v (a verdict: a decision without its
// policy's constant fields) and those fields into *dec, field by field: a
// composite literal would build a temporary and copy its 64 bytes. Every
// algorithm decides into a cell.Verdict and fills the caller's Decision
// once, with Fill.
func Fill(dec *ratekit.Decision, limit int, window time.Duration, name string, v cell.Verdict) {
	dec.Allowed = v.OK
	dec.Limit = limit
	dec.Remaining = v.Remaining
	dec.Window = window
	dec.ResetAfter = v.Reset
	dec.RetryAfter = v.Retry
	dec.Policy = name
}
