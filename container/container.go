// Package container runs a FHIR server under test as a container with testcontainers-go, in the shape of a
// testcontainers module: Run(ctx, img, opts...) starts an image that is already in the local Docker engine
// (a vendor's image, or the reference server's built by refserver/image.Build) and waits until its metadata
// endpoint answers; BaseURL gives the FHIR base through the port mapped on the host.
//
// Nothing is ever pulled: the machines have a Docker engine but no registry, so Run checks that the image is
// present first and fails at once, with ErrImageNotFound, when it is not. The testcontainers reaper (an image
// to pull) is expected to be off (TESTCONTAINERS_RYUK_DISABLED=true, set by the Makefile): callers terminate
// the container themselves, on every path.
//
// The package knows nothing of the reference server: it runs any FHIR image. It is separate from package
// refserver so that the reference server, embedded in the harness, keeps a standard-library import graph.
package container

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Defaults of Run, those of the reference server's image (refserver/Dockerfile).
const (
	DefaultPort           = "8080/tcp"
	DefaultBasePath       = "/fhir"
	DefaultStartupTimeout = 60 * time.Second
)

// Errors of Run that name a configuration to change rather than a failed start.
var (
	// ErrImageNotFound: the image is not in the local Docker engine (and is not pulled).
	ErrImageNotFound = errors.New("image not in the local Docker engine")
	// ErrReaperEnabled: the testcontainers reaper would pull its image; the Makefile disables it.
	ErrReaperEnabled = errors.New("the testcontainers reaper is enabled, and its image would be pulled: set TESTCONTAINERS_RYUK_DISABLED=true (make does); containers are removed by the caller")
)

// Container is a running server under test.
type Container struct {
	*testcontainers.DockerContainer
	port     string
	basePath string
}

type options struct {
	port           string
	basePath       string
	waitPath       string
	startupTimeout time.Duration
}

// Option configures Run. It is a testcontainers.ContainerCustomizer, so it mixes with the generic
// customizers (testcontainers.WithEnv, WithCmdArgs, ...) in one list.
type Option func(*options) error

// Customize is a no-op: Run reads Options itself.
func (Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithPort sets the container port the server listens on, "8080" or "8080/tcp" (default DefaultPort).
func WithPort(port string) Option {
	return func(o *options) error {
		p := strings.TrimSpace(port)
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		num, proto, _ := strings.Cut(p, "/")
		// A number, not a service name such as "http", which net.LookupPort would accept and Docker not.
		if n, err := strconv.Atoi(num); err != nil || n < 1 || n > 65535 || proto != "tcp" {
			return fmt.Errorf("port %q: expected a TCP port number such as 8080", port)
		}
		o.port = p
		return nil
	}
}

// WithBasePath sets the FHIR base path inside the server (default DefaultBasePath; "/" for the root).
func WithBasePath(path string) Option {
	return func(o *options) error {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("base path %q: must start with /", path)
		}
		o.basePath = strings.TrimRight(path, "/")
		return nil
	}
}

// WithWaitPath sets the path, from the server's root, that must answer 200 before the container is ready
// (default: the base path + "/metadata", the CapabilityStatement every FHIR server serves).
func WithWaitPath(path string) Option {
	return func(o *options) error {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("wait path %q: must start with /", path)
		}
		o.waitPath = path
		return nil
	}
}

// WithStartupTimeout bounds the wait for readiness (default DefaultStartupTimeout).
func WithStartupTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("startup timeout %s: must be positive", d)
		}
		o.startupTimeout = d
		return nil
	}
}

// WithEnv sets environment variables of the container, e.g. the reference server's EXPORT_DURATION.
func WithEnv(env map[string]string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithEnv(env)
}

// Run starts img, which must already be in the local Docker engine, and waits until
// GET <base path>/metadata answers 200. On error the returned Container may be non-nil and must still be
// terminated (testcontainers.TerminateContainer accepts nil), as with every testcontainers module.
func Run(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	o := options{port: DefaultPort, basePath: DefaultBasePath, startupTimeout: DefaultStartupTimeout}
	var rest []testcontainers.ContainerCustomizer
	for _, opt := range opts {
		if opt, ok := opt.(Option); ok {
			if err := opt(&o); err != nil {
				return nil, fmt.Errorf("run container %s: %w", img, err)
			}
			continue
		}
		rest = append(rest, opt)
	}
	if !testcontainers.ReadConfig().Config.RyukDisabled {
		return nil, fmt.Errorf("run container %s: %w", img, ErrReaperEnabled)
	}
	imagePorts, err := inspectImage(ctx, img)
	if err != nil {
		return nil, err
	}
	waitPath := o.waitPath
	if waitPath == "" {
		waitPath = o.basePath + "/metadata"
	}
	runID := NewRunID()
	customizers := append([]testcontainers.ContainerCustomizer{
		testcontainers.WithLabels(map[string]string{runLabel: runID}),
		testcontainers.WithExposedPorts(o.port),
		testcontainers.WithWaitStrategy(wait.ForHTTP(waitPath).WithPort(o.port).WithStartupTimeout(o.startupTimeout)),
	}, rest...)
	ctr, err := testcontainers.Run(ctx, img, customizers...)
	var c *Container
	if ctr != nil {
		c = &Container{DockerContainer: ctr, port: o.port, basePath: o.basePath}
	}
	if err != nil && c == nil {
		// Cancelled (Ctrl-C) while the engine created the container: the engine may have made one that
		// testcontainers never heard of. Find it by its label.
		if sweepErr := removeLabelled(runID); sweepErr != nil {
			err = errors.Join(err, sweepErr)
		}
	}
	if err != nil && c != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// The container runs but never answered 200 in time: say what it answers, which wait.ForHTTP does
		// not (it retries every answer, and every failed connection, in silence).
		nr := &NotReadyError{Image: img, Timeout: o.startupTimeout, Port: o.port, Path: waitPath, Err: err, ImagePorts: imagePorts}
		nr.Answer, nr.Answered, nr.BasePath = c.diagnose(waitPath, o.waitPath == "")
		return c, fmt.Errorf("run container %s: %w%s", img, nr, c.logTail())
	}
	if err != nil {
		return c, fmt.Errorf("run container %s (waiting for GET %s on %s): %w%s", img, waitPath, o.port, err, c.logTail())
	}
	return c, nil
}

// NotReadyError is a container that ran for the whole startup timeout without its readiness request
// answering 200. It says what the server answered instead, when it answered at all, and what may be wrong.
type NotReadyError struct {
	Image      string
	Timeout    time.Duration
	Port       string // the container port waited on, "8080/tcp"
	Path       string // the readiness request's path
	Answered   bool   // an HTTP answer came on Port
	Answer     string // "500 Internal Server Error, text/html", or why no answer came
	BasePath   string // another base path whose /metadata answers 200 ("/" for the root), if one does
	ImagePorts []string
	Err        error // the wait's own error
}

func (e *NotReadyError) Error() string {
	msg := fmt.Sprintf("not ready within %s: GET %s on port %s ", e.Timeout, e.Path, e.Port)
	if e.Answered {
		msg += "last answered " + e.Answer
	} else {
		msg += "got no HTTP answer (" + e.Answer + ")"
	}
	if e.BasePath != "" {
		msg += fmt.Sprintf("; GET %s answers 200: the FHIR base path may be %s", strings.TrimRight(e.BasePath, "/")+"/metadata", e.BasePath)
	}
	if len(e.ImagePorts) > 0 && !slices.Contains(e.ImagePorts, e.Port) {
		msg += fmt.Sprintf("; the image exposes %s, not %s", strings.Join(e.ImagePorts, ", "), e.Port)
	}
	return msg
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// diagnose sends the readiness request once more, and describes its answer; when the answer is not 200 and
// the path is the base path's metadata, it also tries the usual FHIR base paths. It runs after the startup
// timeout, with a context and a short timeout of its own.
func (c *Container) diagnose(waitPath string, tryBases bool) (answer string, answered bool, basePath string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	endpoint, err := c.PortEndpoint(ctx, c.port, "http")
	if err != nil {
		return "the port is not mapped: " + err.Error(), false, ""
	}
	hc := &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp, nil
	}
	resp, err := get(waitPath)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error() + ": nothing listens on that port in the container, or the server has not started", false, ""
	}
	answer = resp.Status
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		answer += ", " + ct
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		answer += ", Location: " + loc
	}
	if !tryBases || resp.StatusCode == http.StatusOK {
		return answer, true, ""
	}
	for _, base := range []string{"/fhir", "", "/baseR4", "/fhir/R4"} {
		if base+"/metadata" == waitPath {
			continue
		}
		if r, err := get(base + "/metadata"); err == nil && r.StatusCode == http.StatusOK {
			return answer, true, cmp.Or(base, "/")
		}
	}
	return answer, true, ""
}

// BaseURL is the FHIR base URL of the server, through its port mapped on the host
// (TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 makes it loopback), e.g. http://127.0.0.1:49153/fhir.
func (c *Container) BaseURL(ctx context.Context) (string, error) {
	endpoint, err := c.PortEndpoint(ctx, c.port, "http")
	if err != nil {
		return "", fmt.Errorf("mapped port %s: %w", c.port, err)
	}
	return endpoint + c.basePath, nil
}

// Exited says how the container ended when it no longer runs, its exit code and the end of its output; ""
// while it runs, or when the engine cannot say. A server that dies during a run (killed for memory, a panic)
// leaves the harness with refused connections alone: this names the cause. It has a context of its own.
func (c *Container) Exited() string {
	if c == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.State(ctx)
	if err != nil || st == nil || st.Running {
		return ""
	}
	msg := fmt.Sprintf("container %.12s is no longer running (%s, exit code %d", c.GetContainerID(), st.Status, st.ExitCode)
	if st.OOMKilled {
		msg += ", killed for lack of memory"
	}
	if st.Error != "" {
		msg += ", " + st.Error
	}
	return msg + ")" + c.logTail()
}

// logTail is the end of the container's output, to explain a failed start ("" when there is none).
func (c *Container) logTail() string {
	if c == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	out, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return ""
	}
	if len(out) > 2000 {
		out = append([]byte("..."), out[len(out)-2000:]...)
	}
	return "\ncontainer output:\n" + string(out)
}

// runLabel marks the containers of one Run call, to find one whose creation was interrupted.
const runLabel = "dk.ehealth.fut-conformance.run"

// removeLabelled force-removes the containers of one Run call, with a context of its own.
func removeLabelled(runID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("remove interrupted container: %w", err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", runLabel+"="+runID)})
	if err != nil {
		return fmt.Errorf("remove interrupted container: %w", err)
	}
	var errs []error
	for _, c := range list.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove interrupted container %.12s: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveImage deletes img from the local Docker engine, its untagged parents too; an image already gone is
// not an error. Call it with a context that is not the run's, which may be cancelled (Ctrl-C).
func RemoveImage(ctx context.Context, img string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("remove image %s: %w", img, err)
	}
	defer cli.Close()
	if _, err := cli.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", img, err)
	}
	return nil
}

// CheckImage returns nil if img is in the local Docker engine, an error wrapping ErrImageNotFound if it is
// not (nothing is pulled), or the error reaching the engine.
func CheckImage(ctx context.Context, img string) error {
	_, err := inspectImage(ctx, img)
	return err
}

// inspectImage is CheckImage, and it returns the TCP ports the image exposes ("8080/tcp"), sorted.
func inspectImage(ctx context.Context, img string) ([]string, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the Docker engine: %w", err)
	}
	defer cli.Close()
	inspect, err := cli.ImageInspect(ctx, img)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %q; nothing is pulled here, so build, load (docker load -i image.tar) or tag it first; `docker images` lists what is there", ErrImageNotFound, img)
		}
		return nil, fmt.Errorf("inspect image %s: %w", img, err)
	}
	var ports []string
	if inspect.Config != nil {
		for p := range inspect.Config.ExposedPorts {
			if strings.HasSuffix(p, "/tcp") {
				ports = append(ports, p)
			}
		}
	}
	slices.Sort(ports)
	return ports, nil
}

// NewRunID is a random identifier for the Docker objects of one run (a container's label, the tag of an image
// built for the run), so that concurrent runs never share, or remove, each other's.
func NewRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}
