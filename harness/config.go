// Package harness runs the features against one target: the embedded reference server when no TARGET is
// given, or any server by URL. It writes the JUnit and Cucumber JSON reports and the run's summary.
package harness

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/steps"
)

// Config is one run, as the environment (or the conformance command's flags) gives it.
type Config struct {
	Target         string        // TARGET: FHIR base URL; empty runs the embedded reference server
	ExportTarget   string        // EXPORT_TARGET: FHIR base of the service that exports; default TARGET
	ReportTarget   string        // REPORT_TARGET: FHIR base of the reporting service; default TARGET
	Features       []string      // FEATURES: export, report, or both (nil)
	ConfigName     string        // the name of the CONFIG target file, if one was read
	Token          string        // TOKEN: the first user's bearer token
	TokenB         string        // TOKEN_B: a second user's token; empty skips the cross-user scenarios, visibly
	AuthConfig                   // TOKEN_URL, CLIENT_ID, ..., CA_CERT, CLIENT_CERT, CLIENT_KEY (auth.go)
	Tags           string        // TAGS: godog tag expression, e.g. "@export && ~@cross-user"
	MaxWait        time.Duration // MAX_WAIT: per asynchronous job
	RequestTimeout time.Duration // REQUEST_TIMEOUT: per request
	MaxBodyBytes   int64         // MAX_BODY: cap on a response body, bytes
	Report         string        // REPORT: report type started by the report scenarios
	ExportTypes    string        // EXPORT_TYPES: _type of every kick-off (empty: all types)
	Strict         bool          // STRICT=1: SHOULD deviations fail
	Profile        string        // PROFILE: fut (default), bulkdata or hapi-8.0 (features/PROFILES.md)
	// RefserverProfile is what the embedded reference server emulates (REFSERVER_PROFILE); default Profile.
	RefserverProfile string
	ReportsDir       string // REPORTS_DIR: where junit.xml and cucumber.json go
	Randomize        int64  // RANDOM_SEED: scenario order; 0 keeps the files' order, -1 picks a seed
	StopOnFailure    bool   // GODOG_STOP_ON_FAILURE=1
	ContainerConfig         // IMAGE, IMAGE_PORT, ... or BUILD_REFSERVER_IMAGE=1: the target as a container (container.go)

	Out io.Writer  // console report; nil: stdout
	Log io.Writer  // one line per poll while waiting; nil: stderr
	T   *testing.T // when set, scenarios run as subtests of T
}

// Variables lists every environment variable the harness reads, for the usage text and the README.
var Variables = []struct{ Name, Default, Meaning string }{
	{"CONFIG", "", "a target file (JSON) holding the run's variables; secrets only by the name of their environment variable"},
	{"TARGET", "(embedded reference server)", "FHIR base URL of the server under test"},
	{"EXPORT_TARGET", "TARGET", "FHIR base URL of the service that serves $export (FUT: a clinical service)"},
	{"REPORT_TARGET", "TARGET", "FHIR base URL of the reporting service ($execute-*, $get-report-job-status)"},
	{"FEATURES", "export,report", "which features to run: export, report, or both"},
	{"TOKEN", "", "bearer token of the first user (user A)"},
	{"TOKEN_B", "", "bearer token of a second user (user B); without it the cross-user scenarios are skipped, visibly"},
	{"TOKEN_URL", "", "OAuth2 token endpoint for client credentials (instead of TOKEN/TOKEN_B)"},
	{"CLIENT_ID", "", "OAuth2 client id of user A; tokens are renewed before they expire"},
	{"CLIENT_SECRET", "", "OAuth2 client secret of user A (never printed or written to a report)"},
	{"SCOPE", "", "space-separated OAuth2 scopes requested for both clients"},
	{"CLIENT_ID_B", "", "OAuth2 client id of user B; without it the cross-user scenarios are skipped, visibly"},
	{"CLIENT_SECRET_B", "", "OAuth2 client secret of user B"},
	{"CA_CERT", "", "PEM file of a CA to trust besides the system roots (target and token endpoint)"},
	{"CLIENT_CERT", "", "PEM client certificate for mutual TLS (with CLIENT_KEY)"},
	{"CLIENT_KEY", "", "PEM private key of CLIENT_CERT"},
	{"TAGS", "", "godog tag expression selecting scenarios, e.g. '@export && ~@cross-user'"},
	{"MAX_WAIT", steps.DefaultMaxWait.String(), "how long to wait for one asynchronous job (Go duration)"},
	{"REQUEST_TIMEOUT", steps.DefaultRequestTimeout.String(), "timeout of one HTTP request, body included (Go duration)"},
	{"MAX_BODY", strconv.Itoa(steps.DefaultMaxBodyBytes), "largest response body read, in bytes"},
	{"REPORT", steps.DefaultReport, "report type started by the report scenarios ($execute-REPORT, $schedule-REPORT)"},
	{"EXPORT_TYPES", "", "comma list sent as _type on every kick-off, to keep a large server's export small"},
	{"STRICT", "0", "1 turns SHOULD deviations (warnings) into failures"},
	{"PROFILE", steps.DefaultProfile, "whose rules decide where the sources disagree: fut, bulkdata or hapi-8.0 (features/PROFILES.md)"},
	{"REFSERVER_PROFILE", "PROFILE", "what the embedded reference server emulates (without TARGET): fut, bulkdata or hapi-8.0"},
	{"REPORTS_DIR", "reports", "where junit.xml and cucumber.json are written"},
	{"RANDOM_SEED", "0", "scenario order: 0 file order, -1 random, N a fixed seed"},
	{"GODOG_STOP_ON_FAILURE", "0", "1 stops at the first failed scenario"},
	{"IMAGE", "", "start this image of the local Docker engine as the target (never pulled); TOKEN, TOKEN_B as for TARGET"},
	{"IMAGE_PORT", "8080", "container port of the FHIR server in IMAGE"},
	{"IMAGE_BASE", "/fhir", "FHIR base path of the server in IMAGE"},
	{"IMAGE_ENV", "", "environment of the container, space-separated: 'KEY=VALUE KEY2=VALUE2'"},
	{"IMAGE_STARTUP_TIMEOUT", "60s", "how long to wait for GET <base>/metadata to answer 200 after the container starts"},
	{"BUILD_REFSERVER_IMAGE", "0", "1 builds the reference server image (refserver/Dockerfile) and runs it as the target (make conformance-container)"},
	{"KEEP_IMAGE", "0", "1 keeps the built reference server image, as " + KeptRefserverImage + " (for IMAGE= runs)"},
}

// ConfigFromEnv reads the variables above; a malformed value is an error that names the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	getenv, configName, err := withTargetFile(getenv)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		ConfigName:   configName,
		ExportTarget: strings.TrimSpace(getenv("EXPORT_TARGET")),
		ReportTarget: strings.TrimSpace(getenv("REPORT_TARGET")),
		Target:       strings.TrimSpace(getenv("TARGET")),
		Token:        getenv("TOKEN"),
		TokenB:       getenv("TOKEN_B"),
		Tags:         strings.TrimSpace(getenv("TAGS")),
		Report:       strings.TrimSpace(getenv("REPORT")),
		ExportTypes:  strings.TrimSpace(getenv("EXPORT_TYPES")),
		ReportsDir:   strings.TrimSpace(getenv("REPORTS_DIR")),
		Profile:      strings.TrimSpace(getenv("PROFILE")),

		RefserverProfile: strings.TrimSpace(getenv("REFSERVER_PROFILE")),
	}
	cfg.AuthConfig = authConfigFromEnv(getenv)
	var errs []error
	if cfg.Features, err = parseFeatures(getenv("FEATURES")); err != nil {
		errs = append(errs, err)
	}
	if err := validateTags(cfg.Tags); err != nil {
		errs = append(errs, err)
	}
	duration := func(name string, dst *time.Duration) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: expected a positive Go duration such as 90s or 10m", name, v))
				return
			}
			*dst = d
		}
	}
	integer := func(name string, dst *int64) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: expected an integer", name, v))
				return
			}
			*dst = n
		}
	}
	flag := func(name string, dst *bool) {
		switch v := strings.TrimSpace(getenv(name)); strings.ToLower(v) {
		case "", "0", "false", "no":
		case "1", "true", "yes":
			*dst = true
		default:
			errs = append(errs, fmt.Errorf("%s=%q: expected 1 or 0", name, v))
		}
	}
	duration("MAX_WAIT", &cfg.MaxWait)
	duration("REQUEST_TIMEOUT", &cfg.RequestTimeout)
	integer("MAX_BODY", &cfg.MaxBodyBytes)
	integer("RANDOM_SEED", &cfg.Randomize)
	flag("STRICT", &cfg.Strict)
	flag("GODOG_STOP_ON_FAILURE", &cfg.StopOnFailure)
	errs = append(errs, containerFromEnv(getenv, &cfg)...)
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("MAX_BODY=%d: expected a positive number of bytes", cfg.MaxBodyBytes))
	}
	return cfg, errors.Join(errs...)
}
