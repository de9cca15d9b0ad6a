package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A manifest larger than MAX_BODY (2,000 files, about 200 KB, against 64 KiB) is no deviation: no source limits
// its size. The run could not check it, so it exits 2, charges no requirement, and says to raise MAX_BODY.
func TestAManifestOverMaxBodyExitsTwoChargingNoRequirement(t *testing.T) {
	srv, err := refserver.NewServer(refserver.Config{ExportDuration: 100 * time.Millisecond, FilesPerType: 2000,
		Synthetic: refserver.Synthetic{Resources: 2000, Types: []string{"Patient"}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	reports := t.TempDir()
	vars := map[string]string{"TARGET": ts.URL + "/fhir", "TOKEN": refserver.DemoTokenA, "TAGS": "@EXP-POLL-200", "MAX_BODY": "64KiB", "REPORTS_DIR": reports}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, func(k string) string { return vars[k] }, &out, &errOut, nil); code != exitUsage {
		t.Fatalf("exit %d, want %d (could not run to the end):\n%s%s", code, exitUsage, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "an answer larger than MAX_BODY") || !strings.Contains(errOut.String(), "raise MAX_BODY") {
		t.Errorf("stderr does not say that an answer was over MAX_BODY:\n%s", errOut.String())
	}
	if !strings.Contains(out.String(), "MAX_BODY=") {
		t.Errorf("the failure does not name the MAX_BODY that reads the manifest:\n%s", out.String())
	}
}
