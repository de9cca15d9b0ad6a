package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/internal/dockertest"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/refserver/image"
)

func TestContainerVariables(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfg, err := ConfigFromEnv(env(map[string]string{
		"IMAGE": "vendor/fhir:1.2", "IMAGE_PORT": "9090", "IMAGE_BASE": "/baseR4",
		"IMAGE_ENV": "REFSERVER_TOKENS=t1=u1,t2=u2  EXPORT_DURATION=5s", "IMAGE_STARTUP_TIMEOUT": "2m",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := ContainerConfig{Image: "vendor/fhir:1.2", ImagePort: "9090", ImageBase: "/baseR4",
		ImageEnv:            map[string]string{"REFSERVER_TOKENS": "t1=u1,t2=u2", "EXPORT_DURATION": "5s"},
		ImageStartupTimeout: 2 * time.Minute}
	if got := cfg.ContainerConfig; got.Image != want.Image || got.ImagePort != want.ImagePort || got.ImageBase != want.ImageBase ||
		len(got.ImageEnv) != 2 || got.ImageEnv["REFSERVER_TOKENS"] != "t1=u1,t2=u2" || got.ImageStartupTimeout != want.ImageStartupTimeout {
		t.Errorf("ContainerConfig = %+v, want %+v", got, want)
	}
	for name, vars := range map[string]map[string]string{
		"TARGET and IMAGE":          {"TARGET": "http://x/fhir", "IMAGE": "a:b"},
		"IMAGE and BUILD":           {"IMAGE": "a:b", "BUILD_REFSERVER_IMAGE": "1"},
		"IMAGE_PORT alone":          {"IMAGE_PORT": "8080"},
		"KEEP_IMAGE with IMAGE":     {"IMAGE": "a:b", "KEEP_IMAGE": "1"},
		"IMAGE_BASE with build":     {"BUILD_REFSERVER_IMAGE": "1", "IMAGE_BASE": "/x"},
		"IMAGE_ENV without =":       {"IMAGE": "a:b", "IMAGE_ENV": "FOO"},
		"bad startup timeout":       {"IMAGE": "a:b", "IMAGE_STARTUP_TIMEOUT": "soon"},
		"bad BUILD_REFSERVER_IMAGE": {"BUILD_REFSERVER_IMAGE": "maybe"},
	} {
		if cfg, err := ConfigFromEnv(env(vars)); err == nil && cfg.Validate() == nil {
			t.Errorf("%s: accepted, want a configuration error", name)
		}
	}
}

// make conformance-container: the reference server's image is built, started, run through every feature and
// removed, container and image, and the startup time is in the output.
func TestRefserverContainerPassesEveryScenarioAndLeavesNothing(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{
		ContainerConfig: ContainerConfig{BuildRefserverImage: true},
		ReportsDir:      t.TempDir(), Out: &out, Log: &out, Randomize: -1,
	})
	if err != nil || !res.Passed {
		t.Fatalf("run: passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
	if res.Scenarios != scenarioCount(t) || len(res.Findings.Skips()) != 0 {
		t.Errorf("ran %d scenarios with %d skipped, want all of them and no skip (demo tokens of both users)", res.Scenarios, len(res.Findings.Skips()))
	}
	if !strings.Contains(out.String(), "started in ") || !strings.Contains(res.Target, "http://127.0.0.1:") {
		t.Errorf("the output must report the container's startup time and its loopback URL; target %q:\n%s", res.Target, out.String())
	}
	dockertest.AssertNothingLeft(t, before, "a passing container run")
}

// IMAGE=: a vendor's image already in the engine (here the reference server's, kept) is run with the tokens
// given; an image that is absent, or one that never answers, fails the run without leaving a container.
func TestVendorImageRunsAndFailedStartsLeaveNothing(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	ctx := context.Background()
	img, err := image.Build(ctx, image.WithName(image.Repo+":vendor-test"))
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_ = img.Remove(context.Background())
		}
	})
	run := func(cfg Config) (Result, string, error) {
		var out bytes.Buffer
		cfg.Out, cfg.Log, cfg.ReportsDir = &out, &out, t.TempDir()
		res, err := Run(ctx, cfg)
		return res, out.String(), err
	}

	res, out, err := run(Config{ContainerConfig: ContainerConfig{Image: img.Name, ImagePort: "8080", ImageBase: "/fhir",
		ImageEnv: map[string]string{"REPORT_DURATION": "1s"}}, Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@cross-user"})
	if err != nil || !res.Passed || res.Scenarios == 0 || len(res.Findings.Skips()) != 0 {
		t.Errorf("vendor image run: passed=%v scenarios=%d skips=%d err=%v\n%s", res.Passed, res.Scenarios, len(res.Findings.Skips()), err, out)
	}

	began := time.Now()
	_, out, err = run(Config{ContainerConfig: ContainerConfig{Image: "fut-conformance-absent-vendor:never"}})
	if !errors.Is(err, container.ErrImageNotFound) || time.Since(began) > 10*time.Second {
		t.Errorf("absent image: expected ErrImageNotFound at once, got %v after %s\n%s", err, time.Since(began), out)
	}

	_, out, err = run(Config{ContainerConfig: ContainerConfig{Image: img.Name, ImageBase: "/not-fhir", ImageStartupTimeout: 2 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "/not-fhir/metadata") || !strings.Contains(err.Error(), "refserver listening on") {
		t.Errorf("a server that never answers on IMAGE_BASE: expected an error naming the wait and showing the container's output, got %v\n%s", err, out)
	}

	if err := img.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	removed = true
	dockertest.AssertNothingLeft(t, before, "vendor image runs (passing, absent image, never ready)")
}

// Ctrl-C: the conformance command, interrupted once its container is up, removes the container and the
// image it built before it exits.
func TestInterruptedContainerRunLeavesNothing(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "conformance")
	if msg, err := exec.Command("go", "build", "-o", bin, "../cmd/conformance").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/conformance: %v\n%s", err, msg)
	}
	cmd := exec.Command(bin)
	cmd.Dir = ".." // the module root: the image is built from its source
	cmd.Env = append(os.Environ(), "BUILD_REFSERVER_IMAGE=1", "REPORTS_DIR="+dir,
		"TESTCONTAINERS_RYUK_DISABLED=true", "TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	started := make(chan string, 1)
	var seen bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			seen.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "container ") && strings.Contains(sc.Text(), " started in ") {
				started <- sc.Text()
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case line := <-started:
		t.Log(line)
	case err := <-exited:
		t.Fatalf("conformance exited before its container started: %v\n%s", err, stderr.String())
	case <-time.After(2 * time.Minute):
		stopProcess(cmd, exited)
		t.Fatalf("no container started within 2 minutes\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("interrupted run: expected exit status 2, got %v", err)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill() // its container is then left behind: this test's failure says so
		<-exited
		t.Fatalf("conformance still running a minute after SIGINT\n%s", stderr.String())
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", seen.String(), stderr.String())
	}
	dockertest.AssertNothingLeft(t, before, "an interrupted run (SIGINT)")
}

// stopProcess interrupts cmd as Ctrl-C would, so that it removes what it started, and kills it only if it
// has not exited a minute later.
func stopProcess(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
	}
}
