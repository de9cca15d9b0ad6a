// Package dockertest gates the tests that need a Docker engine, and checks that they leave nothing behind.
//
// Require skips a test when the engine is missing or unreachable, with the reason, unless REQUIRE_DOCKER=1
// (set by .ci/run), where it fails it instead. It also serialises Docker tests across the packages that
// `go test ./...` runs in parallel (an exclusive lock file), so that Snapshot, the equivalent of
// `docker ps -a` and `docker images -a`, compares before and after without another package's containers in
// between.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// RequireVariable is the environment variable that turns a missing Docker engine into a test failure.
const RequireVariable = "REQUIRE_DOCKER"

// Require returns when the Docker engine answers; otherwise the test is skipped with the reason, or failed
// when REQUIRE_DOCKER=1. It holds the cross-package Docker lock until the test ends.
func Require(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("container test: skipped with -short")
	}
	// As `make test` runs them: no reaper (an image to pull), containers reached on loopback. Set before
	// testcontainers reads its configuration, once per process.
	for k, v := range map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1"} {
		if os.Getenv(k) == "" {
			t.Setenv(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if fail, skip := verdict(ping(ctx), os.Getenv(RequireVariable)); fail != "" {
		t.Fatal(fail)
	} else if skip != "" {
		t.Skip(skip)
	}
	lock(t)
}

// verdict turns the engine's health into a failure (REQUIRE_DOCKER=1) or a skip, each saying why.
func verdict(pingErr error, require string) (fail, skip string) {
	switch {
	case pingErr == nil:
		return "", ""
	case require == "1":
		return fmt.Sprintf("container test: the Docker engine is required (%s=1, as in CI) but not reachable: %v", RequireVariable, pingErr), ""
	}
	return "", fmt.Sprintf("container test skipped: no reachable Docker engine (%v); set %s=1 to make this a failure, as CI does", pingErr, RequireVariable)
}

func ping(ctx context.Context) (err error) {
	defer func() { // testcontainers panics on some malformed Docker configurations
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

// State is what `docker ps -a` and `docker images -a` list: one line per container and per image.
type State struct {
	Containers []string // id image name status
	Images     []string // id tags
}

// Snapshot lists every container (running or not) and every image of the engine.
func Snapshot(t *testing.T) State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker snapshot: %v", err)
	}
	defer cli.Close()
	var s State
	ctrs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatalf("docker ps -a: %v", err)
	}
	for _, c := range ctrs.Items {
		s.Containers = append(s.Containers, fmt.Sprintf("%.12s %s %s %s", c.ID, c.Image, strings.Join(c.Names, ","), c.State))
	}
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{All: true})
	if err != nil {
		t.Fatalf("docker images -a: %v", err)
	}
	for _, i := range imgs.Items {
		s.Images = append(s.Images, fmt.Sprintf("%.19s %s", i.ID, strings.Join(i.RepoTags, ",")))
	}
	slices.Sort(s.Containers)
	slices.Sort(s.Images)
	return s
}

// ContainerIDs is the set of container ids of the snapshot.
func (s State) ContainerIDs() []string {
	ids := make([]string, 0, len(s.Containers))
	for _, c := range s.Containers {
		ids = append(ids, strings.Fields(c)[0])
	}
	return ids
}

// AssertNothingLeft fails the test if the engine holds a container or an image that before did not.
// Containers are compared by id (a container that merely changed state is not new).
func AssertNothingLeft(t *testing.T, before State, what string) {
	t.Helper()
	after := Snapshot(t)
	var extra []string
	ids := before.ContainerIDs()
	for _, c := range after.Containers {
		if !slices.Contains(ids, strings.Fields(c)[0]) {
			extra = append(extra, "container "+c)
		}
	}
	for _, i := range after.Images {
		if !slices.Contains(before.Images, i) {
			extra = append(extra, "image "+i)
		}
	}
	if len(extra) > 0 {
		t.Errorf("%s left behind (docker ps -a / docker images -a, compared with before the run):\n  %s", what, strings.Join(extra, "\n  "))
	}
}

// lock takes an exclusive lock shared by every test process of this module, released when t ends.
func lock(t *testing.T) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "fut-conformance-docker-tests.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("docker test lock: %v", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		t.Fatalf("docker test lock %s: %v", path, err)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing the file releases the lock
}

// VendorImage builds testdata/vendor, a stand-in for a vendor's FHIR server whose misbehaviour its
// environment chooses (MODE, STATUS, PORT, BASE_PATH, SECRET_VALUE; see its doc comment), as a FROM scratch
// image listening on 8080 that the test's cleanup removes. Nothing is pulled.
func VendorImage(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "testdata", "vendor")
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("vendor image: %v", err)
	}
	defer cli.Close()
	version, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatalf("vendor image: Docker engine version: %v", err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "vendor"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+version.Arch)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("vendor image: go build %s: %v\n%s", src, err, out)
	}
	dockerfile := "FROM scratch\nCOPY vendor /vendor\nEXPOSE 8080\nENTRYPOINT [\"/vendor\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatalf("vendor image: %v", err)
	}
	defer provider.Close()
	tag := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	req := testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Dockerfile: "Dockerfile", Repo: "fut-conformance-vendor", Tag: tag,
	}}
	name, err := provider.BuildImage(ctx, &req)
	if err != nil {
		t.Fatalf("vendor image: %v", err)
	}
	t.Cleanup(func() {
		cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
		if err == nil {
			defer cli.Close()
			_, err = cli.ImageRemove(context.Background(), name, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
		if err != nil {
			t.Errorf("remove vendor image %s: %v", name, err)
		}
	})
	return name
}
