//go:build !unix

package ratekit_test

import "time"

// cpuTime returns -1: this system has no getrusage.
func cpuTime() time.Duration { return -1 }
