module github.com/ratekit/ratekit/internal/lincheck

go 1.25

require (
	github.com/benbjohnson/clock v1.3.5
	github.com/ratekit/ratekit v0.0.0
)

require github.com/anishathalye/porcupine v1.3.1

replace github.com/ratekit/ratekit => ../..
