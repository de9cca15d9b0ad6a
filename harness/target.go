package harness

import (
	"cmp"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// resolveTarget is the one place where the configuration becomes the target the steps run against: it
// validates the configuration, applies the defaults, builds the authentication, starts the embedded
// reference server or the container when no URL is given, and sets both service bases (EXPORT_TARGET and
// REPORT_TARGET fall back to TARGET here, and nowhere else). stop releases what it started.
func resolveTarget(ctx context.Context, cfg Config) (steps.Target, started, error) {
	if err := cfg.Validate(); err != nil {
		return steps.Target{}, started{}, err
	}
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, steps.DefaultRequestTimeout)
	if cfg.discoversTokenURL() {
		client, err := newHTTPClient(cfg)
		if err != nil {
			return steps.Target{}, started{}, err
		}
		if cfg.TokenURL, err = discoverTokenURL(ctx, cfg, client); err != nil {
			return steps.Target{}, started{}, err
		}
		fmt.Fprintf(cfg.Log, "TOKEN_URL %s, the token_endpoint of %s/.well-known/smart-configuration\n", cfg.TokenURL, strings.TrimRight(cmp.Or(cfg.ExportTarget, cfg.Target), "/"))
	}
	auth, err := newAuth(cfg)
	if err != nil {
		return steps.Target{}, started{}, err
	}
	t := steps.Target{
		Credentials:       auth.credentials,
		HTTPClient:        auth.client,
		Report:            cmp.Or(cfg.Report, steps.DefaultReport),
		ExportTypes:       strings.Join(strings.Fields(strings.ReplaceAll(cfg.ExportTypes, ",", " ")), ","), // _type has no spaces
		ExportKickoff:     cmp.Or(cfg.ExportKickoff, steps.DefaultExportKickoff),
		MaxWait:           cmp.Or(cfg.MaxWait, steps.DefaultMaxWait),
		RequestTimeout:    cfg.RequestTimeout,
		MaxBodyBytes:      cmp.Or(cfg.MaxBodyBytes, steps.DefaultMaxBodyBytes),
		MaxJobs:           int(cmp.Or(cfg.MaxJobs, steps.DefaultMaxJobs)),
		ParallelDownloads: int(cfg.ParallelDownloads),
		FHIRLines:         cfg.FHIRLines,
		FHIRSample:        cfg.FHIRSample,
		DownloadWait:      cfg.DownloadWait,
		MaxFiles:          int(cfg.MaxFiles),
		TrustedOrigins:    trustedOrigins(cfg),
		RunContext:        ctx,
		Strict:            cfg.Strict,
		StopOnFailure:     cfg.StopOnFailure,
		Profile:           cmp.Or(cfg.Profile, steps.DefaultProfile),
		Log:               cfg.Log,
		LiveProgress:      isTerminal(cfg.Log),
		Findings:          &steps.Findings{},
		Redactor:          cfg.redactor,
		Clock:             cfg.clock,
	}
	switch {
	case cfg.ContainerConfig.enabled():
		return containerTarget(ctx, cfg, t)
	case cfg.anyTarget() != "":
		base := cfg.anyTarget()
		t.ExportBaseURL = strings.TrimRight(cmp.Or(cfg.ExportTarget, base), "/")
		t.ReportBaseURL = strings.TrimRight(cmp.Or(cfg.ReportTarget, base), "/")
		t.Name = t.ExportBaseURL
		if t.ExportBaseURL != t.ReportBaseURL {
			t.Name = fmt.Sprintf("export %s, reports %s", t.ExportBaseURL, t.ReportBaseURL)
		}
		if cfg.ConfigName != "" {
			t.Name = cfg.ConfigName + ": " + t.Name
		}
		return t, started{}, nil
	}
	emulate := cmp.Or(cfg.RefserverProfile, t.Profile)
	rcfg := refserver.Config{Profile: refserver.Profile(emulate), Synthetic: cfg.RefserverExport.Synthetic, FilesPerType: cfg.RefserverExport.FilesPerType}
	if cfg.RefserverExport.DataDir != "" {
		rcfg.Data = os.DirFS(cfg.RefserverExport.DataDir)
	}
	srv, err := refserver.NewServer(rcfg)
	if err != nil {
		return t, started{}, fmt.Errorf("start embedded reference server: %w", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Name = "embedded reference server emulating " + emulate + " (" + ts.URL + "/fhir)"
	t.ExportBaseURL, t.ReportBaseURL = ts.URL+"/fhir", ts.URL+"/fhir"
	demo := map[string]string{}
	for _, u := range refserver.DefaultUsers() {
		demo[u.Name] = u.Token
	}
	t.Credentials = steps.StaticTokens(demo)
	return t, started{stop: ts.Close}, nil
}

// started is what resolveTarget started for the run: how to stop it, and, for a container, how to tell
// that it died during the run.
type started struct {
	stop   func()        // nil: nothing to stop
	exited func() string // "" while the server runs; nil: not a container
}

// Stop stops what was started, if anything.
func (s started) Stop() {
	if s.stop != nil {
		s.stop()
	}
}

// Exited says how the container ended when it is no longer running; "" otherwise, and for other targets.
func (s started) Exited() string {
	if s.exited == nil {
		return ""
	}
	return s.exited()
}

// trustedOrigins are the origins besides the service bases' that may receive a token: the token endpoint's
// and the user's TRUSTED_ORIGINS.
func trustedOrigins(cfg Config) []string {
	var out []string
	for _, o := range append([]string{cfg.TokenURL}, cfg.TrustedOrigins...) {
		if o := steps.Origin(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// baseVariable names the variable that set the base URL of a service ("export" or "report"), for messages
// that tell the user what to change.
func (c Config) baseVariable(service string) string {
	switch {
	case service == "export" && c.ExportTarget != "":
		return "EXPORT_TARGET"
	case service == "report" && c.ReportTarget != "":
		return "REPORT_TARGET"
	case c.Target != "":
		return "TARGET"
	case c.Image != "":
		return "IMAGE_BASE"
	case c.ExportTarget != "":
		return "EXPORT_TARGET"
	case c.ReportTarget != "":
		return "REPORT_TARGET"
	}
	return "TARGET"
}
