package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A run that checked nothing (TAGS=@cross-user without TOKEN_B: every scenario skipped) exits 2, not 0, saying
// why on stderr; its reports are written, and show the skips.
func TestARunThatCheckedNothingExitsTwo(t *testing.T) {
	srv, err := refserver.NewServer(refserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	reports := t.TempDir()
	vars := map[string]string{"TARGET": ts.URL + "/fhir", "TOKEN": refserver.DemoTokenA, "TAGS": "@cross-user", "REPORTS_DIR": reports}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, func(k string) string { return vars[k] }, &out, &errOut, nil); code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitUsage, tail(out.String()), errOut.String())
	}
	if msg := errOut.String(); !strings.Contains(msg, "conformance: nothing checked: ") || !strings.Contains(msg, "TOKEN_B") {
		t.Errorf("stderr must say that nothing was checked, and why:\n%s", msg)
	}
	if raw, err := os.ReadFile(filepath.Join(reports, "junit.xml")); err != nil || !strings.Contains(string(raw), "<skipped") {
		t.Errorf("junit.xml must be written, with the skips (%v)", err)
	}
}
