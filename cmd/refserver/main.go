// Command refserver runs the FUT conformance reference server.
//
// Flags (each with an environment fallback):
//
//	-addr             ADDR              listen address (default 127.0.0.1:8080)
//	-base-path        BASE_PATH         FHIR base path (default /fhir)
//	-public-base-url  PUBLIC_BASE_URL   absolute FHIR base URL used in links (default: derived per request)
//	-export-duration  EXPORT_DURATION   how long an export job runs (Go duration, default 2s)
//	-report-duration  REPORT_DURATION   how long a report job runs (Go duration, default 1s)
//	-retry-after      RETRY_AFTER       Retry-After on 202 answers (Go duration, default 1s)
//	-profile          REFSERVER_PROFILE fut, bulkdata or hapi-8.0: which source to emulate where they disagree
//	-tokens           REFSERVER_TOKENS  users: token=userId[:name][:nonanon],... (default: the demo users)
//	-data             DATA_DIR          directory of <ResourceType>.ndjson files, streamed from disk (default: embedded data; also REFSERVER_DATA_DIR)
//	-retention        RETENTION         how long finished jobs, their files and report jobs are kept (default 2h)
//	-clients          REFSERVER_CLIENTS OAuth2 clients: clientId:secret:userId[:lifetime],... (default: demo clients)
//	-client-keys      REFSERVER_CLIENT_KEYS public keys of clients (private_key_jwt): clientId:kid:file.pem,...
//	-token-lifetime   TOKEN_LIFETIME    lifetime of issued tokens when a client sets none (default 1h)
//	-tls-cert         TLS_CERT          PEM certificate: serve HTTPS (with -tls-key)
//	-tls-key          TLS_KEY           PEM private key of -tls-cert
//	-client-ca        CLIENT_CA         PEM CA bundle: require client certificates (mutual TLS)
//	-throttle         REFSERVER_THROTTLE  answer 429 + Retry-After to a poll before the announced Retry-After
//	-poll-path        REFSERVER_POLL_PATH polling location [base]/<segment>/<id> (e.g. bulkstatus) instead of $export-poll-status
//	-fail-exports     REFSERVER_FAIL_EXPORTS every export fails when its time is up: 500 + OperationOutcome, as HAPI answers a FAILED job
//	-max-jobs-per-user     MAX_JOBS_PER_USER     export jobs, and report jobs, one user may hold (default 1000; 429 beyond)
//	-max-job-request-bytes MAX_JOB_REQUEST_BYTES what one job keeps of its request (default 16384; 413 beyond)
//	-max-conns        MAX_CONNS         open connections served at once; more wait to be accepted (default 256)
//	-read-timeout     READ_TIMEOUT      the longest a request (headers and body) may take to arrive (default 30s)
//	-faults           FAULTS            comma list of faults to inject (refserver/faults.go); for the kill matrix only
//	-synthetic-bytes     REFSERVER_SYNTHETIC_BYTES      serve a generated export of about this size (e.g. 1GiB) instead of -data
//	-synthetic-resources REFSERVER_SYNTHETIC_RESOURCES  serve a generated export of exactly N resources per type
//	-synthetic-types     REFSERVER_SYNTHETIC_TYPES      types generated (default CarePlan,Observation,Patient)
//	-synthetic-seed      REFSERVER_SYNTHETIC_SEED       seed of the generated content (default 0)
//	-files-per-type      REFSERVER_FILES_PER_TYPE       output files per resource type, at most (default 1)
//
// Invalid values exit with status 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(*usageError)):
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(1)
	}
}

// usageError marks invalid flags, environment values or configuration (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// options is the parsed command line.
type options struct {
	addr      string
	cfg       refserver.Config
	demoUsers bool // the demo users are in use (their tokens may be printed)

	demoClients bool     // the demo OAuth2 clients are in use (their secrets may be printed)
	tls         tlsFiles // optional TLS and mutual TLS (security.go)
	conns       connLimits
}

// parseOptions reads flags, falling back to environment variables via getenv.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("refserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", env("ADDR", "127.0.0.1:8080"), "listen address (env ADDR)")
	basePath := fs.String("base-path", env("BASE_PATH", refserver.DefaultBasePath), "FHIR base path (env BASE_PATH)")
	publicBase := fs.String("public-base-url", env("PUBLIC_BASE_URL", ""), "absolute FHIR base URL used in links; empty: derived per request (env PUBLIC_BASE_URL)")
	exportDur := fs.String("export-duration", env("EXPORT_DURATION", refserver.DefaultExportDuration.String()), "how long an export job runs, Go duration (env EXPORT_DURATION)")
	reportDur := fs.String("report-duration", env("REPORT_DURATION", refserver.DefaultReportDuration.String()), "how long a report job runs, Go duration (env REPORT_DURATION)")
	retryAfter := fs.String("retry-after", env("RETRY_AFTER", refserver.DefaultRetryAfter.String()), "Retry-After on 202 answers, Go duration (env RETRY_AFTER)")
	tokens := fs.String("tokens", env("REFSERVER_TOKENS", ""), "users as token=userId[:name][:nonanon],...; empty: the demo users (env REFSERVER_TOKENS)")
	profile := fs.String("profile", env("REFSERVER_PROFILE", string(refserver.ProfileFUT)), "which source to emulate where sources disagree: fut, bulkdata or hapi-8.0 (env REFSERVER_PROFILE)")
	dataDir := fs.String("data", env("DATA_DIR", env("REFSERVER_DATA_DIR", "")), "directory of <ResourceType>.ndjson files, streamed from disk; empty: embedded data (env DATA_DIR or REFSERVER_DATA_DIR)")
	security := addSecurityFlags(fs, env)
	throttleEnv, throttleEnvErr := strconv.ParseBool(env("REFSERVER_THROTTLE", "false"))
	throttle := fs.Bool("throttle", throttleEnv, "answer 429 Too Many Requests + Retry-After to a poll that comes before the Retry-After announced (env REFSERVER_THROTTLE)")
	failEnv, failEnvErr := strconv.ParseBool(env("REFSERVER_FAIL_EXPORTS", "false"))
	failExports := fs.Bool("fail-exports", failEnv, "every export fails when its time is up: its polling location answers 500 and an OperationOutcome, as HAPI answers a FAILED job (the HL7 IG's error status; env REFSERVER_FAIL_EXPORTS)")
	pollPath := fs.String("poll-path", env("REFSERVER_POLL_PATH", ""), "serve the polling location as [base]/<segment>/<id>, e.g. bulkstatus (an independent HL7 Bulk Data server's shape), and not $export-poll-status; empty: FUT's (env REFSERVER_POLL_PATH)")
	limits := addLimitFlags(fs, env)
	faults := fs.String("faults", env("FAULTS", ""), "comma list of deviations to inject (refserver/faults.go), to test a harness; empty: conformant (env FAULTS)")
	synthBytes := fs.String("synthetic-bytes", env("REFSERVER_SYNTHETIC_BYTES", ""), "serve a generated export of about this size in all, e.g. 1GiB, 500MB, 1048576; instead of -data (env REFSERVER_SYNTHETIC_BYTES)")
	synthResources := fs.String("synthetic-resources", env("REFSERVER_SYNTHETIC_RESOURCES", ""), "serve a generated export of exactly this many resources per type; instead of -data (env REFSERVER_SYNTHETIC_RESOURCES)")
	synthTypes := fs.String("synthetic-types", env("REFSERVER_SYNTHETIC_TYPES", ""), "comma list of generated types, of "+strings.Join(refserver.SyntheticTypes, ", ")+"; empty: all (env REFSERVER_SYNTHETIC_TYPES)")
	synthSeed := fs.String("synthetic-seed", env("REFSERVER_SYNTHETIC_SEED", "0"), "seed of the generated content (env REFSERVER_SYNTHETIC_SEED)")
	filesPerType := fs.String("files-per-type", env("REFSERVER_FILES_PER_TYPE", "1"), "output files per resource type, at most, split at about equal sizes (env REFSERVER_FILES_PER_TYPE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return options{}, err
		}
		return options{}, &usageError{err}
	}
	if fs.NArg() > 0 {
		return options{}, &usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}

	var errs []error
	dur := func(name, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("-%s: %q is not a Go duration (e.g. 2s, 500ms)", name, v))
			return 0
		}
		if d <= 0 {
			errs = append(errs, fmt.Errorf("-%s: must be positive, got %s", name, v))
		}
		return d
	}
	o := options{addr: *addr}
	o.cfg = refserver.Config{
		BasePath:       *basePath,
		PublicBaseURL:  *publicBase,
		ExportDuration: dur("export-duration", *exportDur),
		ReportDuration: dur("report-duration", *reportDur),
		RetryAfter:     dur("retry-after", *retryAfter),
		Profile:        refserver.Profile(*profile),
		PollPath:       *pollPath,
	}
	if throttleEnvErr != nil {
		errs = append(errs, fmt.Errorf("REFSERVER_THROTTLE: %q is not a boolean (1, true, 0, false)", getenv("REFSERVER_THROTTLE")))
	}
	o.cfg.Throttle = *throttle
	if failEnvErr != nil {
		errs = append(errs, fmt.Errorf("REFSERVER_FAIL_EXPORTS: %q is not a boolean (1, true, 0, false)", getenv("REFSERVER_FAIL_EXPORTS")))
	}
	o.cfg.FailExports = *failExports
	if *faults != "" {
		o.cfg.Faults = strings.Split(*faults, ",")
	}
	synth, err := refserver.SyntheticFromStrings(*synthBytes, *synthResources, *synthTypes, *synthSeed)
	if err != nil {
		errs = append(errs, err)
	}
	o.cfg.Synthetic = synth
	if n, err := strconv.Atoi(strings.TrimSpace(*filesPerType)); err != nil || n < 1 {
		errs = append(errs, fmt.Errorf("-files-per-type: %q is not a positive number", *filesPerType))
	} else {
		o.cfg.FilesPerType = n
	}
	if *tokens == "" {
		o.cfg.Users = refserver.DefaultUsers()
		o.demoUsers = true
	} else {
		users, err := parseTokens(*tokens)
		if err != nil {
			errs = append(errs, fmt.Errorf("-tokens: %w", err))
		}
		o.cfg.Users = users
	}
	if *dataDir != "" && synth.Bytes+synth.Resources > 0 {
		errs = append(errs, errors.New("-data and -synthetic-bytes or -synthetic-resources both given: choose one"))
	} else if *dataDir != "" {
		st, err := os.Stat(*dataDir)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("-data: %w", err))
		case !st.IsDir():
			errs = append(errs, fmt.Errorf("-data: %s is not a directory", *dataDir))
		default:
			o.cfg.Data = os.DirFS(*dataDir)
		}
	}
	if *addr == "" {
		errs = append(errs, errors.New("-addr: must not be empty"))
	}
	errs = append(errs, security.apply(&o)...)
	errs = append(errs, limits.apply(&o)...)
	if err := errors.Join(errs...); err != nil {
		return options{}, &usageError{err}
	}
	return o, nil
}

// parseTokens parses "token=userId[:name][:nonanon],...". A trailing
// ":nonanon" grants MayReadNonAnonymized; the name defaults to the user id.
func parseTokens(s string) ([]refserver.User, error) {
	var users []refserver.User
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		token, rest, ok := strings.Cut(item, "=")
		if !ok || token == "" || rest == "" {
			return nil, fmt.Errorf("entry %d: want token=userId[:name][:nonanon]", i+1)
		}
		fields := strings.Split(rest, ":")
		u := refserver.User{Token: token, ID: fields[0]}
		if u.ID == "" {
			return nil, fmt.Errorf("entry %d: empty user id", i+1)
		}
		fields = fields[1:]
		if n := len(fields); n > 0 && fields[n-1] == "nonanon" {
			u.MayReadNonAnonymized = true
			fields = fields[:n-1]
		}
		switch len(fields) {
		case 0:
			u.Name = u.ID
		case 1:
			u.Name = fields[0]
			if u.Name == "" {
				u.Name = u.ID
			}
		default:
			return nil, fmt.Errorf("entry %d: want token=userId[:name][:nonanon]", i+1)
		}
		users = append(users, u)
	}
	return users, nil
}

// run parses args, starts the server and serves until ctx is done, then shuts
// down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args, getenv, stdout)
	if err != nil {
		return err
	}
	srv, err := refserver.NewServer(o.cfg)
	if err != nil {
		return &usageError{err}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln, scheme, err := o.tls.listen(o.conns.listener(ln, o.tls.cert == ""))
	if err != nil {
		return err
	}
	hs := o.conns.server(srv.Handler())
	basePath := o.cfg.BasePath
	if basePath == "" {
		basePath = refserver.DefaultBasePath
	}
	basePath = strings.TrimRight(basePath, "/")
	fmt.Fprintf(stdout, "refserver listening on %s://%s%s\n", scheme, ln.Addr(), basePath)
	if len(o.cfg.Faults) > 0 {
		fmt.Fprintf(stdout, "FAULTS INJECTED (not conformant on purpose): %s\n", strings.Join(o.cfg.Faults, ", "))
	}
	custom := o.cfg.Data != nil || o.cfg.Synthetic.Bytes+o.cfg.Synthetic.Resources > 0 || o.cfg.FilesPerType > 1
	if contents, err := srv.ExportContents(); err == nil && custom {
		var parts []string
		for _, c := range contents {
			parts = append(parts, fmt.Sprintf("%s %d resources in %d files", c.Type, c.Resources, c.Files))
		}
		source := "data files"
		if o.cfg.Synthetic.Bytes+o.cfg.Synthetic.Resources > 0 {
			source = fmt.Sprintf("synthetic, seed %d", o.cfg.Synthetic.Seed)
		}
		fmt.Fprintf(stdout, "export of everything (%s): %s\n", source, strings.Join(parts, "; "))
	}
	if o.demoUsers {
		for _, u := range o.cfg.Users {
			fmt.Fprintf(stdout, "demo user %s: token=%s userId=%s mayReadNonAnonymized=%t\n", u.Name, u.Token, u.ID, u.MayReadNonAnonymized)
		}
	}
	printClients(stdout, o, scheme, ln.Addr())

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
