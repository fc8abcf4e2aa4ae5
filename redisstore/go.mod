module github.com/ratekit/ratekit/redisstore

go 1.26.0

replace github.com/ratekit/ratekit => ../

require (
	github.com/benbjohnson/clock v1.3.5
	github.com/go-redis/redis_rate/v10 v10.0.1
	github.com/ratekit/ratekit v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
	github.com/ulule/limiter/v3 v3.11.2
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
