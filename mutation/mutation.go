// Package mutation measures the harness's verdicts: it runs the whole suite against the conformant reference
// server and against the reference server with each injected fault (refserver.Faults), and builds a kill
// matrix. A fault is killed when a scenario tagged with the fault's requirement fails and names that
// requirement; the conformant server must pass with no failure, warning or skip. Each fault runs in its own
// profile (refserver.Fault.Profile: server and harness alike), where its requirement has the severity of that
// profile; the conformant server runs in every profile a fault runs in. SHOULD requirements only warn by
// default, so the runs of their faults are STRICT (a warning is then a failure), as the matrix says.
package mutation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/harness"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// Verdict classifies one fault's run.
type Verdict string

const (
	Killed        Verdict = "killed"          // a scenario tagged with the fault's requirement failed, naming it
	KilledByOther Verdict = "killed-by-other" // the run failed, but not in a scenario of the fault's requirement
	Survived      Verdict = "survived"        // every scenario passed: the harness missed the deviation
	Pass          Verdict = "pass"            // the conformant server passed
	Broken        Verdict = "broken"          // the run could not happen, or the conformant server failed
)

// Options configures a mutation run. Zero values take the defaults.
type Options struct {
	Faults         []refserver.Fault // nil: every fault of refserver.Faults()
	Workers        int               // runs in parallel; default max(8, 4*GOMAXPROCS): the runs mostly wait on the jobs
	ExportDuration time.Duration     // refserver export job duration; default 1s
	ReportDuration time.Duration     // refserver report job duration; default 1s
	MaxWait        time.Duration     // MAX_WAIT of each run; default 15s
	RequestTimeout time.Duration     // REQUEST_TIMEOUT of each run; default 10s
	WorkDir        string            // each run's reports go in a directory below; default a temporary one, removed
	Progress       func(Outcome)     // called after each run; nil: nothing
}

// FailedScenario is a scenario that failed in a run.
type FailedScenario struct {
	Name         string   `json:"name"`
	Tags         []string `json:"tags"`                   // requirement tags of the scenario
	Step         string   `json:"step"`                   // the failed step
	Requirements []string `json:"requirements,omitempty"` // requirements the failure names
	Message      string   `json:"message"`                // first line of the failure
}

// Outcome is one run: the conformant server (Fault "") or one fault.
type Outcome struct {
	Fault       string           `json:"fault"`
	Description string           `json:"description"`
	Profile     string           `json:"profile"`
	Requirement string           `json:"expected_requirement,omitempty"`
	Severity    string           `json:"severity,omitempty"`
	Strict      bool             `json:"strict"`
	Scenarios   int              `json:"scenarios"`
	Failed      []FailedScenario `json:"failed_scenarios"`
	Warnings    int              `json:"warnings"`
	Skips       int              `json:"skips"`
	Verdict     Verdict          `json:"verdict"`
	Seconds     float64          `json:"seconds"`
	Error       string           `json:"error,omitempty"`
	Output      string           `json:"-"` // the console output of the run, for a verdict that needs reading
}

// Matrix is the kill matrix.
type Matrix struct {
	Conformant Outcome `json:"conformant"` // in the default profile, fut
	// ConformantElsewhere: the conformant server in each other profile a fault runs in.
	ConformantElsewhere []Outcome `json:"conformant_other_profiles,omitempty"`
	Faults              []Outcome `json:"faults"`
	Killed              int       `json:"killed"`
	Total               int       `json:"total"`
	// Uncovered lists requirements that no fault breaks.
	Uncovered []string `json:"uncovered_requirements"`
	Seconds   float64  `json:"seconds"`
}

// Run runs the conformant server and every fault, in parallel, and returns the matrix.
func Run(ctx context.Context, opts Options) (Matrix, error) {
	opts = opts.withDefaults()
	reqs, err := features.Requirements()
	if err != nil {
		return Matrix{}, err
	}
	profiles, err := features.LoadProfiles()
	if err != nil {
		return Matrix{}, err
	}
	work := opts.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "mutation-"); err != nil {
			return Matrix{}, fmt.Errorf("create work directory: %w", err)
		}
		defer os.RemoveAll(work)
	}
	conformant := []refserver.Fault{{Description: "the conformant reference server", Profile: refserver.ProfileFUT}}
	for _, f := range opts.Faults {
		r, ok := reqs[f.Requirement]
		if !ok {
			return Matrix{}, fmt.Errorf("fault %s names requirement %s, which is not in features/REQUIREMENTS.md", f.Name, f.Requirement)
		}
		p := profileOf(f)
		if sev := profiles.SeverityOf(r, string(p)); sev != features.Must && sev != features.Should {
			return Matrix{}, fmt.Errorf("fault %s runs in profile %s, where its requirement %s is %s: no run can kill it (give it a profile where it is MUST or SHOULD)", f.Name, p, f.Requirement, sev)
		}
		if !slices.ContainsFunc(conformant, func(c refserver.Fault) bool { return c.Profile == p }) {
			conformant = append(conformant, refserver.Fault{Description: "the conformant reference server", Profile: p})
		}
	}

	start := time.Now()
	jobs := append(conformant, opts.Faults...)
	outcomes := make([]Outcome, len(jobs))
	sem := make(chan struct{}, opts.Workers)
	var wg sync.WaitGroup
	for i, f := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				outcomes[i] = Outcome{Fault: f.Name, Description: f.Description, Profile: string(profileOf(f)), Requirement: f.Requirement, Verdict: Broken, Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			dir := filepath.Join(work, fmt.Sprintf("%02d-%s", i, cmpOr(f.Name, "conformant-"+string(profileOf(f)))))
			outcomes[i] = runOne(ctx, f, reqs, profiles, opts, dir)
			if opts.Progress != nil {
				opts.Progress(outcomes[i])
			}
		}()
	}
	wg.Wait()

	n := len(conformant)
	m := Matrix{Conformant: outcomes[0], ConformantElsewhere: outcomes[1:n], Faults: outcomes[n:], Total: len(outcomes) - n, Seconds: time.Since(start).Seconds()}
	covered := map[string]bool{}
	for _, o := range m.Faults {
		covered[o.Requirement] = true
		if o.Verdict == Killed {
			m.Killed++
		}
	}
	for id := range reqs {
		if !covered[id] {
			m.Uncovered = append(m.Uncovered, id)
		}
	}
	sort.Strings(m.Uncovered)
	return m, ctx.Err()
}

func (o Options) withDefaults() Options {
	if o.Faults == nil {
		o.Faults = refserver.Faults()
	}
	if o.Workers <= 0 {
		o.Workers = max(8, 4*runtime.GOMAXPROCS(0))
	}
	if o.ExportDuration <= 0 {
		o.ExportDuration = time.Second
	}
	if o.ReportDuration <= 0 {
		o.ReportDuration = time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 15 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	return o
}

// profileOf is the profile fault f runs in: its own, else fut.
func profileOf(f refserver.Fault) refserver.Profile { return cmpOr(f.Profile, refserver.ProfileFUT) }

// runOne runs the whole suite against the reference server with fault f ("" : none), server and harness in
// f's profile.
func runOne(ctx context.Context, f refserver.Fault, reqs map[string]features.Requirement, profiles features.Profiles, opts Options, dir string) (o Outcome) {
	profile := profileOf(f)
	o = Outcome{Fault: f.Name, Description: f.Description, Profile: string(profile), Requirement: f.Requirement}
	if r, ok := reqs[f.Requirement]; ok {
		o.Severity = string(profiles.SeverityOf(r, string(profile)))
	}
	// A SHOULD deviation only warns unless STRICT; the conformant server must pass even STRICT.
	o.Strict = f.Name == "" || o.Severity == string(features.Should)
	start := time.Now()
	defer func() { o.Seconds = time.Since(start).Seconds() }()
	var faults []string
	if f.Name != "" {
		faults = []string{f.Name}
	}
	srv, err := refserver.NewServer(refserver.Config{Faults: faults, Profile: profile, ExportDuration: opts.ExportDuration, ReportDuration: opts.ReportDuration})
	if err != nil {
		o.Verdict, o.Error = Broken, err.Error()
		return o
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	var out bytes.Buffer
	res, err := harness.Run(ctx, harness.Config{
		Target:         ts.URL + "/fhir",
		Token:          refserver.DemoTokenA,
		TokenB:         refserver.DemoTokenB,
		Profile:        string(profile),
		Strict:         o.Strict,
		MaxWait:        opts.MaxWait,
		RequestTimeout: opts.RequestTimeout,
		ReportsDir:     dir,
		Out:            &out,
		Log:            &out,
	})
	o.Output, o.Scenarios = out.String(), res.Scenarios
	if res.Findings != nil {
		o.Warnings, o.Skips = len(res.Findings.Warnings()), len(res.Findings.Skips())
	}
	if err != nil {
		o.Verdict, o.Error = Broken, err.Error()
		return o
	}
	o.Failed = failedScenarios(res)
	o.Verdict = classify(o, res.Passed)
	return o
}

func classify(o Outcome, passed bool) Verdict {
	if o.Fault == "" {
		if passed && len(o.Failed) == 0 && o.Warnings == 0 && o.Skips == 0 {
			return Pass
		}
		return Broken
	}
	if passed && len(o.Failed) == 0 {
		return Survived
	}
	for _, s := range o.Failed {
		if slices.Contains(s.Tags, o.Requirement) && slices.Contains(s.Requirements, o.Requirement) {
			return Killed
		}
	}
	return KilledByOther
}

// failedScenarios reads the run's failed scenarios from its result, as data.
func failedScenarios(res harness.Result) []FailedScenario {
	var failed []FailedScenario
	for _, r := range res.Results {
		if r.Status != harness.StatusFailed || r.Failure == nil {
			continue
		}
		failed = append(failed, FailedScenario{Name: r.Name, Tags: r.Requirements, Step: r.Failure.Step,
			Requirements: r.Failure.Requirements, Message: r.Failure.Summary})
	}
	return failed
}

// Check says what is wrong with the matrix: a conformant server that did not pass, a fault not killed by its
// own requirement's scenario, a requirement without a fault. Nil means the verdicts are all trustworthy.
func (m Matrix) Check() error {
	var errs []error
	for _, c := range append([]Outcome{m.Conformant}, m.ConformantElsewhere...) {
		if c.Verdict != Pass {
			errs = append(errs, fmt.Errorf("the conformant server did not pass cleanly in profile %s: %d failed scenarios, %d warnings, %d skips %s",
				c.Profile, len(c.Failed), c.Warnings, c.Skips, c.Error))
		}
	}
	for _, o := range m.Faults {
		if o.Verdict != Killed {
			errs = append(errs, fmt.Errorf("fault %s (%s): %s%s", o.Fault, o.Requirement, o.Verdict, errSuffix(o.Error)))
		}
	}
	for _, id := range m.Uncovered {
		errs = append(errs, fmt.Errorf("requirement %s: no fault breaks it (add one to refserver/faults.go)", id))
	}
	return errors.Join(errs...)
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func cmpOr[T ~string](a, b T) T {
	if a != "" {
		return a
	}
	return b
}
