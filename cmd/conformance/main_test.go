package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/features"
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
// process, configured only by TARGET, TOKEN and TOKEN_B, run from a directory outside the checkout (the
// features, requirements and schemas are embedded), its reports in the default REPORTS_DIR there.
func TestConformanceBinaryAgainstTheRefserverProcessPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries; skipped under -short")
	}
	dir := t.TempDir()
	base := startRefserver(t, buildBinary(t, dir, "refserver", "../refserver"))
	conformance := buildBinary(t, dir, "conformance", ".")
	elsewhere := t.TempDir()
	reports := filepath.Join(elsewhere, "reports")
	cmd := exec.Command(conformance)
	cmd.Dir = elsewhere
	cmd.Env = append(os.Environ(), "TARGET="+base, "TOKEN="+refserver.DemoTokenA, "TOKEN_B="+refserver.DemoTokenB, "REPORTS_DIR=", "RANDOM_SEED=-1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("conformance against %s: %v\n%s", base, err, out.String())
	}
	scenarios, err := features.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("PASS: %d scenarios against %s", len(scenarios), base)) {
		t.Errorf("want the PASS summary naming the target:\n%s", tail(out.String()))
	}
	for _, f := range []string{"junit.xml", "cucumber.json", "index.html"} {
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
	if code := run(context.Background(), nil, env(map[string]string{"MAX_WAIT": "soon"}), &out, &errOut, nil); code != exitUsage || !strings.Contains(errOut.String(), "MAX_WAIT") {
		t.Errorf("bad MAX_WAIT: exit %d, stderr %q; want %d naming MAX_WAIT", code, errOut.String(), exitUsage)
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"--target"}, env(nil), &out, &errOut, nil); code != exitUsage || !strings.Contains(errOut.String(), "TOKEN_B") {
		t.Errorf("an argument: exit %d; want %d and the usage text", code, exitUsage)
	}
	if code := run(context.Background(), []string{"-h"}, env(nil), &out, &errOut, nil); code != exitPass {
		t.Errorf("-h: exit %d, want 0", code)
	}
	srv, err := refserver.NewServer(refserver.Config{Faults: []string{"unknown-job-400"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	vars := map[string]string{"TARGET": ts.URL + "/fhir", "TOKEN": refserver.DemoTokenA, "TAGS": "@EXP-UNKNOWN-JOB", "REPORTS_DIR": t.TempDir()}
	if code := run(context.Background(), nil, env(vars), &out, &errOut, nil); code != exitFail {
		t.Errorf("a deviation: exit %d, want %d\n%s", code, exitFail, tail(out.String()))
	}
}

// Each misconfiguration a vendor's first run meets ends within seconds as "could not run" (exit 2), with
// its cause and its fix, before any scenario and before any report: the previous run's reports stay.
func TestARunThatCannotHappenExitsTwoWithCauseAndFix(t *testing.T) {
	srv, err := refserver.NewServer(refserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/fhir"
	ln.Close()
	secretDir := t.TempDir()
	targetFile := filepath.Join(secretDir, "target.json")
	tokenFile := filepath.Join(secretDir, "token")
	for path, body := range map[string]string{
		targetFile: `{"name": "vendor X", "variables": {"TARGET": "` + ts.URL + `/fhir"}, "secrets": {"TOKEN": "VENDORX_TOKEN"}}`,
		tokenFile:  refserver.DemoTokenA + "\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := ts.URL + "/fhir"
	for _, tc := range []struct {
		name  string
		vars  map[string]string
		cause string
		fix   string
	}{
		{"closed port", map[string]string{"TARGET": closed, "TOKEN": "x"}, "connection refused", "nothing listens at"},
		{"TARGET without /fhir", map[string]string{"TARGET": ts.URL, "TOKEN": refserver.DemoTokenA}, "is not a FHIR base URL", "did you mean TARGET=" + base + "?"},
		{"TARGET below the base", map[string]string{"TARGET": base + "/metadata", "TOKEN": refserver.DemoTokenA}, "is not a FHIR base URL", "did you mean TARGET=" + base + "?"},
		{"wrong TOKEN", map[string]string{"TARGET": base, "TOKEN": "not-a-token"}, "TOKEN rejected by the server", "valid, unexpired access token"},
		{"wrong TOKEN_B", map[string]string{"TARGET": base, "TOKEN": refserver.DemoTokenA, "TOKEN_B": "not-a-token"}, "TOKEN_B rejected by the server", "TOKEN_B must be"},
		{"no TOKEN", map[string]string{"TARGET": base}, "requires authentication", "set TOKEN"},
		{"TOKEN_B equal to TOKEN", map[string]string{"TARGET": base, "TOKEN": refserver.DemoTokenA, "TOKEN_B": refserver.DemoTokenA}, "TOKEN_B is the same token as TOKEN", "second user's token"},
		{"target file naming an unset secret", map[string]string{"CONFIG": targetFile}, "VENDORX_TOKEN, which is not set", "export VENDORX_TOKEN"},
		{"TOKEN and TOKEN_FILE", map[string]string{"TARGET": base, "TOKEN": refserver.DemoTokenA, "TOKEN_FILE": tokenFile}, "TOKEN and TOKEN_FILE both given", "set one"},
		{"REPORT_TARGET on a closed port", map[string]string{"EXPORT_TARGET": base, "REPORT_TARGET": closed, "TOKEN": refserver.DemoTokenA}, "REPORT_TARGET=" + closed + " does not answer", "check the port in REPORT_TARGET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reports := t.TempDir()
			previous := filepath.Join(reports, "junit.xml")
			if err := os.WriteFile(previous, []byte("<testsuites/>"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.vars["REPORTS_DIR"], tc.vars["REQUEST_TIMEOUT"] = reports, "5s"
			var out, errOut bytes.Buffer
			start := time.Now()
			code := run(context.Background(), nil, func(k string) string { return tc.vars[k] }, &out, &errOut, nil)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("took %v: a misconfiguration must end within seconds", elapsed)
			}
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			msg := errOut.String()
			if !strings.Contains(msg, tc.cause) || !strings.Contains(msg, tc.fix) {
				t.Errorf("stderr must name the cause %q and the fix %q:\n%s", tc.cause, tc.fix, msg)
			}
			if strings.Contains(out.String(), "scenarios") {
				t.Errorf("scenarios ran:\n%s", tail(out.String()))
			}
			if raw, err := os.ReadFile(previous); err != nil || string(raw) != "<testsuites/>" {
				t.Errorf("the previous run's junit.xml was replaced (%v): %q", err, raw)
			}
			if strings.Contains(msg, refserver.DemoTokenA) {
				t.Errorf("the message shows a token:\n%s", msg)
			}
		})
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// A first Ctrl-C ends the run in order, deleting the exports it started; a second one, while those DELETEs
// wait on the server, ends the process at once, and removes the reports it had staged.
func TestASecondInterruptQuitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped under -short")
	}
	srv, err := refserver.NewServer(refserver.Config{ExportDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kickedOff := make(chan struct{})
	var once sync.Once
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete: // every cancel, the end-of-run cleanup's too, held until the client gives up
			<-r.Context().Done()
			return
		case strings.HasSuffix(r.URL.Path, "/$export"):
			defer once.Do(func() { close(kickedOff) })
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()

	reports := t.TempDir()
	cmd := exec.Command(buildBinary(t, t.TempDir(), "conformance", "."))
	cmd.Env = append(os.Environ(), "TARGET="+ts.URL+"/fhir", "TOKEN="+refserver.DemoTokenA, "TOKEN_B="+refserver.DemoTokenB, "REPORTS_DIR="+reports, "FEATURES=export")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		out      strings.Builder // stderr, read to its end before Wait
		told     = make(chan struct{})
		readDone = make(chan struct{})
	)
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "press Ctrl-C again to quit at once") {
				close(told)
			}
		}
	}()
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-readDone:
			_ = cmd.Wait()
			t.Fatalf("the run ended before %s:\n%s", what, out.String())
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("no %s within 2 minutes", what)
		}
	}
	wait("its first kick-off", kickedOff)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// The run now ends in order, its exports' DELETEs held by the server for steps.EndRunWait.
	wait("the interrupt's message", told)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-readDone
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted || !strings.Contains(out.String(), "interrupted twice") {
		t.Fatalf("want the process ended by the second interrupt, exit code %d, got %v:\n%s", exitInterrupted, err, out.String())
	}
	// it left nothing in REPORTS_DIR: not its staged reports, which have not had their last redaction pass
	if left, err := os.ReadDir(reports); err != nil || len(left) != 0 {
		t.Errorf("REPORTS_DIR holds %v (%v), want nothing", left, err)
	}
}
