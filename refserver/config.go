package refserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Defaults applied by NewServer to zero-valued Config fields.
const (
	DefaultBasePath       = "/fhir"
	DefaultExportDuration = 2 * time.Second
	DefaultReportDuration = 1 * time.Second
	DefaultRetryAfter     = 1 * time.Second
	DefaultMaxBodyBytes   = 1 << 20
	DefaultRetention      = 2 * time.Hour // FUT keeps export files 2 hours
	DefaultMaxJobsPerUser = 1000
	// DefaultMaxJobRequestBytes bounds what a job keeps of its request, so that one user's report job status
	// stays bounded too (at most DefaultMaxJobsPerUser jobs of this size).
	DefaultMaxJobRequestBytes = 16 << 10
)

// User is a configured caller, identified by a bearer token.
type User struct {
	Token                string // bearer token
	ID                   string // user id (a UUID string), reported as reportJob userId and Binary.securityContext
	Name                 string // display name, e.g. "A"
	MayReadNonAnonymized bool   // may request reports with anonymization NONE
}

// Demo user tokens and ids returned by DefaultUsers.
const (
	DemoTokenA  = "demo-token-a"
	DemoUserIDA = "0aaca7cd-67c3-48dd-a8c4-0cceecb5d276"
	DemoTokenB  = "demo-token-b"
	DemoUserIDB = "5b0f3c1e-9d2a-4e7b-8c61-2f4a9e8d7c35"
)

// DefaultUsers returns the two demo users: A (token "demo-token-a", may read
// non-anonymized reports) and B (token "demo-token-b", may not).
func DefaultUsers() []User {
	return []User{
		{Token: DemoTokenA, ID: DemoUserIDA, Name: "A", MayReadNonAnonymized: true},
		{Token: DemoTokenB, ID: DemoUserIDB, Name: "B", MayReadNonAnonymized: false},
	}
}

// Config configures a Server. The zero value is usable.
type Config struct {
	BasePath           string        // FHIR base path, default "/fhir"
	PublicBaseURL      string        // optional absolute FHIR base URL used in Content-Location, manifest and references; empty: derived per request
	Users              []User        // nil: DefaultUsers()
	ExportDuration     time.Duration // an export job runs this long after kick-off before it completes; default 2s
	ReportDuration     time.Duration // a report job runs this long before DONE; default 1s
	RetryAfter         time.Duration // Retry-After on 202 in-progress answers, sent as whole delta-seconds (min 1); default 1s
	Clock              Clock         // nil: the real clock
	Data               fs.FS         // export dataset: one <ResourceType>.ndjson file per type; nil: the embedded default
	MaxBodyBytes       int64         // request body cap, default 1 MiB (413 + OperationOutcome beyond)
	Profile            Profile       // which source to emulate where sources disagree; default ProfileFUT
	Retention          time.Duration // finished export jobs, their files and report jobs are forgotten this long after they end; default 2h
	Clients            []Client      // OAuth2 clients of the token endpoint; nil: DefaultClients() whose user is configured
	MaxJobsPerUser     int           // export jobs, and report jobs, one user may hold (running or within retention); default 1000; 429 beyond
	MaxJobRequestBytes int64         // what one job keeps of its request (export: URL and _type list; report: parameters); default 16 KiB; 413 beyond
	Faults             []string      // fault injection (faults.go): names of deviations to inject; nil: the conformant server
	// Throttle answers 429 Too Many Requests + Retry-After to a poll that comes before the Retry-After the
	// server announced (on the kick-off and on each 202), as the HL7 Bulk Data IG allows.
	Throttle bool
	// PollPath, when set, is the polling location's path segment of an independent HL7 Bulk Data server:
	// [base]/<PollPath>/<id> (e.g. "bulkstatus"), and FUT's $export-poll-status is then not served.
	PollPath string
	// Synthetic is a generated export dataset instead of Data (synthetic.go); zero: off.
	Synthetic Synthetic
	// FilesPerType is how many output files a manifest has per resource type, at most (split at about equal
	// sizes); default 1.
	FilesPerType int
	// FailExports makes every export job fail when its time is up instead of completing, conformantly: its
	// polling location then answers the HL7 Bulk Data IG's error status as HAPI answers a FAILED job, 500 and
	// an OperationOutcome (writeFailedExport). Not a fault: the IG lets a server fail an export.
	FailExports bool
}

// normalize validates cfg and returns a copy with defaults applied.
func (cfg Config) normalize() (Config, error) {
	var errs []error

	bp := strings.TrimSpace(cfg.BasePath)
	switch {
	case bp == "":
		bp = DefaultBasePath
	case !strings.HasPrefix(bp, "/"):
		errs = append(errs, fmt.Errorf("base path %q: must start with /", cfg.BasePath))
	case strings.ContainsAny(bp, "{}?# \t\r\n") || strings.Contains(bp, "//"):
		errs = append(errs, fmt.Errorf("base path %q: must be a plain path without {, }, ?, #, whitespace or //", cfg.BasePath))
	}
	cfg.BasePath = strings.TrimRight(bp, "/") // "/" becomes "" (routes at the root)

	if cfg.PublicBaseURL != "" {
		u, err := url.Parse(cfg.PublicBaseURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("public base url: %w", err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("public base url %q: scheme must be http or https", cfg.PublicBaseURL))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("public base url %q: missing host", cfg.PublicBaseURL))
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			errs = append(errs, fmt.Errorf("public base url %q: must not carry a query, fragment or user info", cfg.PublicBaseURL))
		}
		cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	}

	if cfg.Users == nil {
		cfg.Users = DefaultUsers()
	}
	if len(cfg.Users) == 0 {
		errs = append(errs, errors.New("users: at least one user is required"))
	}
	seen := make(map[string]int, len(cfg.Users))
	for i, u := range cfg.Users {
		if u.Token == "" || strings.ContainsAny(u.Token, " \t\r\n,") {
			errs = append(errs, fmt.Errorf("user %d: token must be non-empty without whitespace or commas", i))
		}
		if u.ID == "" || strings.ContainsAny(u.ID, " \t\r\n") {
			errs = append(errs, fmt.Errorf("user %d: id must be non-empty without whitespace", i))
		}
		if j, dup := seen[u.Token]; dup && u.Token != "" {
			errs = append(errs, fmt.Errorf("user %d: duplicate token (same as user %d)", i, j))
		}
		seen[u.Token] = i
	}
	cfg.Users = append([]User(nil), cfg.Users...)

	dur := func(name string, d *time.Duration, def time.Duration) {
		switch {
		case *d < 0:
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", name, *d))
		case *d == 0:
			*d = def
		}
	}
	dur("export duration", &cfg.ExportDuration, DefaultExportDuration)
	dur("report duration", &cfg.ReportDuration, DefaultReportDuration)
	dur("retry after", &cfg.RetryAfter, DefaultRetryAfter)
	dur("retention", &cfg.Retention, DefaultRetention)
	errs = append(errs, cfg.normalizeClients()...)

	if err := orDefault(&cfg.MaxBodyBytes, DefaultMaxBodyBytes, "max body bytes"); err != nil {
		errs = append(errs, err)
	}

	if err := orDefault(&cfg.FilesPerType, 1, "files per type"); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Synthetic.validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Synthetic.enabled() && cfg.Data != nil {
		errs = append(errs, errors.New("data and synthetic data both given: choose one"))
	}

	cfg.PollPath = strings.Trim(strings.TrimSpace(cfg.PollPath), "/")
	if p := cfg.PollPath; p != "" && (!pollPathRE.MatchString(p) || p == "Binary" || p == "metadata") {
		errs = append(errs, fmt.Errorf("poll path %q: expected one path segment of letters, digits, '.', '_' or '-' (e.g. bulkstatus), not Binary or metadata", cfg.PollPath))
	}
	if err := orDefault(&cfg.MaxJobsPerUser, DefaultMaxJobsPerUser, "max jobs per user"); err != nil {
		errs = append(errs, err)
	}
	if err := orDefault(&cfg.MaxJobRequestBytes, DefaultMaxJobRequestBytes, "max job request bytes"); err != nil {
		errs = append(errs, err)
	}

	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	switch {
	case cfg.Profile == "":
		cfg.Profile = ProfileFUT
	case !cfg.Profile.valid():
		errs = append(errs, fmt.Errorf("profile %q: expected one of %v", cfg.Profile, Profiles))
	}
	return cfg, errors.Join(errs...)
}

// pollPathRE is what Config.PollPath must match: one plain path segment.
var pollPathRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// orDefault sets a zero *v to def and refuses a negative one, naming the setting.
func orDefault[T int | int64](v *T, def T, name string) error {
	switch {
	case *v < 0:
		return fmt.Errorf("%s: must not be negative, got %d", name, *v)
	case *v == 0:
		*v = def
	}
	return nil
}
