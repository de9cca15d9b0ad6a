//go:build !unix

package harness

import "time"

// cpuTime: this system's CPU time is not read here, so the CPU bounds of the hostile runs are not checked.
func cpuTime() (time.Duration, bool) { return 0, false }
