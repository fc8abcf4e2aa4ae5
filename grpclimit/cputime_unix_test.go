//go:build unix

package grpclimit_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used. On a
// shared, oversubscribed machine it is a steadier measure of cost than wall
// time, which includes the time other processes hold the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
