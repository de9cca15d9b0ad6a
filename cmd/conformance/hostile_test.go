package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/internal/hostiletest"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The conformance command's exit code against hostile targets: never 0, and the cause in its output.
func TestExitCodeIsNonZeroForAHostileTarget(t *testing.T) {
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	throttling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(func() { close(release); silent.Close(); throttling.Close() })
	for _, tc := range []struct{ name, target, cause string }{
		{"never answers", silent.URL + "/fhir", "REQUEST_TIMEOUT"},
		{"429 storm", throttling.URL + "/fhir", "429 Too Many Requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"TARGET": tc.target, "TOKEN": "x", "TAGS": "@EXP-UNKNOWN-JOB,@RJS-BUNDLE", "REPORTS_DIR": t.TempDir(),
				"REQUEST_TIMEOUT": "500ms", "MAX_WAIT": "2s"}
			var out, errOut bytes.Buffer
			start := time.Now()
			code := run(context.Background(), nil, func(k string) string { return vars[k] }, &out, &errOut, nil)
			if code == exitPass {
				t.Fatalf("exit 0 against a hostile target:\n%s", out.String())
			}
			if elapsed := time.Since(start); elapsed > 20*time.Second {
				t.Errorf("the run took %v", elapsed)
			}
			if !strings.Contains(out.String()+errOut.String(), tc.cause) {
				t.Errorf("exit %d; the output does not name %q:\n%s%s", code, tc.cause, out.String(), errOut.String())
			}
		})
	}
}

// GATE=1 turns a run whose scenarios all passed, but that left MUST requirements unchecked, into exit 1; the
// same run without GATE exits 0.
func TestGateExitCode(t *testing.T) {
	srv, err := refserver.NewServer(refserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for gate, want := range map[string]int{"": exitPass, "1": exitFail} {
		vars := map[string]string{"TARGET": ts.URL + "/fhir", "TOKEN": refserver.DemoTokenA, "TAGS": "@EXP-UNKNOWN-JOB,@EXP-CROSS-USER",
			"GATE": gate, "REPORTS_DIR": t.TempDir()}
		var out, errOut bytes.Buffer
		if code := run(context.Background(), nil, func(k string) string { return vars[k] }, &out, &errOut, nil); code != want {
			t.Errorf("GATE=%q: exit %d, want %d\n%s%s", gate, code, want, out.String(), errOut.String())
		}
		if gate == "1" && !strings.Contains(out.String(), "EXP-CROSS-USER  skipped: user B has no token") {
			t.Errorf("GATE=1: the output must name the unchecked requirement and why:\n%s", out.String())
		}
	}
}

// A server that passes the preflight and then drops the connections of the export kick-offs: the run could
// not check those requirements, so it ends as "could not run to the end" (exit 2), not as a failed server
// (exit 1), and says that no requirement is charged.
func TestATransportErrorInAScenarioExitsTwo(t *testing.T) {
	ts := hostiletest.DroppingKickoffs(t)
	vars := map[string]string{"TARGET": ts.URL + "/fhir", "TOKEN": refserver.DemoTokenA, "TAGS": "@EXP-KICKOFF", "REPORTS_DIR": t.TempDir()}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, func(k string) string { return vars[k] }, &out, &errOut, nil); code != exitUsage {
		t.Fatalf("exit %d, want %d (could not run to the end):\n%s%s", code, exitUsage, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "no requirement is charged") {
		t.Errorf("stderr does not say that no requirement is charged:\n%s", errOut.String())
	}
}
