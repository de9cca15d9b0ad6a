package container_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/internal/dockertest"
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
	for _, opt := range []container.Option{
		container.WithPort("http"), container.WithPort("8080/udp"), container.WithBasePath("fhir"),
		container.WithWaitPath("healthz"), container.WithStartupTimeout(0),
	} {
		// Options are checked before the engine is contacted: no Docker needed.
		if _, err := container.Run(context.Background(), "any:image", opt); err == nil {
			t.Errorf("option accepted, want an error")
		}
	}
}
