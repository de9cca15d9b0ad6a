package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/refserver/image"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// ContainerConfig runs the target as a container (testcontainers-go): the reference server's image built
// from refserver/Dockerfile (BuildRefserverImage, `make conformance-container`), or a vendor's image that is
// already in the local Docker engine (Image). Nothing is ever pulled. The container, and the image when it
// was built for the run, are removed whatever the outcome, Ctrl-C included.
type ContainerConfig struct {
	Image               string            // IMAGE: image in the local Docker engine to start as the target
	ImagePort           string            // IMAGE_PORT: container port of the FHIR server (default 8080)
	ImageBase           string            // IMAGE_BASE: FHIR base path inside the container (default /fhir)
	ImageEnv            map[string]string // IMAGE_ENV: environment of the container, "KEY=VALUE KEY2=VALUE2"
	ImageStartupTimeout time.Duration     // IMAGE_STARTUP_TIMEOUT: wait for GET <base>/metadata to answer 200
	BuildRefserverImage bool              // BUILD_REFSERVER_IMAGE=1: build the reference server image and start it
	KeepImage           bool              // KEEP_IMAGE=1: keep the built image, as KeptRefserverImage
}

// KeptRefserverImage is the name of the reference server image that KEEP_IMAGE=1 keeps, for IMAGE= runs.
const KeptRefserverImage = image.Repo + ":latest"

// validate rejects combinations that cannot mean one target.
func (c ContainerConfig) validate(target string) error {
	switch {
	case c.Image != "" && c.BuildRefserverImage:
		return errors.New("IMAGE and BUILD_REFSERVER_IMAGE=1 both given: the first starts an existing image, the second builds the reference server's")
	case target != "" && (c.Image != "" || c.BuildRefserverImage):
		return errors.New("TARGET (or EXPORT_TARGET, REPORT_TARGET) and a container (IMAGE or BUILD_REFSERVER_IMAGE=1) both given: choose one target")
	case c.Image == "" && !c.BuildRefserverImage && (c.ImagePort != "" || c.ImageBase != "" || c.ImageEnv != nil || c.ImageStartupTimeout != 0 || c.KeepImage):
		return errors.New("IMAGE_PORT, IMAGE_BASE, IMAGE_ENV, IMAGE_STARTUP_TIMEOUT or KEEP_IMAGE given without IMAGE or BUILD_REFSERVER_IMAGE=1")
	case c.KeepImage && !c.BuildRefserverImage:
		return errors.New("KEEP_IMAGE=1 keeps the image BUILD_REFSERVER_IMAGE=1 builds; an IMAGE is never removed")
	case c.BuildRefserverImage && (c.ImagePort != "" || c.ImageBase != ""):
		return errors.New("IMAGE_PORT and IMAGE_BASE are for a vendor IMAGE: the reference server's image listens on 8080 at /fhir")
	}
	return nil
}

func (c ContainerConfig) enabled() bool { return c.Image != "" || c.BuildRefserverImage }

// containerTarget starts the configured container (Validate has checked the combination) and points t at it.
// The returned started's Stop terminates the container and removes a built image with a context of its own,
// so that it also runs after Ctrl-C has cancelled ctx, and its Exited tells a container that died during the
// run; on error everything started is already removed.
func containerTarget(ctx context.Context, cfg Config, t steps.Target) (_ steps.Target, _ started, err error) {
	var cleanups []func(context.Context) error
	stop := func() {
		// A fresh context: ctx may be cancelled (Ctrl-C), and cleanup must still happen.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			if err := cleanups[i](cctx); err != nil {
				fmt.Fprintf(cfg.Log, "conformance: cleanup: %v\n", err)
			}
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()

	img := cfg.Image
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(logTo{cfg.Log}),
		container.WithStartupTimeout(cmp.Or(cfg.ImageStartupTimeout, container.DefaultStartupTimeout)),
	}
	env := maps.Clone(cfg.ImageEnv)
	if cfg.BuildRefserverImage {
		// The reference server emulates the run's profile, as the embedded one does, unless IMAGE_ENV says.
		if p := cmp.Or(cfg.RefserverProfile, cfg.Profile); p != "" {
			if _, set := env["REFSERVER_PROFILE"]; !set {
				if env == nil {
					env = map[string]string{}
				}
				env["REFSERVER_PROFILE"] = p
			}
		}
	}
	if len(env) > 0 {
		opts = append(opts, container.WithEnv(env))
	}
	if cfg.BuildRefserverImage {
		began := time.Now()
		buildOpts := []image.BuildOption{}
		if cfg.KeepImage {
			buildOpts = append(buildOpts, image.WithName(KeptRefserverImage), image.WithKeepImage())
		}
		built, err := image.Build(ctx, buildOpts...)
		if err != nil {
			return t, started{}, err
		}
		if !cfg.KeepImage {
			cleanups = append(cleanups, built.Remove)
		}
		img = built.Name
		fmt.Fprintf(cfg.Out, "image %s built from refserver/Dockerfile in %s\n", img, time.Since(began).Round(100*time.Millisecond))
		if cfg.KeepImage {
			fmt.Fprintf(cfg.Out, "image %s kept: TOKEN=%s TOKEN_B=%s make conformance IMAGE=%s\n", img, refserver.DemoTokenA, refserver.DemoTokenB, img)
		}
		if cfg.Token == "" && cfg.TokenB == "" && cfg.TokenURL == "" && cfg.ClientID == "" {
			// No credentials given: the image's demo users, as for the embedded server.
			for _, u := range refserver.DefaultUsers() {
				t.Credentials[u.Name] = steps.StaticTokens(map[string]string{u.Name: u.Token})[u.Name]
			}
		}
	} else {
		if cfg.ImagePort != "" {
			opts = append(opts, container.WithPort(cfg.ImagePort))
		}
		if cfg.ImageBase != "" {
			opts = append(opts, container.WithBasePath(cfg.ImageBase))
		}
	}

	began := time.Now()
	ctr, err := container.Run(ctx, img, opts...)
	if ctr != nil {
		cleanups = append(cleanups, func(cctx context.Context) error {
			if err := testcontainers.TerminateContainer(ctr, testcontainers.StopContext(cctx)); err != nil {
				return fmt.Errorf("remove container %s: %w", ctr.GetContainerID(), err)
			}
			return nil
		})
	}
	if err != nil {
		var nr *container.NotReadyError
		if errors.As(err, &nr) && cfg.Image != "" {
			return t, started{}, fmt.Errorf("start container: %w\n  fix: %s", err, notReadyFix(cfg, nr))
		}
		return t, started{}, fmt.Errorf("start container: %w", err)
	}
	base, err := ctr.BaseURL(ctx)
	if err != nil {
		return t, started{}, fmt.Errorf("start container: %w", err)
	}
	fmt.Fprintf(cfg.Out, "container %s started in %s at %s\n", img, time.Since(began).Round(10*time.Millisecond), base)
	t.ExportBaseURL, t.ReportBaseURL = base, base
	t.Name = "container " + img + " (" + base + ")"
	return t, started{stop: stop, exited: ctr.Exited}, nil
}

// secretEnvWords mark an IMAGE_ENV variable whose value is a secret, by its name: DB_PASSWORD,
// CLIENT_SECRET, API_KEY, KEYSTORE_PASS, AUTH_TOKEN, SPRING_DATASOURCE_CREDENTIALS...
var secretEnvWords = []string{"PASS", "PWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PRIVATE", "CERT", "SIGNATURE", "SALT"}

// imageEnvSecrets are the values of IMAGE_ENV that the run must never write: those of variables named like a
// secret (secretEnvWords, whatever the case), and the password of any value that is a URL carrying one
// (DATABASE_URL=postgres://fut:pw@db/fut). The container's output, quoted to explain a failed start, and the
// progress log may hold them. Other values (ports, durations, profiles) stay readable: redacted as secrets,
// "test" or "8080" would blank ordinary words of every report.
func imageEnvSecrets(env map[string]string) []string {
	var out []string
	for k, v := range env {
		upper := strings.ToUpper(k)
		if slices.ContainsFunc(secretEnvWords, func(w string) bool { return strings.Contains(upper, w) }) {
			out = append(out, v)
		}
		out = append(out, urlPasswords(v)...)
	}
	return out
}

// notReadyFix is what to change when a vendor's image ran but never answered its readiness request.
func notReadyFix(cfg Config, nr *container.NotReadyError) string {
	slow := fmt.Sprintf("raise IMAGE_STARTUP_TIMEOUT (%s) if the server is only slow to start", nr.Timeout)
	num, _, _ := strings.Cut(nr.Port, "/")
	switch {
	case nr.BasePath != "":
		return fmt.Sprintf("did you mean IMAGE_BASE=%s? GET %s answers 200 (IMAGE_BASE is %s)", nr.BasePath,
			strings.TrimRight(nr.BasePath, "/")+"/metadata", cmp.Or(cfg.ImageBase, container.DefaultBasePath))
	case len(nr.ImagePorts) > 0 && !slices.Contains(nr.ImagePorts, nr.Port):
		want, _, _ := strings.Cut(nr.ImagePorts[0], "/")
		return fmt.Sprintf("did you mean IMAGE_PORT=%s? the image exposes %s, and IMAGE_PORT is %s; or %s", want, strings.Join(nr.ImagePorts, ", "), num, slow)
	case !nr.Answered:
		return fmt.Sprintf("check IMAGE_PORT (%s), the port the server listens on inside the container, and the container's output; or %s", num, slow)
	}
	return fmt.Sprintf("GET %s must answer 200 once the server is up: check IMAGE_BASE (%s) and the container's output; or %s",
		nr.Path, cmp.Or(cfg.ImageBase, container.DefaultBasePath), slow)
}

// logTo sends testcontainers' progress lines to the run's log (stderr by default), not into the report.
type logTo struct{ w io.Writer }

func (l logTo) Printf(format string, args ...any) {
	fmt.Fprintf(l.w, strings.TrimRight(format, "\n")+"\n", args...)
}
