package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// Result is the outcome of a run.
type Result struct {
	Passed    bool // every selected scenario passed (skips and warnings allowed)
	Scenarios int  // scenarios run
	Target    string
	Profile   string
	Findings  *steps.Findings
	Reports   []string         // files written
	Failures  []Failure        // the failed scenarios, in the order they ran
	Results   []ScenarioResult // every scenario run, in the order they ran
	Started   time.Time
	Duration  time.Duration
	// NotSelected names the features FEATURES left out, so that the summary says plainly what was not run.
	NotSelected []string
	// Preflight is what the target's CapabilityStatements declare, and where they disagree with the run.
	Preflight *Preflight
}

// ScenarioResult is one scenario's outcome, for the HTML report.
type ScenarioResult struct {
	Feature      string // the feature file
	Name         string
	Requirements []string // its requirement tags
	Status       string   // passed, failed or skipped
	Failure      *Failure
}

// Failure is one failed scenario and the requirement its failure names (the violation's own, or the
// scenario's primary tag when the failure is not a deviation, e.g. a timeout).
type Failure struct {
	Scenario    string
	Requirement string
	Message     string
}

// ErrNoScenario is returned when the tag expression selects nothing: a run that checks nothing must not pass.
var ErrNoScenario = errors.New("no scenario selected")

// Run runs the features against the configured target and writes the reports. The error is for a run that
// could not happen (bad configuration, no reports directory, nothing selected); a run whose scenarios fail
// returns Passed false and no error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.ReportsDir == "" {
		cfg.ReportsDir = "reports"
	}
	target, stop, err := resolveTarget(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	res := Result{Target: target.Name, Profile: target.Profile, Findings: target.Findings}

	initScenario, err := steps.Scenarios(target)
	if err != nil {
		return res, err
	}
	tags, leftOut, err := selection(cfg.Features, cfg.Tags)
	if err != nil {
		return res, err
	}
	res.NotSelected = leftOut
	// Before any report is opened: a run that cannot happen leaves the previous run's reports as they are.
	if res.Preflight, err = preflight(ctx, cfg, target); err != nil {
		return res, err
	}
	if err := os.MkdirAll(cfg.ReportsDir, 0o755); err != nil {
		return res, fmt.Errorf("create reports directory: %w", err)
	}
	junit, cucumber := filepath.Join(cfg.ReportsDir, "junit.xml"), filepath.Join(cfg.ReportsDir, "cucumber.json")
	html := filepath.Join(cfg.ReportsDir, "index.html")
	res.Reports = []string{junit, cucumber, html}
	res.Started = time.Now()

	fmt.Fprintf(cfg.Out, "FUT conformance: target %s, profile %s\n\n", target.Name, target.Profile)
	var failuresMu sync.Mutex
	suite := godog.TestSuite{
		Name: "fut-conformance",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
				r := ScenarioResult{Feature: s.Uri, Name: s.Name, Requirements: steps.RequirementTags(s), Status: "passed"}
				switch {
				case steps.ScenarioSkipped(ctx) || errors.Is(err, godog.ErrSkip):
					r.Status = "skipped"
				case err != nil:
					r.Status = "failed"
					r.Failure = &Failure{Scenario: s.Name, Requirement: steps.FailedRequirement(err, s), Message: err.Error()}
				}
				failuresMu.Lock()
				defer failuresMu.Unlock()
				res.Results = append(res.Results, r)
				if r.Failure != nil {
					res.Failures = append(res.Failures, *r.Failure)
				}
				return ctx, nil
			})
			initScenario(sc)
		},
		Options: &godog.Options{
			FS:             features.FS,
			Paths:          []string{"."},
			Format:         "pretty,junit:" + junit + ",cucumber:" + cucumber,
			Output:         cfg.Out,
			NoColors:       !isTerminal(cfg.Out),
			Strict:         true,
			Tags:           tags,
			Randomize:      cfg.Randomize,
			StopOnFailure:  cfg.StopOnFailure,
			DefaultContext: ctx,
		},
	}
	status := suite.Run()
	res.Scenarios = len(res.Results)
	res.Passed = status == 0 && res.Scenarios > 0 && ctx.Err() == nil
	res.Duration = time.Since(res.Started)
	if err := writeHTMLReport(html, res); err != nil {
		return res, err
	}
	printSummary(cfg.Out, res)
	switch {
	case status == 2:
		return res, fmt.Errorf("godog could not run the features (exit status 2): see the message above")
	case res.Scenarios == 0:
		res.Passed = false
		return res, fmt.Errorf("%w: the tag expression %q matches no scenario (godog syntax: '@export && ~@cross-user')", ErrNoScenario, cfg.Tags)
	case ctx.Err() != nil:
		res.Passed = false
		return res, fmt.Errorf("run interrupted: %w", ctx.Err())
	}
	return res, nil
}

func printSummary(out io.Writer, res Result) {
	warnings, skips, known := res.Findings.Warnings(), res.Findings.Skips(), res.Findings.KnownDeviations()
	if len(known) > 0 {
		fmt.Fprintf(out, "\nKnown deviations accepted by profile %s: %d\n", res.Profile, len(known))
		for _, k := range known {
			fmt.Fprintf(out, "  %s  %s\n", k.Requirement, k.Message)
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintf(out, "\nWarnings (SHOULD requirements not met; STRICT=1 makes them failures): %d\n", len(warnings))
		for _, w := range warnings {
			fmt.Fprintf(out, "  %s  %s\n      in %q\n", w.Requirement, w.Message, w.Scenario)
		}
	}
	if len(skips) > 0 {
		fmt.Fprintf(out, "\nSkipped, not checked: %d\n", len(skips))
		for _, s := range skips {
			fmt.Fprintf(out, "  %s  %q: %s\n", s.Requirement, s.Scenario, s.Message)
		}
	}
	printPreflight(out, res.Preflight)
	for _, f := range res.NotSelected {
		fmt.Fprintf(out, "\nNot run: %s, left out by FEATURES\n", f)
	}
	verdict := "FAIL"
	if res.Passed {
		verdict = "PASS"
	}
	fmt.Fprintf(out, "\n%s: %d scenarios against %s in profile %s, %d failed, %d warnings, %d skipped; reports: %s\n",
		verdict, res.Scenarios, res.Target, res.Profile, len(res.Failures), len(warnings), len(skips), strings.Join(res.Reports, ", "))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
