package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/internal/dockertest"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/refserver/image"
)

// `make image`, then the harness image run as the README says (docker run --rm --network host -e TARGET
// -e TOKEN -e TOKEN_B -v reports:/reports) against the reference server's image: the suite passes, the reports
// land in the mounted directory, the image holds the CA certificates, and no container or image is left.
func TestHarnessImageRunsTheSuiteAgainstTheRefserverImage(t *testing.T) {
	dockertest.Require(t)
	for _, tool := range []string{"make", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("make image needs %s on the PATH: %v", tool, err)
		}
	}
	before := dockertest.Snapshot(t)
	ctx := context.Background()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	name := "fut-conformance:test-" + container.NewRunID()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "--force", name).Run() })
	build := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, "image", "HARNESS_IMAGE="+name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}

	img, err := image.Build(ctx, image.WithSourceDir(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = img.Remove(context.Background()) })
	srv, err := container.Run(ctx, img.Name, container.WithEnv(map[string]string{"REPORT_DURATION": "1s"}))
	if srv != nil {
		t.Cleanup(func() { _ = testcontainers.TerminateContainer(srv) })
	}
	if err != nil {
		t.Fatal(err)
	}
	base, err := srv.BaseURL(ctx)
	if err != nil {
		t.Fatal(err)
	}

	reports := t.TempDir()
	run := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "host",
		"-e", "TARGET="+base, "-e", "TOKEN", "-e", "TOKEN_B", "-v", reports+":/reports", name)
	run.Env = append(os.Environ(), "TOKEN="+refserver.DemoTokenA, "TOKEN_B="+refserver.DemoTokenB)
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s against %s: %v\n%s", name, base, err, out)
	}
	scenarios, err := features.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), fmt.Sprintf("PASS: %d scenarios against %s", len(scenarios), base)) {
		t.Errorf("want the PASS summary naming the target:\n%s", tail(string(out)))
	}
	if strings.Contains(string(out), refserver.DemoTokenA) || strings.Contains(string(out), refserver.DemoTokenB) {
		t.Error("the container's output shows a token")
	}
	for _, f := range []string{"junit.xml", "cucumber.json", "index.html"} {
		if st, err := os.Stat(filepath.Join(reports, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s in the mounted directory: %v", f, err)
		}
	}

	// The image's CA bundle is the build machine's, where Go's crypto/x509 looks for it on Linux.
	host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("the host's CA bundle, which make image copies: %v", err)
	}
	if got := fileFromImage(t, name, "/etc/ssl/certs/ca-certificates.crt"); !bytes.Equal(got, host) || !bytes.Contains(got, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("the image's /etc/ssl/certs/ca-certificates.crt (%d bytes) is not the host's CA bundle (%d bytes)", len(got), len(host))
	}

	if err := testcontainers.TerminateContainer(srv); err != nil {
		t.Fatal(err)
	}
	if err := img.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "rmi", name).CombinedOutput(); err != nil {
		t.Fatalf("docker rmi %s: %v\n%s", name, err, out)
	}
	dockertest.AssertNothingLeft(t, before, "make image and a run of the harness image")
}

// fileFromImage copies one file out of an image (docker create, docker cp, docker rm): a FROM-scratch image
// has no shell to cat it with.
func fileFromImage(t *testing.T, image, path string) []byte {
	t.Helper()
	id, err := exec.Command("docker", "create", image).Output()
	if err != nil {
		t.Fatalf("docker create %s: %v", image, err)
	}
	ctr := strings.TrimSpace(string(id))
	defer func() { _ = exec.Command("docker", "rm", "--force", ctr).Run() }()
	archive, err := exec.Command("docker", "cp", ctr+":"+path, "-").Output()
	if err != nil {
		t.Fatalf("docker cp %s: %v", path, err)
	}
	tr := tar.NewReader(bytes.NewReader(archive))
	if _, err := tr.Next(); err != nil {
		t.Fatalf("docker cp %s: %v", path, err)
	}
	body, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
