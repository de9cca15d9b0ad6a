//go:build unix

package harness

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this test process has used, user and system, in all its threads: the work done,
// which other processes on a loaded machine do not inflate as they do the wall-clock time. false where the
// system does not tell it.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
