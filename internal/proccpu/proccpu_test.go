package proccpu

import (
	"runtime"
	"testing"
)

// Work done shows in the CPU time used, which never goes back.
func TestUsedGrowsWithWork(t *testing.T) {
	before, ok := Used()
	if !ok {
		t.Skip("no CPU time on " + runtime.GOOS)
	}
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	after, _ := Used()
	if after <= before {
		t.Fatalf("CPU time %s before the work, %s after (%d)", before, after, x)
	}
}
