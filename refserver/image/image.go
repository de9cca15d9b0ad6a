// Package image builds the reference server's container image from refserver/Dockerfile: a FROM scratch
// image holding ./cmd/refserver compiled statically from this checkout. Package container runs it (or any
// vendor's image). It is apart from package refserver so that the reference server keeps a standard-library
// import graph.
package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/ehealth-dk/fut-conformance/container"
)

// Reference server image names: Build tags Repo:run-<random> unless told otherwise, so that
// concurrent runs never share (or remove) each other's image.
const (
	Repo       = "fut-conformance-refserver"
	modulePath = "github.com/ehealth-dk/fut-conformance"
)

// Image is a reference server image built by Build. It stays in the engine until Remove.
type Image struct {
	Name string // repo:tag
}

type buildOptions struct {
	sourceDir string
	name      string
	keep      bool
	log       io.Writer
}

// BuildOption configures Build.
type BuildOption func(*buildOptions)

// WithSourceDir names the module's root directory (default: found with `go env GOMOD` from the working
// directory).
func WithSourceDir(dir string) BuildOption { return func(o *buildOptions) { o.sourceDir = dir } }

// WithName tags the image repo:tag instead of Repo:run-<random>.
func WithName(ref string) BuildOption { return func(o *buildOptions) { o.name = ref } }

// WithKeepImage builds an image meant to stay: it carries no testcontainers session labels.
func WithKeepImage() BuildOption { return func(o *buildOptions) { o.keep = true } }

// WithBuildLog receives the Docker build output (default: discarded).
func WithBuildLog(w io.Writer) BuildOption { return func(o *buildOptions) { o.log = w } }

// Build builds the reference server image from refserver/Dockerfile: it compiles ./cmd/refserver
// statically (CGO_ENABLED=0, for the engine's architecture) into a temporary build context next to the
// Dockerfile and builds it through testcontainers-go (FromDockerfile). Nothing is pulled: the Dockerfile is
// FROM scratch. The caller removes the image with Remove unless it means to keep it.
func Build(ctx context.Context, opts ...BuildOption) (*Image, error) {
	o := buildOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.name == "" {
		o.name = Repo + ":run-" + container.NewRunID()
	}
	repo, tag, ok := cutTag(o.name)
	if !ok {
		return nil, fmt.Errorf("build refserver image: name %q: expected repo:tag", o.name)
	}
	if o.sourceDir == "" {
		dir, err := moduleRoot(ctx)
		if err != nil {
			return nil, fmt.Errorf("build refserver image: %w", err)
		}
		o.sourceDir = dir
	}

	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("build refserver image: connect to the Docker engine: %w", err)
	}
	defer cli.Close()
	version, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return nil, fmt.Errorf("build refserver image: Docker engine version: %w", err)
	}
	if version.Os != "" && version.Os != "linux" {
		return nil, fmt.Errorf("build refserver image: the Docker engine runs %s containers, want linux", version.Os)
	}

	buildCtx, err := os.MkdirTemp("", "fut-refserver-image-")
	if err != nil {
		return nil, fmt.Errorf("build refserver image: %w", err)
	}
	defer os.RemoveAll(buildCtx)
	if err := compile(ctx, o.sourceDir, filepath.Join(buildCtx, "refserver"), version.Arch); err != nil {
		return nil, fmt.Errorf("build refserver image: %w", err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(o.sourceDir, "refserver", "Dockerfile"))
	if err != nil {
		return nil, fmt.Errorf("build refserver image: %w", err)
	}
	if err := os.WriteFile(filepath.Join(buildCtx, "Dockerfile"), dockerfile, 0o644); err != nil {
		return nil, fmt.Errorf("build refserver image: %w", err)
	}

	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return nil, fmt.Errorf("build refserver image: %w", err)
	}
	defer provider.Close()
	req := testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        buildCtx,
		Dockerfile:     "Dockerfile",
		Repo:           repo,
		Tag:            tag,
		KeepImage:      o.keep,
		BuildLogWriter: o.log,
	}}
	name, err := provider.BuildImage(ctx, &req)
	if err != nil {
		// A build cancelled late (Ctrl-C) may have tagged the image all the same.
		img := &Image{Name: o.name}
		if rmErr := img.Remove(context.Background()); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return nil, fmt.Errorf("build refserver image: %w", err)
	}
	return &Image{Name: name}, nil
}

// Remove deletes the image from the engine; an image already gone is not an error. Call it with a context
// that is not the run's, which may be cancelled (Ctrl-C).
func (i *Image) Remove(ctx context.Context) error {
	if i == nil {
		return nil
	}
	return container.RemoveImage(ctx, i.Name)
}

// compile builds ./cmd/refserver of the module in src as a static linux binary for arch.
func compile(ctx context.Context, src, out, arch string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command compiles the reference server for its image: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/refserver")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if arch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+arch)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/refserver: %w\n%s", err, bytes.TrimSpace(msg))
	}
	// COPY keeps the file's mode, and the image runs as USER 65534, not the binary's owner: under a umask of
	// 077 go build leaves it 0700, and the container's start failed with "exec /refserver: permission denied".
	if err := os.Chmod(out, 0o755); err != nil {
		return fmt.Errorf("make %s executable by the image's user: %w", out, err)
	}
	return nil
}

// moduleRoot is the directory of this module's go.mod, from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module's source (go env GOMOD): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	raw, err := os.ReadFile(gomod)
	if gomod == "" || gomod == os.DevNull || err != nil || !bytes.HasPrefix(raw, []byte("module "+modulePath+"\n")) {
		return "", fmt.Errorf("the reference server image is built from source: run from a checkout of %s (working directory not inside it)", modulePath)
	}
	return filepath.Dir(gomod), nil
}

// cutTag splits repo:tag, the tag being after the last colon that follows the last slash.
func cutTag(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i <= 0 || i == len(ref)-1 || strings.Contains(ref[i:], "/") {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}
