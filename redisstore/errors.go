package redisstore

import "github.com/ratekit/ratekit/internal/core"

const pkg = "redisstore"

// invalid returns an error wrapping ratekit.ErrInvalidConfig.
func invalid(format string, args ...any) error { return core.Invalid(pkg, format, args...) }
