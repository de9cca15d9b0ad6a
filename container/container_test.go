package container_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/internal/dockertest"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/refserver/image"
)

// A vendor image that is not in the engine fails at once with ErrImageNotFound: nothing is pulled.
func TestMissingImageFailsFastWithoutPull(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	start := time.Now()
	ctr, err := container.Run(context.Background(), "fut-conformance-absent-vendor:never")
	testcontainers.CleanupContainer(t, ctr)
	if !errors.Is(err, container.ErrImageNotFound) {
		t.Fatalf("Run: expected ErrImageNotFound, got %v", err)
	}
	if !strings.Contains(err.Error(), "fut-conformance-absent-vendor:never") {
		t.Errorf("the error must name the image: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a missing image took %s to report: it must fail fast, not pull", d)
	}
	dockertest.AssertNothingLeft(t, before, "a run with a missing image")
}

func TestOptionsAreValidated(t *testing.T) {
	for name, opt := range map[string]container.Option{
		`port "http"`: container.WithPort("http"), `port "8080/udp"`: container.WithPort("8080/udp"),
		`port "0"`: container.WithPort("0"), `port "70000"`: container.WithPort("70000"),
		`base path "fhir"`: container.WithBasePath("fhir"), `wait path "healthz"`: container.WithWaitPath("healthz"),
		"startup timeout 0s": container.WithStartupTimeout(0),
	} {
		// Options are checked before the engine is contacted: no Docker needed. The error must be the
		// option's, not the absent image's that any error would otherwise satisfy.
		if _, err := container.Run(context.Background(), "fut-conformance-absent:never", opt); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: expected an error naming it, got %v", name, err)
		}
	}
}

// Run for real, on the one image at hand without a registry, the reference server's: built from
// refserver/Dockerfile (image.Build), configured by environment (WithEnv), reached through the port mapped on
// loopback (BaseURL), and gone, container and image (image.Remove), afterwards.
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
