package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/internal/dockertest"
)

// A vendor's server that dies during the run leaves the scenarios with no answer: the run is an error of the
// run (exit 2, no requirement charged), and the message names the container's death, its exit code and its
// last output, not TARGET and the network. Nothing is left behind.
func TestVendorContainerDyingMidRunIsAnErrorOfTheRunThatSaysSo(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	t.Cleanup(func() { dockertest.AssertNothingLeft(t, before, "a run whose container died") })
	img := dockertest.VendorImage(t)
	env := map[string]string{
		"IMAGE": img, "IMAGE_ENV": "MODE=fhir BASE_PATH=/fhir DIE_ON=/$export", "IMAGE_STARTUP_TIMEOUT": "10s",
		"TOKEN": "vendor-token-a", "TOKEN_B": "vendor-token-b", "TAGS": "@EXP-KICKOFF", "REPORTS_DIR": t.TempDir(),
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, func(k string) string { return env[k] }, &stdout, &stderr, func(string) {})
	if code != exitUsage {
		t.Errorf("exit %d, want %d (an error of the run)", code, exitUsage)
	}
	for _, want := range []string{"whose container died during the run", "exit code 137", "dying on /fhir/$export"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr must say %q", want)
		}
	}
	if strings.Contains(stderr.String(), "check TARGET") {
		t.Error("stderr tells to check TARGET, which the run has not")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}
