module github.com/ratekit/ratekit/redisstore

go 1.26.0

replace github.com/ratekit/ratekit => ../

require (
	github.com/ratekit/ratekit v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/benbjohnson/clock v1.3.5 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
