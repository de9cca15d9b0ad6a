package steps

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// Target is the server under test, as data: the steps only ever use paths relative to its two bases, or URLs
// the server itself handed out (Content-Location, manifest output, report Binary references).
type Target struct {
	Name string
	// ExportBaseURL and ReportBaseURL are the FHIR bases of the export and the reporting service, the same
	// URL unless they differ (FUT serves $export on its clinical services and the report operations on a
	// reporting service). Both are required: the harness resolves them, once (harness.resolveTarget).
	ExportBaseURL string
	ReportBaseURL string
	// Credentials maps the users of the features ("A", "B") to their bearer tokens: static ones
	// (oauth2.StaticTokenSource) or renewed ones (OAuth2 client credentials). A nil source sends no
	// Authorization. A missing "B" skips the cross-user scenarios, visibly.
	Credentials map[string]oauth2.TokenSource
	// Report is the report type started by the report scenarios, e.g. "patient-usage-stats".
	Report string
	// ExportTypes, when set, is sent as _type on every kick-off so that an export of a large server stays small.
	ExportTypes string
	// ExportKickoff is the kick-off endpoint, relative to ExportBaseURL: DefaultExportKickoff (the system-level
	// [base]/$export, FUT's), or in bulkdata Patient/$export or Group/<id>/$export (ValidExportKickoff).
	ExportKickoff  string
	MaxWait        time.Duration // per asynchronous job
	RequestTimeout time.Duration // per HTTP request, body included
	MaxBodyBytes   int64         // responses larger than this fail instead of filling memory (output files excepted)
	// ParallelDownloads bounds the output files downloaded at once, each judged on its own.
	ParallelDownloads int
	// FHIRLines is how many lines of each output file, from the first, are decoded strictly as their FHIR
	// R4 type, plus a random FHIRSample of the rest (zero: the defaults); check.AllLines decodes every line,
	// NoFHIRLines none. JSON and resourceType are judged on every line whatever the setting.
	FHIRLines  int
	FHIRSample float64
	// DownloadWait bounds the output downloads of one export together (default MaxWait); MaxFiles caps how
	// many of its output files are checked (default DefaultMaxFiles). What either leaves out is reported as
	// not checked.
	DownloadWait time.Duration
	MaxFiles     int
	Strict       bool // SHOULD deviations fail instead of warning
	// StopOnFailure: after the first failed scenario, every later one is skipped, each saying why. The harness
	// does this itself rather than with godog's option, whose cucumber formatter panics on the scenarios it
	// leaves unrun (godog v0.15.1, cucumber/godog#387).
	StopOnFailure bool
	Profile       string       // a column of features/PROFILES.md; default "fut"
	HTTPClient    *http.Client // nil: a plain client
	Log           io.Writer    // one line per poll while waiting on a job; nil discards
	LiveProgress  bool         // Log is a terminal: keep one line per job up to date instead
	Findings      *Findings    // warnings and skips of the run; nil: not collected
	// Profiles replaces features/PROFILES.md, e.g. to try a severity table; nil: the embedded table.
	Profiles *features.Profiles
	// MaxJobs bounds the export jobs the harness keeps in flight (kicked off, not yet completed, cancelled or
	// abandoned), for servers that limit the jobs of a user; default DefaultMaxJobs.
	MaxJobs int
	// Selected holds the step texts of each scenario the run selected. The jobs those scenarios wait on start
	// together before the first scenario (pool.go); without it, each starts when its scenario asks for it.
	Selected [][]string
	// RunContext is the run's context: jobs started ahead of their scenarios end with it. nil: never.
	RunContext context.Context
	// Clock is the time a token's expiry is judged by: when a request answered 401 was sent, against a static
	// token's exp claim (World.expiredCredential). The same clock as the token sources' renewal, so that a test
	// moves time forward instead of waiting for a token to expire. nil: time.Now.
	Clock func() time.Time

	pool *jobPool // set by Scenarios: the run's jobs
	// failed is set by Scenarios when a scenario fails: with StopOnFailure, the later ones are skipped.
	failed *atomic.Bool
	// TrustedOrigins are origins (see Origin) besides the two bases' that may receive the token: the token
	// endpoint's and TRUSTED_ORIGINS. A URL of any other origin is requested without it.
	TrustedOrigins []string
	// Redactor replaces the run's secrets in every message, transcript and attachment the steps produce;
	// nil redacts only the credential headers of transcripts.
	Redactor *check.Redactor
}

// Defaults used when a Target leaves a field zero.
const (
	DefaultReport         = "patient-usage-stats"
	DefaultMaxWait        = check.DefaultMaxWait
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxBodyBytes   = 64 << 20
	// DefaultParallelDownloads is the connections downloading output files at once.
	DefaultParallelDownloads = 8
	// DefaultFHIRLines, DefaultFHIRSample and TypeLines: strict FHIR decoding runs at about 1/100 of the
	// speed of a loopback download (README, "Each line as FHIR"), so by default one line in 1,000, at random,
	// is decoded strictly, and TypeLines lines of each type, the first the downloads reach, in whichever of
	// the type's files (downloadOutputFiles). A sample by rate alone decodes next to nothing of the small
	// exports test servers hold: ten lines, three types, three lines decoded. The type's budget decodes every
	// small export whole, however the server splits it into files, and costs at most TypeLines per type
	// however large the export, where first lines of every file would cost in proportion to the number of
	// files: one per file was a third of the strict decoding of an export of 1,000 files of 1 MB. Beyond the
	// budget, which lines it took depends on the order the downloads run in; how many does not.
	DefaultFHIRLines  = 0
	DefaultFHIRSample = 0.001
	TypeLines         = 1000
	// NoFHIRLines as Target.FHIRLines decodes no line strictly.
	NoFHIRLines     = -2
	DefaultMaxFiles = 50
	// DefaultExportKickoff is the system-level kick-off, [base]/$export: FUT's (FUT-OD-EXPORT), and the one
	// level of the HL7 IG's three that the harness kicks off unless told another (EXPORT_KICKOFF).
	DefaultExportKickoff = "$export"
)

// exportKickoffRE is a kick-off endpoint of the HL7 Bulk Data IG v2.0.0 ("Bulk Data Kick-off Request"): the
// system level ($export), all patients (Patient/$export) or a group (Group/[id]/$export, the id a FHIR R4 id).
var exportKickoffRE = regexp.MustCompile(`^(Patient/|Group/[A-Za-z0-9.-]{1,64}/)?\$export$`)

// ValidExportKickoff refuses a kick-off endpoint that is none of the IG's three, relative to the export base.
func ValidExportKickoff(kickoff string) error {
	if !exportKickoffRE.MatchString(kickoff) {
		return fmt.Errorf("%q: expected a kick-off endpoint relative to the FHIR base: $export, Patient/$export or Group/<id>/$export", kickoff)
	}
	return nil
}

// kickoffPath is the kick-off endpoint of the run, relative to the export base.
func (t Target) kickoffPath() string { return cmp.Or(t.ExportKickoff, DefaultExportKickoff) }

func (t Target) withDefaults() (Target, error) {
	if t.ExportBaseURL == "" || t.ReportBaseURL == "" {
		return t, fmt.Errorf("target %q: ExportBaseURL and ReportBaseURL are both required", t.Name)
	}
	t.ExportBaseURL, t.ReportBaseURL = strings.TrimRight(t.ExportBaseURL, "/"), strings.TrimRight(t.ReportBaseURL, "/")
	if t.Name == "" {
		t.Name = t.ExportBaseURL
	}
	if t.Profile == "" {
		t.Profile = DefaultProfile
	}
	if t.Report == "" {
		t.Report = DefaultReport
	}
	t.ExportKickoff = t.kickoffPath()
	if t.MaxWait <= 0 {
		t.MaxWait = DefaultMaxWait
	}
	if t.RequestTimeout <= 0 {
		t.RequestTimeout = DefaultRequestTimeout
	}
	if t.DownloadWait <= 0 {
		t.DownloadWait = t.MaxWait
	}
	if t.MaxFiles <= 0 {
		t.MaxFiles = DefaultMaxFiles
	}
	if t.MaxBodyBytes <= 0 {
		t.MaxBodyBytes = DefaultMaxBodyBytes
	}
	switch t.FHIRLines { // the sample goes with any number of first lines, as FHIR_LINES=N documents
	case NoFHIRLines:
		t.FHIRSample = 0
	case 0:
		t.FHIRLines = DefaultFHIRLines
		fallthrough
	default:
		t.FHIRSample = cmp.Or(t.FHIRSample, DefaultFHIRSample)
	}
	if t.ParallelDownloads <= 0 {
		t.ParallelDownloads = DefaultParallelDownloads
	}
	if t.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = IdleConnsFor(t.ParallelDownloads)
		t.HTTPClient = &http.Client{Transport: tr}
	}
	if t.Log == nil {
		t.Log = io.Discard
	}
	if t.MaxJobs <= 0 {
		t.MaxJobs = DefaultMaxJobs
	}
	if t.Credentials == nil {
		t.Credentials = map[string]oauth2.TokenSource{}
	}
	return t, nil
}

// now is the time by Clock.
func (t *Target) now() time.Time {
	if t.Clock == nil {
		return time.Now()
	}
	return t.Clock()
}

// StaticTokens is the Credentials of fixed bearer tokens; an empty token means no authentication.
func StaticTokens(tokens map[string]string) map[string]oauth2.TokenSource {
	out := make(map[string]oauth2.TokenSource, len(tokens))
	for user, token := range tokens {
		out[user] = nil
		if token != "" {
			// A JWT's exp is kept, so that a 401 after it is told from the server's refusal of a good token
			// (World.expiredCredential).
			exp, _ := check.TokenExpiry(token)
			out[user] = staticToken{oauth2.Token{AccessToken: token, Expiry: exp}}
		}
	}
	return out
}

// staticToken is a token of StaticTokens: never renewed, so that a 401 after its exp is the token's running
// out (World.expiredCredential). A renewed token's Expiry is when the harness renews it, and its 401 is the
// server's: it is told from a static one by this type.
type staticToken struct{ tok oauth2.Token }

func (s staticToken) Token() (*oauth2.Token, error) {
	tok := s.tok // a copy: a caller's change is not the next caller's token
	return &tok, nil
}

// IdleConnsFor is how many idle connections per host a client keeps for parallel downloads: one per download
// and two for the other requests of the run. Go's default (2) would close the others after each file and open
// them again, with a TLS handshake each, for every file of an export of thousands.
func IdleConnsFor(parallelDownloads int) int {
	return max(parallelDownloads, DefaultParallelDownloads) + 2
}
