package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// buildBinary compiles a command of this module into dir, as a vendor or CI would run it.
func buildBinary(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// startRefserver runs the reference server as a separate process on a free loopback port and returns its
// FHIR base URL, read from its first line of output.
func startRefserver(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start refserver: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "refserver listening on "); ok {
				lines <- url
			}
		}
	}()
	select {
	case url := <-lines:
		return url
	case <-time.After(30 * time.Second):
		t.Fatal("refserver printed no listening line within 30s")
	}
	return ""
}

// The vendor path end to end: the conformance binary against the reference server running as its own
// process, configured only by TARGET, TOKEN and TOKEN_B.
func TestConformanceBinaryAgainstTheRefserverProcessPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries; skipped under -short")
	}
	dir := t.TempDir()
	base := startRefserver(t, buildBinary(t, dir, "refserver", "../refserver"))
	conformance := buildBinary(t, dir, "conformance", ".")
	reports := filepath.Join(dir, "reports")
	cmd := exec.Command(conformance)
	cmd.Env = append(os.Environ(), "TARGET="+base, "TOKEN="+refserver.DemoTokenA, "TOKEN_B="+refserver.DemoTokenB, "REPORTS_DIR="+reports, "RANDOM_SEED=-1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("conformance against %s: %v\n%s", base, err, out.String())
	}
	if !strings.Contains(out.String(), "PASS: 18 scenarios against "+base) {
		t.Errorf("want the PASS summary naming the target:\n%s", tail(out.String()))
	}
	for _, f := range []string{"junit.xml", "cucumber.json"} {
		if st, err := os.Stat(filepath.Join(reports, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s: %v", f, err)
		}
	}
	if strings.Contains(out.String(), refserver.DemoTokenA) || strings.Contains(out.String(), refserver.DemoTokenB) {
		t.Error("the console output shows a token")
	}
}

func TestExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	if code := run(context.Background(), nil, env(map[string]string{"MAX_WAIT": "soon"}), &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "MAX_WAIT") {
		t.Errorf("bad MAX_WAIT: exit %d, stderr %q; want %d naming MAX_WAIT", code, errOut.String(), exitUsage)
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"--target"}, env(nil), &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "TOKEN_B") {
		t.Errorf("an argument: exit %d; want %d and the usage text", code, exitUsage)
	}
	if code := run(context.Background(), []string{"-h"}, env(nil), &out, &errOut); code != exitPass {
		t.Errorf("-h: exit %d, want 0", code)
	}
	dir := t.TempDir()
	vars := map[string]string{"TARGET": "http://127.0.0.1:1/fhir", "TAGS": "@EXP-UNKNOWN-JOB", "REPORTS_DIR": dir, "REQUEST_TIMEOUT": "2s"}
	if code := run(context.Background(), nil, env(vars), &out, &errOut); code != exitFail {
		t.Errorf("connection refused: exit %d, want %d", code, exitFail)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}
