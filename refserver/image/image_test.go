package image_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/internal/dockertest"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/refserver/image"
)

// The reference server image: built from refserver/Dockerfile, configured by environment, reached through
// the port mapped on loopback, and gone (container and image) afterwards.
func TestRefserverImageRunsConfiguredAndLeavesNothing(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	ctx := context.Background()

	img, err := image.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = img.Remove(context.Background()) }) // on failure too; a second Remove is a no-op
	ctr, err := container.Run(ctx, img.Name, container.WithEnv(map[string]string{"RETRY_AFTER": "3s", "EXPORT_DURATION": "1m"}))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	base, err := ctr.BaseURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/fhir") {
		t.Errorf("BaseURL = %s, want http://127.0.0.1:<mapped port>/fhir (TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1)", base)
	}
	res := get(t, base+"/metadata", "")
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /metadata: expected 200, got %d", res.StatusCode)
	}
	res = get(t, base+"/$export?_type=Patient", refserver.DemoTokenA)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("GET $export: expected 202, got %d", res.StatusCode)
	}
	poll := get(t, res.Header.Get("Content-Location"), refserver.DemoTokenA)
	if got := poll.Header.Get("Retry-After"); poll.StatusCode != http.StatusAccepted || got != "3" {
		t.Errorf("poll with RETRY_AFTER=3s: expected 202 and Retry-After 3, got %d and %q", poll.StatusCode, got)
	}

	if err := testcontainers.TerminateContainer(ctr); err != nil {
		t.Fatal(err)
	}
	if err := img.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	dockertest.AssertNothingLeft(t, before, "the refserver image test")
}

func get(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Prefer", "respond-async")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}
