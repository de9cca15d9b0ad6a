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

// A vendor's image that does not come up: each case ends the run with an error (exit 2, no requirement
// charged) that names the cause and what to change, shows the container's output, and never a secret of
// IMAGE_ENV; nothing is left behind.
func TestVendorImageThatDoesNotComeUpSaysWhyWithoutSecrets(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	t.Cleanup(func() { dockertest.AssertNothingLeft(t, before, "vendor images that did not come up") }) // after the image's removal
	img := dockertest.VendorImage(t)
	const secret = "s3cr3t-vendor-db-password"
	for _, tc := range []struct {
		name string
		cc   ContainerConfig
		want []string
	}{
		{"crash", ContainerConfig{ImageEnv: map[string]string{"MODE": "crash", "SECRET_VALUE": secret}},
			[]string{"exited with code 3", "fatal: cannot log in to the database with [redacted]", "mode crash"}},
		{"500 on metadata", ContainerConfig{ImageEnv: map[string]string{"MODE": "status", "STATUS": "500"}},
			[]string{"not ready within 2s", "GET /fhir/metadata on port 8080/tcp last answered 500 Internal Server Error, text/html",
				"check IMAGE_BASE (/fhir)", "raise IMAGE_STARTUP_TIMEOUT (2s)"}},
		{"never listens", ContainerConfig{ImageEnv: map[string]string{"MODE": "silent", "SECRET_VALUE": secret}},
			[]string{"not ready within 2s", "got no HTTP answer", "check IMAGE_PORT (8080)", "secret [redacted]"}},
		{"IMAGE_BASE wrong", ContainerConfig{ImageEnv: map[string]string{"MODE": "fhir", "BASE_PATH": ""}},
			[]string{"last answered 404 Not Found", "did you mean IMAGE_BASE=/? GET /metadata answers 200"}},
		{"IMAGE_PORT not the image's", ContainerConfig{ImagePort: "9090", ImageEnv: map[string]string{"MODE": "fhir", "BASE_PATH": "/fhir"}},
			[]string{"got no HTTP answer", "the image exposes 8080/tcp, not 9090/tcp", "did you mean IMAGE_PORT=8080?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			cc := tc.cc
			cc.Image, cc.ImageStartupTimeout = img, 2*time.Second
			_, err := Run(context.Background(), Config{ContainerConfig: cc, ReportsDir: t.TempDir(), Out: &out, Log: &out})
			if err == nil {
				t.Fatalf("run: expected an error of the run, got none\n%s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error must say %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error()+out.String(), secret) {
				t.Errorf("IMAGE_ENV's SECRET_VALUE written:\n%v\n%s", err, out.String())
			}
		})
	}
}

// IMAGE_ENV holds secrets; a value with a space in it splits, and the message refusing the pieces must not
// quote them.
func TestMalformedImageEnvQuotesNoValue(t *testing.T) {
	env := map[string]string{"IMAGE": "a:b", "IMAGE_ENV": "MODE=x DB_PASSWORD=correct horse =battery"}
	_, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("IMAGE_ENV with entries that are not KEY=VALUE accepted")
	}
	for _, piece := range []string{"horse", "battery", "correct"} {
		if strings.Contains(err.Error(), piece) {
			t.Errorf("the error quotes %q, part of a value: %v", piece, err)
		}
	}
	if !strings.Contains(err.Error(), "entry 3 ") || !strings.Contains(err.Error(), "after DB_PASSWORD=") {
		t.Errorf("the error must place the entry (its number, the variable before it): %v", err)
	}
}

// A vendor's image whose IMAGE_BASE/metadata answers 200 but with no CapabilityStatement comes up, and the
// preflight refuses it: the message names IMAGE_BASE by its value, a path, and suggests a path, not a URL.
func TestVendorImagePreflightNamesIMAGE_BASEAsAPath(t *testing.T) {
	dockertest.Require(t)
	before := dockertest.Snapshot(t)
	t.Cleanup(func() { dockertest.AssertNothingLeft(t, before, "a vendor image refused by the preflight") })
	img := dockertest.VendorImage(t)
	var out bytes.Buffer
	_, err := Run(context.Background(), Config{ContainerConfig: ContainerConfig{Image: img, ImageBase: "/",
		ImageEnv: map[string]string{"MODE": "fhir", "BASE_PATH": "/fhir", "STATUS": "200"}}, ReportsDir: t.TempDir(), Out: &out, Log: &out})
	var pe *PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("run: expected a preflight error, got %v\n%s", err, out.String())
	}
	if !strings.Contains(pe.Cause, "IMAGE_BASE=/ (http://127.0.0.1:") || !strings.Contains(pe.Fix, "did you mean IMAGE_BASE=/fhir? GET http://127.0.0.1:") {
		t.Errorf("expected the cause to name IMAGE_BASE=/ with its URL and the fix IMAGE_BASE=/fhir, got:\n%v", err)
	}
}
