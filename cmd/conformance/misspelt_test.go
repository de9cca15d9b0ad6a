package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The binary names a misspelt variable before anything else, the value left out: MAXWAIT=5m was ignored in
// silence, the run waiting the default 10 minutes per job.
func TestTheBinaryWarnsOfAMisspeltVariable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	dir := t.TempDir()
	cmd := exec.Command(buildBinary(t, dir, "conformance", "."))
	cmd.Dir = dir
	// TAGS names no tag: the run ends before any server is started, with exit 2.
	cmd.Env = append(os.Environ(), "MAXWAIT=7m", "TOKENB=not-shown-1234", "TAGS=@NO-SUCH-TAG")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != exitUsage {
		t.Fatalf("exit: %v; want %d\n%s", err, exitUsage, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"warning: MAXWAIT is set, but the harness reads no such variable (ignored): did you mean MAX_WAIT?", "did you mean TOKEN_B?"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "not-shown-1234") || strings.Contains(msg, "7m") {
		t.Errorf("a warning shows a value:\n%s", msg)
	}
}
