// Package harness runs the features against one target: the embedded reference server when no TARGET is
// given, or any server by URL. It writes the JUnit and Cucumber JSON reports and the run's summary.
package harness

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
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
	MaxBodyBytes   int64         // MAX_BODY: cap on a response body, bytes (output files excepted)
	MaxJobs        int64         // MAX_JOBS: export jobs kept in flight at once
	DownloadWait   time.Duration // DOWNLOAD_WAIT: all output downloads of one export together; default MAX_WAIT
	MaxFiles       int64         // MAX_FILES: output files checked per export; the rest reported as not checked
	TrustedOrigins []string      // TRUSTED_ORIGINS: origins besides the targets' that may receive the token
	// ParallelDownloads (PARALLEL_DOWNLOADS) bounds the output files downloaded at once.
	ParallelDownloads int64
	// FHIRLines (FHIR_LINES) is steps.Target.FHIRLines: lines of each output file decoded strictly as FHIR.
	FHIRLines int
	// FHIRSample (FHIR_SAMPLE) is steps.Target.FHIRSample: the chance that a line beyond FHIR_LINES is
	// decoded strictly; 0: the default.
	FHIRSample  float64
	Report      string // REPORT: report type started by the report scenarios
	ExportTypes string // EXPORT_TYPES: _type of every kick-off (empty: all types)
	// ExportKickoff (EXPORT_KICKOFF) is the kick-off endpoint relative to the export base: $export (empty), or
	// with PROFILE=bulkdata Patient/$export or Group/<id>/$export.
	ExportKickoff string
	Strict        bool   // STRICT=1: SHOULD deviations fail
	Gate          bool   // GATE=1: the release gate, every MUST requirement of the selected features checked and passed
	Profile       string // PROFILE: fut (default), bulkdata or hapi-8.0 (features/PROFILES.md)
	// RefserverProfile is what the embedded reference server emulates (REFSERVER_PROFILE); default Profile.
	RefserverProfile string
	// RefserverExport is the embedded reference server's export data (REFSERVER_SYNTHETIC_*,
	// REFSERVER_FILES_PER_TYPE, REFSERVER_DATA_DIR); zero: its small embedded dataset.
	RefserverExport RefserverExport
	// ReferenceServerOnly names the variables of ReferenceServerVariables that are set (ConfigFromEnv): the
	// harness reads none of them, and Run warns of them by name, never by value.
	ReferenceServerOnly []string
	ReportsDir          string // REPORTS_DIR: where junit.xml, cucumber.json and index.html go
	Randomize           int64  // RANDOM_SEED: scenario order; 0 keeps the files' order, -1 picks a seed
	StopOnFailure       bool   // GODOG_STOP_ON_FAILURE=1
	Format              string // FORMAT: the console, compact (default), pretty or progress (console.go)
	ContainerConfig            // IMAGE, IMAGE_PORT, ... or BUILD_REFSERVER_IMAGE=1: the target as a container (container.go)

	Out io.Writer // console report; nil: stdout
	Log io.Writer // one line per poll while waiting; nil: stderr
	// Staged, when set, is told the directory in ReportsDir where the run writes its reports before their
	// last redaction pass and their move into place: a caller that ends the process at once (a second
	// Ctrl-C) removes it.
	Staged func(dir string)

	redactor *check.Redactor // the run's secrets, set by Run
	// clock is the time tokens live by: when an issued token is renewed (renewingSource), a client
	// assertion's exp, a static token's exp claim (the preflight's warnings, steps.Target.Clock). nil:
	// time.Now; a test moves it on instead of waiting for a token to expire.
	clock func() time.Time
}

// now is the time by the run's clock.
func (c Config) now() time.Time {
	if c.clock == nil {
		return time.Now()
	}
	return c.clock()
}

// Variables lists every environment variable the harness reads, for the usage text and the README.
// ReferenceServerVariables are the variables that the reference server command reads (cmd/refserver: `make
// refserver`, the refserver image) and the harness does not, not even for its embedded reference server,
// which reads REFSERVER_PROFILE, REFSERVER_SYNTHETIC_*, REFSERVER_FILES_PER_TYPE and REFSERVER_DATA_DIR alone.
// Set in the harness's environment (a shell that started a reference server by hand, a CI job's variables),
// they change nothing of the run, which says so (Run). ADDR is left out: too common a name to be the
// reference server's.
var ReferenceServerVariables = []string{"EXPORT_DURATION", "REPORT_DURATION", "RETRY_AFTER", "DATA_DIR", "BASE_PATH",
	"PUBLIC_BASE_URL", "REFSERVER_TOKENS", "REFSERVER_THROTTLE", "REFSERVER_POLL_PATH", "REFSERVER_FAIL_EXPORTS", "FAULTS"}

var Variables = []struct{ Name, Default, Meaning string }{
	{"CONFIG", "", "a target file (JSON) holding the run's variables; secrets only by the name of their environment variable"},
	{"TARGET", "(embedded reference server)", "FHIR base URL of the server under test"},
	{"EXPORT_TARGET", "TARGET", "FHIR base URL of the service that serves $export (FUT: a clinical service)"},
	{"REPORT_TARGET", "TARGET", "FHIR base URL of the reporting service ($execute-*, $get-report-job-status)"},
	{"FEATURES", "export,report", "which features to run: export, report, or both"},
	{"TOKEN", "", "bearer token of the first user (user A)"},
	{"TOKEN_FILE", "", "a file holding TOKEN (instead of TOKEN itself), e.g. a mounted secret"},
	{"TOKEN_B", "", "bearer token of a second user (user B); without it the cross-user scenarios are skipped, visibly"},
	{"TOKEN_B_FILE", "", "a file holding TOKEN_B"},
	{"TOKEN_URL", "", "OAuth2 token endpoint for client credentials (instead of TOKEN/TOKEN_B); with PRIVATE_KEY, unset reads it from the server's .well-known/smart-configuration"},
	{"CLIENT_ID", "", "OAuth2 client id of user A; tokens are renewed before they expire"},
	{"CLIENT_SECRET", "", "OAuth2 client secret of user A (never printed or written to a report)"},
	{"CLIENT_SECRET_FILE", "", "a file holding CLIENT_SECRET"},
	{"SCOPE", "", "space-separated OAuth2 scopes requested for both clients"},
	{"CLIENT_ID_B", "", "OAuth2 client id of user B; without it the cross-user scenarios are skipped, visibly"},
	{"CLIENT_SECRET_B", "", "OAuth2 client secret of user B"},
	{"CLIENT_SECRET_B_FILE", "", "a file holding CLIENT_SECRET_B"},
	{"PRIVATE_KEY", "", "SMART Backend Services: path of user A's PEM private key (RSA: RS384, EC P-384: ES384), instead of CLIENT_SECRET; the client signs a JWT for each token request (never printed)"},
	{"KEY_ID", "", "the kid of PRIVATE_KEY, as the server registered the client's public key (required with it)"},
	{"PRIVATE_KEY_B", "", "path of user B's PEM private key, instead of CLIENT_SECRET_B"},
	{"KEY_ID_B", "", "the kid of PRIVATE_KEY_B"},
	{"CA_CERT", "", "PEM file of a CA to trust besides the system roots (target and token endpoint)"},
	{"CLIENT_CERT", "", "PEM client certificate for mutual TLS (with CLIENT_KEY)"},
	{"CLIENT_KEY", "", "PEM private key of CLIENT_CERT"},
	{"TAGS", "", "godog tag expression selecting scenarios, e.g. '@export && ~@cross-user'"},
	{"MAX_WAIT", steps.DefaultMaxWait.String(), "how long to wait for one asynchronous job (Go duration)"},
	{"REQUEST_TIMEOUT", steps.DefaultRequestTimeout.String(), "timeout of one HTTP request, body included (Go duration)"},
	{"MAX_BODY", strconv.Itoa(steps.DefaultMaxBodyBytes), "largest response body read whole, in bytes or with a unit (256MiB); output files are streamed instead, bounded by MAX_WAIT; an answer over it is an error of the run (exit 2), no requirement charged"},
	{"MAX_JOBS", strconv.Itoa(steps.DefaultMaxJobs), "export jobs the harness keeps in flight at once (kicked off, not yet completed or cancelled)"},
	{"PARALLEL_DOWNLOADS", strconv.Itoa(steps.DefaultParallelDownloads), "output files downloaded at once, each judged on its own"},
	{"FHIR_LINES", "sample", "lines of each output file decoded strictly as FHIR R4: sample (FHIR_SAMPLE of them at random, and 1,000 lines of each type, in whichever of its files); N (the first N, and the sample); all; none"},
	{"FHIR_SAMPLE", strconv.FormatFloat(steps.DefaultFHIRSample, 'g', -1, 64), "the chance that a line is in the random sample that FHIR_LINES decodes strictly (0.001: one in 1,000)"},
	{"DOWNLOAD_WAIT", "MAX_WAIT", "how long the output downloads of one export may take together; files left are reported as not checked"},
	{"MAX_FILES", strconv.Itoa(steps.DefaultMaxFiles), "how many output files of one export are downloaded and checked; the rest are reported as not checked"},
	{"TRUSTED_ORIGINS", "", "comma list of origins (https://files.example:8443) besides TARGET's, EXPORT_TARGET's, REPORT_TARGET's and TOKEN_URL's that may receive the token"},
	{"REPORT", steps.DefaultReport, "report type started by the report scenarios ($execute-REPORT, $schedule-REPORT)"},
	{"EXPORT_TYPES", "", "comma list sent as _type on every kick-off, to keep a large server's export small; an output file of another type then fails"},
	{"EXPORT_KICKOFF", steps.DefaultExportKickoff, "the kick-off endpoint relative to EXPORT_TARGET: $export (system level), or with PROFILE=bulkdata Patient/$export or Group/<id>/$export (the HL7 IG makes each level a SHOULD)"},
	{"STRICT", "0", "1 turns SHOULD deviations (warnings) into failures"},
	{"GATE", "0", "1 is the release gate: every MUST requirement of the selected features must have been checked and passed (a skipped or not-run one fails the run)"},
	{"PROFILE", steps.DefaultProfile, "whose rules decide where the sources disagree: fut, bulkdata or hapi-8.0 (features/PROFILES.md)"},
	{"REFSERVER_PROFILE", "PROFILE", "what the embedded reference server emulates (without TARGET): fut, bulkdata or hapi-8.0"},
	{"REFSERVER_SYNTHETIC_BYTES", "", "the embedded reference server exports generated data of about this size in all, e.g. 1GiB, 500MB"},
	{"REFSERVER_SYNTHETIC_RESOURCES", "", "the embedded reference server exports exactly this many generated resources per type"},
	{"REFSERVER_SYNTHETIC_TYPES", "CarePlan,Observation,Patient", "the types the embedded reference server generates"},
	{"REFSERVER_SYNTHETIC_SEED", "0", "seed of the generated content; the same seed gives the same bytes"},
	{"REFSERVER_FILES_PER_TYPE", "1", "output files per resource type of the embedded reference server, at most"},
	{"REFSERVER_DATA_DIR", "", "directory of <ResourceType>.ndjson files the embedded reference server exports, streamed from disk"},
	{"REPORTS_DIR", "reports", "where junit.xml, cucumber.json and index.html are written; made if missing; no comma"},
	{"RANDOM_SEED", "0", "scenario order: 0 file order, -1 random, N a fixed seed"},
	{"GODOG_STOP_ON_FAILURE", "0", "1 stops at the first failed scenario"},
	{"FORMAT", FormatCompact, "console output: compact (a line per scenario, each failure once, a verdict per requirement), pretty or progress (godog's)"},
	{"IMAGE", "", "start this image of the local Docker engine as the target (never pulled); TOKEN, TOKEN_B as for TARGET"},
	{"IMAGE_PORT", "8080", "container port of the FHIR server in IMAGE"},
	{"IMAGE_BASE", "/fhir", "FHIR base path of the server in IMAGE"},
	{"IMAGE_ENV", "", "environment of the container, space-separated: 'KEY=VALUE KEY2=VALUE2'"},
	{"IMAGE_STARTUP_TIMEOUT", "60s", "how long to wait for GET <base>/metadata to answer 200 after the container starts"},
	{"BUILD_REFSERVER_IMAGE", "0", "1 builds the reference server image (refserver/Dockerfile) and runs it as the target (make conformance-container)"},
	{"KEEP_IMAGE", "0", "1 keeps the built reference server image, as " + KeptRefserverImage + " (for IMAGE= runs)"},
}

// Validate checks that the configuration makes one coherent run, returning every problem at once: one
// authentication mode, one kind of target, two distinct users, absolute base URLs, known features and a tag
// expression godog reads as meant. Run calls it (through resolveTarget) before anything starts.
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range []struct{ name, value string }{{"TARGET", c.Target}, {"EXPORT_TARGET", c.ExportTarget}, {"REPORT_TARGET", c.ReportTarget}} {
		if v.value == "" {
			continue
		}
		u, err := url.Parse(v.value)
		switch {
		case strings.ContainsFunc(v.value, unicode.IsSpace):
			// url.Parse takes a space in the path: the run would request "/ fhir/metadata" (sent as %20) and
			// blame the server's base for a paste's stray space.
			add(fmt.Errorf("%s=%q: a URL holds no white space: remove it (a space that belongs to the path is written %%20)", v.name, withoutPassword(v.value)))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			msg := fmt.Sprintf("%s=%q: expected the absolute http(s) URL of a FHIR base, such as https://fhir.example/fhir", v.name, withoutPassword(v.value))
			if !strings.Contains(v.value, "://") {
				msg += fmt.Sprintf(" (it has no scheme: https://%s or http://%s?)", withoutPassword(v.value), withoutPassword(v.value))
			}
			add(errors.New(msg))
		case u.Fragment != "" || strings.Contains(v.value, "#"):
			// Every request is the base with a path appended: after a fragment, that path would never be sent.
			add(fmt.Errorf("%s=%q: a FHIR base URL has no fragment (#…): remove it", v.name, withoutPassword(v.value)))
		case u.RawQuery != "" || u.ForceQuery:
			// The operations' paths are appended to the base: after a query they would become part of it.
			add(fmt.Errorf("%s=%q: a FHIR base URL has no query (?…): remove it; the harness appends each operation and its parameters", v.name, withoutPassword(v.value)))
		}
	}
	// Checked here, before an embedded reference server is started with it, so that a misspelt profile gets
	// the same message whatever the target. The harness's profiles are PROFILES.md's; what the reference
	// server can emulate is its own list.
	if profiles, err := features.LoadProfiles(); err == nil && c.Profile != "" && !slices.Contains(profiles.Names, c.Profile) {
		add(fmt.Errorf("PROFILE=%q: expected one of %s (features/PROFILES.md)", c.Profile, strings.Join(profiles.Names, ", ")))
	}
	if c.RefserverProfile != "" && !slices.Contains(refserver.Profiles, refserver.Profile(c.RefserverProfile)) {
		add(fmt.Errorf("REFSERVER_PROFILE=%q: expected one of %v", c.RefserverProfile, refserver.Profiles))
	}
	add(validateExportTypes(c.ExportTypes))
	add(validateExportKickoff(c.ExportKickoff, c.Profile))
	for _, f := range c.Features {
		if _, ok := featureTags[f]; !ok {
			add(fmt.Errorf("FEATURES: %q is not a feature; expected export, report or both (export,report)", f))
		}
	}
	add(validateTags(c.Tags))
	if strings.Contains(c.ReportsDir, ",") {
		// godog takes cucumber.json's path from its comma-separated list of formats: it would write to the
		// part before the comma, a file outside REPORTS_DIR, and fail on the rest.
		add(fmt.Errorf("REPORTS_DIR=%q: expected a directory whose path holds no comma (godog's list of report formats is comma-separated)", c.ReportsDir))
	}
	if c.Format != "" && !slices.Contains(Formats, c.Format) {
		add(fmt.Errorf("FORMAT=%q: expected one of %s", c.Format, strings.Join(Formats, ", ")))
	}
	if c.MaxJobs < 0 {
		add(fmt.Errorf("MAX_JOBS=%d: expected a positive number of jobs", c.MaxJobs))
	}
	if c.ParallelDownloads < 0 {
		add(fmt.Errorf("PARALLEL_DOWNLOADS=%d: expected a positive number of connections", c.ParallelDownloads))
	}
	for _, o := range c.TrustedOrigins {
		if u, err := url.Parse(o); err != nil || steps.Origin(o) == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			add(fmt.Errorf("TRUSTED_ORIGINS: %q: expected an origin such as https://files.example or http://127.0.0.1:8081 (scheme, host, optional port; no path)", withoutPassword(o)))
		}
	}
	if c.MaxFiles < 0 {
		add(fmt.Errorf("MAX_FILES=%d: expected a positive number of files", c.MaxFiles))
	}
	if c.MaxBodyBytes < 0 {
		add(fmt.Errorf("MAX_BODY=%d: expected a positive number of bytes", c.MaxBodyBytes))
	}
	errs = append(errs, c.validateAuth()...)
	add(c.ContainerConfig.validate(c.anyTarget()))
	add(c.RefserverExport.validate(c.anyTarget() != "" || c.ContainerConfig.enabled()))
	if c.anyTarget() == "" && !c.ContainerConfig.enabled() && c.authMode() != "none" {
		add(errors.New("TOKEN, TOKEN_B or CLIENT_ID given without TARGET: the embedded reference server uses its own demo users; set TARGET to test another server"))
	}
	if c.Gate && c.anyTarget() == "" && !c.ContainerConfig.enabled() {
		// A pipeline whose TARGET variable did not reach the job (GitLab's protected variables on an unprotected
		// tag, a fork's pull request) would otherwise gate its release on the harness's own reference server, pass,
		// and release a server nobody tested.
		add(errors.New("GATE=1 without TARGET or IMAGE: the release gate vouches for the server under test, and none is named (is the pipeline's TARGET variable set for this job?); the embedded reference server is the harness's own: run it without GATE"))
	}
	return errors.Join(errs...)
}

// anyTarget is the URL the configuration names, if any.
func (c Config) anyTarget() string { return cmp.Or(c.Target, c.ExportTarget, c.ReportTarget) }

// secretNames are the variables whose values are secrets: a target file names them only by the
// environment variable that holds them, and each may be read from a file instead (NAME_FILE).
var secretNames = []string{"TOKEN", "TOKEN_B", "CLIENT_SECRET", "CLIENT_SECRET_B"}

func isSecret(name string) bool { return slices.Contains(secretNames, name) }

// RefserverExport is what the embedded reference server exports.
type RefserverExport struct {
	Synthetic    refserver.Synthetic // REFSERVER_SYNTHETIC_BYTES, _RESOURCES, _TYPES, _SEED
	FilesPerType int                 // REFSERVER_FILES_PER_TYPE; 0: one file per type
	DataDir      string              // REFSERVER_DATA_DIR
}

func (x RefserverExport) set() bool {
	return x.Synthetic.Bytes+x.Synthetic.Resources > 0 || len(x.Synthetic.Types) > 0 || x.FilesPerType > 0 || x.DataDir != ""
}

// validate checks the embedded server's export makes sense, and is not given beside another target: it
// configures only the embedded reference server.
func (x RefserverExport) validate(otherTarget bool) error {
	var errs []error
	if otherTarget && x.set() {
		errs = append(errs, errors.New("REFSERVER_SYNTHETIC_*, REFSERVER_FILES_PER_TYPE or REFSERVER_DATA_DIR given with another target: they configure only the embedded reference server (a reference server started by hand takes -synthetic-bytes, -files-per-type, -data)"))
	}
	if x.DataDir != "" && x.Synthetic.Bytes+x.Synthetic.Resources > 0 {
		errs = append(errs, errors.New("REFSERVER_DATA_DIR and REFSERVER_SYNTHETIC_BYTES or _RESOURCES both given: choose one"))
	}
	if x.DataDir != "" {
		if st, err := os.Stat(x.DataDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("REFSERVER_DATA_DIR=%q: not a directory", x.DataDir))
		}
	}
	return errors.Join(errs...)
}

// refserverExport reads REFSERVER_SYNTHETIC_*, REFSERVER_FILES_PER_TYPE and REFSERVER_DATA_DIR.
func (e *env) refserverExport() RefserverExport {
	synth, err := refserver.SyntheticFromStrings(e.str("REFSERVER_SYNTHETIC_BYTES"), e.str("REFSERVER_SYNTHETIC_RESOURCES"),
		e.str("REFSERVER_SYNTHETIC_TYPES"), e.str("REFSERVER_SYNTHETIC_SEED"))
	if err != nil {
		e.errs = append(e.errs, err)
	}
	x := RefserverExport{Synthetic: synth, DataDir: e.str("REFSERVER_DATA_DIR")}
	if v := e.str("REFSERVER_FILES_PER_TYPE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			e.failf("REFSERVER_FILES_PER_TYPE=%q: expected a positive number", v)
		}
		x.FilesPerType = n
	}
	return x
}

// validateExportKickoff refuses an EXPORT_KICKOFF that is none of the HL7 IG's kick-off endpoints, and one
// other than the system level's outside PROFILE=bulkdata: FUT's $export is system-level (FUT-OD-EXPORT), so
// fut and hapi-8.0 judge that one; the IG ("Bulk Data Kick-off Request"; its CapabilityStatement bulk-data
// gives the system, Patient and Group $export each the expectation SHOULD) lets a server serve only the
// Patient or Group level, as CMS's BCDA does.
func validateExportKickoff(kickoff, profile string) error {
	if kickoff == "" {
		return nil
	}
	if err := steps.ValidExportKickoff(kickoff); err != nil {
		return fmt.Errorf("EXPORT_KICKOFF=%w", err)
	}
	if kickoff != steps.DefaultExportKickoff && cmp.Or(profile, steps.DefaultProfile) != "bulkdata" {
		return fmt.Errorf("EXPORT_KICKOFF=%q: only PROFILE=bulkdata kicks off elsewhere than the system-level $export (FUT's $export is system-level; the HL7 IG makes each level a SHOULD)", kickoff)
	}
	return nil
}

// validateExportTypes refuses an EXPORT_TYPES entry that is no FHIR R4 resource type: sent as _type, a
// misspelt type gets the kick-off refused (or, under lenient handling, an empty export), and the server
// charged with EXP-KICKOFF for the user's typo.
func validateExportTypes(list string) error {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	types := r4ResourceTypes()
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if slices.Contains(types, t) {
			continue
		}
		msg := fmt.Sprintf("EXPORT_TYPES=%q: %q is not a FHIR R4 resource type", list, t)
		if near := nearest(t, types); near != "" {
			msg += "; did you mean " + near + "?"
		}
		return errors.New(msg + " (a comma list such as Patient,Observation)")
	}
	return nil
}

// r4ResourceTypes are the concrete resource types of FHIR R4, as golang-fhir-models lists them (its
// ResourceType, http://hl7.org/fhir/ValueSet/resource-types), without the abstract Resource and DomainResource.
func r4ResourceTypes() []string {
	var out []string
	for rt := fhir.ResourceType(0); rt.Code() != "<unknown>"; rt++ {
		if code := rt.Code(); code != "Resource" && code != "DomainResource" {
			out = append(out, code)
		}
	}
	return out
}

// withoutPassword is a URL that may not parse, for a message that quotes it: what stands between its scheme's
// "://" (or its start) and its last @ after the first colon there is a password, [redacted]. A URL that does
// not parse has no password the run's redaction knows (urlPasswords), and a typo such as https//user:pw@host
// or a / in the password is what makes it not parse.
func withoutPassword(raw string) string {
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndex(raw, "@")
	if at < start {
		return raw
	}
	colon := strings.IndexByte(raw[start:at], ':')
	if colon < 0 {
		return raw
	}
	return raw[:start+colon+1] + check.Redacted + raw[at:]
}
