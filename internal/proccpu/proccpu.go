//go:build unix

// Package proccpu reads the CPU time this process has used, for tests that bound the work a run or a request
// does: unlike the wall-clock time, it does not grow with the other processes' load on a shared machine.
package proccpu

import (
	"syscall"
	"time"
)

// Used is the CPU time, user and system, that this process has used in all its threads; false where the
// system does not tell it.
func Used() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
