package harness

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// env reads the run's variables. Every malformed value is collected rather than returned at once, so that a
// user fixes a misconfiguration in one pass instead of one variable per run.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) failf(format string, args ...any) { e.errs = append(e.errs, fmt.Errorf(format, args...)) }

// str is a plain variable, trimmed.
func (e *env) str(name string) string { return strings.TrimSpace(e.getenv(name)) }

// secret is a secret variable NAME, given either directly or as NAME_FILE, the path of a file holding it (so
// that it need not sit in the environment of every process, nor on a command line). Both at once is an
// error: one of them would be ignored silently. The value never appears in an error.
func (e *env) secret(name string) string {
	direct, path := e.getenv(name), strings.TrimSpace(e.getenv(name+"_FILE"))
	switch {
	case path == "":
		return direct
	case direct != "":
		e.failf("%s and %s_FILE both given: set one", name, name)
		return ""
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		e.failf("%s_FILE=%q: %v", name, path, err)
		return ""
	}
	// A secret file ends with a newline more often than not; a token or client secret holds no white space.
	v := strings.TrimSpace(string(raw))
	if v == "" {
		e.failf("%s_FILE=%q: the file is empty", name, path)
	}
	return v
}

// duration reads a positive Go duration into dst, leaving dst as it is when the variable is unset.
func (e *env) duration(name string, dst *time.Duration) {
	v := e.str(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.failf("%s=%q: expected a positive Go duration such as 90s or 10m", name, v)
		return
	}
	*dst = d
}

// integer reads an integer into dst, leaving dst as it is when the variable is unset.
func (e *env) integer(name string, dst *int64) {
	v := e.str(name)
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.failf("%s=%q: expected an integer", name, v)
		return
	}
	*dst = n
}

// positive reads a count into dst, leaving dst as it is when the variable is unset. 0 is refused with the
// rest: in a Config it stands for the default, and a user who writes MAX_FILES=0 (no file?) or MAX_BODY=0 (no
// bound?) means something else than the default the run would quietly take.
func (e *env) positive(name, what string, dst *int64) {
	v := e.str(name)
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		e.failf("%s=%q: expected a positive number of %s (unset: the default)", name, v, what)
		return
	}
	*dst = n
}

// size reads a number of bytes, plain or with a unit (64MiB, 500MB): the failure that names MAX_BODY gives the
// value that reads the answer in bytes, and a user raising it may well write it in MiB.
func (e *env) size(name string, dst *int64) {
	v := e.str(name)
	if v == "" {
		return
	}
	n, err := refserver.ParseSize(v)
	if err != nil {
		e.failf("%s: %v", name, err)
		return
	}
	if n < 1 { // 0 is the default in a Config: MAX_BODY=0 would quietly be 64 MiB, not "no bound"
		e.failf("%s=%q: expected a positive size, in bytes or with a unit such as 256MiB (unset: the default)", name, v)
		return
	}
	*dst = n
}

// fhirLines reads "sample", "all", "none" or a count of lines as a steps.Target's FHIRLines; unset is
// "sample", 0, the default.
func (e *env) fhirLines(name string) int {
	switch v := strings.ToLower(e.str(name)); v {
	case "", "sample":
		return 0
	case "all":
		return check.AllLines
	case "none", "0":
		return steps.NoFHIRLines
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			e.failf("%s=%q: expected sample, all, none or a number of lines", name, v)
			return 0
		}
		return n
	}
}

// fraction reads a number in (0, 1] into dst; unset leaves dst alone.
func (e *env) fraction(name string, dst *float64) {
	v := e.str(name)
	if v == "" {
		return
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0 && f <= 1) {
		e.failf("%s=%q: expected a fraction above 0 and at most 1, e.g. 0.001", name, v)
		return
	}
	*dst = f
}

// flag reads 1/0 (or true/false, yes/no) into dst.
func (e *env) flag(name string, dst *bool) {
	switch v := e.str(name); strings.ToLower(v) {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		*dst = true
	default:
		e.failf("%s=%q: expected 1 or 0", name, v)
	}
}

// keyValues reads space-separated KEY=VALUE pairs (values may hold "," and "=").
func (e *env) keyValues(name string) map[string]string {
	v := e.str(name)
	if v == "" {
		return nil
	}
	out := map[string]string{}
	entries := strings.Fields(v)
	prev := ""
	for i, kv := range entries {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			// Not quoted: the entry may be a piece of a secret value that held a space.
			where := ""
			if prev != "" {
				where = " (after " + prev + "=…)"
			}
			e.failf("%s: entry %d of %d%s is not KEY=VALUE (entries are separated by spaces, so no value can hold one)", name, i+1, len(entries), where)
			continue
		}
		out[k], prev = val, k
	}
	return out
}

// list reads a comma-separated list; "all" or nothing is nil.
func (e *env) list(name string) []string {
	v := e.str(name)
	if v == "" || v == "all" {
		return nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// ConfigFromEnv reads every variable of Variables (through the CONFIG target file, if one is named). It
// returns every malformed value at once, each naming its variable; whether the values make one coherent run
// is checked once, by Run (Config.validate).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	getenv, configName, err := withTargetFile(getenv)
	if err != nil {
		return Config{}, err
	}
	e := &env{getenv: getenv}
	cfg := Config{
		ConfigName:       configName,
		Target:           e.str("TARGET"),
		ExportTarget:     e.str("EXPORT_TARGET"),
		ReportTarget:     e.str("REPORT_TARGET"),
		Features:         e.list("FEATURES"),
		Token:            e.secret("TOKEN"),
		TokenB:           e.secret("TOKEN_B"),
		Tags:             e.str("TAGS"),
		Report:           e.str("REPORT"),
		ExportTypes:      e.str("EXPORT_TYPES"),
		ExportKickoff:    e.str("EXPORT_KICKOFF"),
		ReportsDir:       e.str("REPORTS_DIR"),
		Profile:          e.str("PROFILE"),
		RefserverProfile: e.str("REFSERVER_PROFILE"),
		RefserverExport:  e.refserverExport(),
		AuthConfig: AuthConfig{
			TokenURL:      e.str("TOKEN_URL"),
			ClientID:      e.str("CLIENT_ID"),
			ClientSecret:  e.secret("CLIENT_SECRET"),
			Scope:         e.str("SCOPE"),
			ClientIDB:     e.str("CLIENT_ID_B"),
			ClientSecretB: e.secret("CLIENT_SECRET_B"),
			PrivateKey:    e.str("PRIVATE_KEY"),
			KeyID:         e.str("KEY_ID"),
			PrivateKeyB:   e.str("PRIVATE_KEY_B"),
			KeyIDB:        e.str("KEY_ID_B"),
			CACert:        e.str("CA_CERT"),
			ClientCert:    e.str("CLIENT_CERT"),
			ClientKey:     e.str("CLIENT_KEY"),
		},
		ContainerConfig: ContainerConfig{
			Image:     e.str("IMAGE"),
			ImagePort: e.str("IMAGE_PORT"),
			ImageBase: e.str("IMAGE_BASE"),
			ImageEnv:  e.keyValues("IMAGE_ENV"),
		},
	}
	e.duration("MAX_WAIT", &cfg.MaxWait)
	e.duration("REQUEST_TIMEOUT", &cfg.RequestTimeout)
	e.duration("IMAGE_STARTUP_TIMEOUT", &cfg.ImageStartupTimeout)
	e.size("MAX_BODY", &cfg.MaxBodyBytes)
	e.positive("MAX_JOBS", "jobs", &cfg.MaxJobs)
	e.duration("DOWNLOAD_WAIT", &cfg.DownloadWait)
	e.positive("MAX_FILES", "files", &cfg.MaxFiles)
	cfg.TrustedOrigins = e.list("TRUSTED_ORIGINS")
	e.integer("RANDOM_SEED", &cfg.Randomize)
	e.positive("PARALLEL_DOWNLOADS", "connections", &cfg.ParallelDownloads)
	cfg.FHIRLines = e.fhirLines("FHIR_LINES")
	e.fraction("FHIR_SAMPLE", &cfg.FHIRSample)
	e.flag("STRICT", &cfg.Strict)
	e.flag("GATE", &cfg.Gate)
	e.flag("GODOG_STOP_ON_FAILURE", &cfg.StopOnFailure)
	cfg.Format = strings.ToLower(e.str("FORMAT"))
	e.flag("BUILD_REFSERVER_IMAGE", &cfg.BuildRefserverImage)
	e.flag("KEEP_IMAGE", &cfg.KeepImage)
	for _, name := range ReferenceServerVariables {
		if e.getenv(name) != "" {
			cfg.ReferenceServerOnly = append(cfg.ReferenceServerOnly, name)
		}
	}
	return cfg, errors.Join(e.errs...)
}
