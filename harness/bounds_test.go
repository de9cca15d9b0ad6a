package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests of the run's bounds against hostile servers (issue 11): secrets never written, tokens only to the
// trusted origins, memory, report size and time bounded whatever the server sends.

// boundedRun runs cfg against handler and returns everything the run wrote: the console and progress output,
// the error, and each report file's content.
func boundedRun(t *testing.T, handler http.Handler, cfg Config) (Result, map[string]string) {
	t.Helper()
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	if cfg.Target == "" {
		cfg.Target = ts.URL + "/fhir"
	}
	var out, log bytes.Buffer
	cfg.Out, cfg.Log, cfg.ReportsDir = &out, &log, t.TempDir()
	res, err := Run(context.Background(), cfg)
	written := map[string]string{"stdout": out.String(), "stderr": log.String()}
	if err != nil {
		written["error"] = err.Error()
	}
	for _, f := range []string{"junit.xml", "cucumber.json", "index.html"} {
		raw, readErr := os.ReadFile(filepath.Join(cfg.ReportsDir, f))
		if readErr != nil {
			t.Fatalf("report %s not written: %v (run error %v)\n%s", f, readErr, err, tailOf(out.String()))
		}
		written[f] = string(raw)
	}
	return res, written
}

// A server that echoes the Authorization header in every answer's headers and body: the token must appear
// in no output, in none of its escaped forms, while the echo itself stays visible (redacted).
func TestHostileEchoedTokenIsRedactedEverywhere(t *testing.T) {
	const tokenA, tokenB = "tok+en/<a>&secret==", "second-user-token-b"
	echo := every(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.Header().Set("X-Echo", auth)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":%q}],"raw":"%s"}`, "you sent "+auth, auth)
	})
	res, written := boundedRun(t, echo, Config{Token: tokenA, TokenB: tokenB, MaxWait: 2 * time.Second, RequestTimeout: 2 * time.Second})
	if res.Passed {
		t.Fatal("the echoing server passed")
	}
	for name, text := range written {
		for _, secret := range []string{tokenA, tokenB, "tok+en", "tok\\u002ben", "tok&#43;en", "second-user-token"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the secret %q", name, secret)
			}
		}
	}
	if !strings.Contains(written["stdout"], "Bearer [redacted]") || !strings.Contains(written["cucumber.json"], "[redacted]") {
		t.Errorf("the echo is not shown redacted:\n%s", tailOf(written["stdout"]))
	}
}
