package harness

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// Result is the outcome of a run, as data: every report (console, JUnit, HTML), the release gate and the
// kill matrix (package mutation) read it, and nothing parses a report back.
type Result struct {
	Passed bool // every selected scenario passed (skips, not-applicable and warnings allowed), and the gate, if on, passed
	// NothingChecked: every selected scenario was skipped or not applicable; such a run is not Passed, and
	// the conformance command exits 2 (NothingCheckedReasons says why).
	NothingChecked bool
	Target         string // the target's name as the reports show it
	Profile        string
	Strict         bool // STRICT: SHOULD deviations failed
	// Scenarios is the number of scenarios run, len(Results).
	Scenarios int
	Results   []ScenarioResult // every scenario run, in the order they ran
	Failures  []Failure        // the failed scenarios' failures, in the order they ran
	// Requirements is the verdict per requirement of features/REQUIREMENTS.md, sorted by ID.
	Requirements []RequirementResult
	Gate         *GateResult // the release gate's verdict when GATE=1; nil otherwise
	Findings     *steps.Findings
	Reports      []string // files written
	Started      time.Time
	Duration     time.Duration
	// NotSelected names the features not run (left out by FEATURES, or not applicable in the profile), each
	// with why, so that the summary says plainly what was not run.
	NotSelected []string
	// Preflight is what the target's CapabilityStatements declare, and where they disagree with the run.
	Preflight *Preflight
	// TargetExited says how the container under test ended when it died during the run (its exit code and
	// the end of its output); "" when it ran to the end, and for other targets.
	TargetExited string
}

// Status is a scenario's outcome.
type Status string

const (
	StatusPassed  Status = "passed"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped" // could not be checked (no TOKEN_B, a job finished before its first poll): Reason says why
	// StatusNotApplicable: the requirements it checks do not apply in the run's profile (severity n/a in
	// features/PROFILES.md, or a step's steps.ErrNotApplicable). Never failed, never shown as passed.
	StatusNotApplicable Status = "not applicable"
)

// ScenarioResult is one scenario's outcome.
type ScenarioResult struct {
	Feature      string   // the feature's name, e.g. "$export-poll-status: polling a system-level FHIR Bulk Data export"
	File         string   // the feature file, e.g. "export_poll_status.feature"
	Name         string   // the scenario's name (an outline's placeholders filled in)
	Tags         []string // every tag, the feature's included, without '@'
	Requirements []string // the requirements it checks (its requirement tags), primary first
	Status       Status
	Reason       string // why it was skipped or not applicable; empty otherwise
	Duration     time.Duration
	Failure      *Failure // set when Status is StatusFailed
}

// Failure is one failed scenario and the requirements its failure names.
type Failure struct {
	Scenario string
	// Requirement is the requirement the verdict is charged to: the violation's own, or the scenario's
	// primary requirement when the failure is not a deviation (e.g. a timeout). Requirements[0] when set.
	Requirement  string
	Requirements []string // every requirement the failure names
	Step         string   // the failed step's text
	Summary      string   // the failure in one line
	Message      string   // the whole failure: the requirement's clause, the HTTP exchanges, a curl reproducer
	// NonConformant: the server deviated from a requirement (check.ErrNonConformant); false: the check could
	// not be completed (a timeout, a transport error), reported as a JUnit error rather than a failure.
	NonConformant bool
	// Transport: the scenario ended on a transport error (check.ErrTransport: no complete HTTP response). It is
	// an error of the run, charged to no requirement; a run whose only failures are these exits 2, not 1.
	Transport bool
	// CredentialExpired: the scenario ended on a 401 to a token that had expired by its own exp claim
	// (check.ErrCredentialExpired); an error of the run as a transport error is.
	CredentialExpired bool
	// MaxBody: the scenario ended on an answer larger than MAX_BODY (check.ErrMaxBody), the run's own bound,
	// which no source sets; an error of the run as a transport error is.
	MaxBody bool
	// TokenWithheld: the scenario ended on a refusal (401, 403) of a request the harness sent without
	// the token, its origin not trusted (check.ErrTokenWithheld); an error of the run as a transport error is.
	TokenWithheld bool
}

// RunError says that the failure is the run's, not the server's: no requirement is charged with it.
func (f Failure) RunError() bool { return f.RunErrorCause() != "" }

// RunErrorCause names the error of the run the failure is, for the reports ("a transport error"); "" when it
// is no error of the run.
func (f Failure) RunErrorCause() string {
	switch {
	case f.Transport:
		return "a transport error"
	case f.CredentialExpired:
		return "an expired token"
	case f.MaxBody:
		return "an answer larger than MAX_BODY"
	case f.TokenWithheld:
		return "a refusal of a request sent without its token to an untrusted origin"
	}
	return ""
}

// Verdict is a requirement's result in a run.
type Verdict string

const (
	VerdictPass          Verdict = "pass"
	VerdictFail          Verdict = "fail"           // a failure names it
	VerdictWarning       Verdict = "warning"        // a SHOULD/MAY deviation, or a known deviation the profile accepts
	VerdictBlocked       Verdict = "blocked"        // its scenarios failed on another requirement before reaching it
	VerdictError         Verdict = "error"          // its scenarios ended on a transport error: not checked
	VerdictSkipped       Verdict = "skipped"        // its scenarios ran but were skipped
	VerdictNotApplicable Verdict = "not-applicable" // it does not apply in the run's profile
	VerdictNotRun        Verdict = "not-run"        // none of its scenarios was selected
)

// RequirementResult is one requirement's verdict in the run.
type RequirementResult struct {
	ID       string
	Severity features.Severity // in the run's profile
	Source   string
	Clause   string
	Verdict  Verdict
	// Reason says why a requirement was not checked (blocked, skipped, not applicable, not run); empty otherwise.
	Reason    string
	Scenarios []string // the scenarios tagged with it that ran, as "name (status)"
	// Selected: a feature FEATURES selected holds a scenario of it (the release gate asks only for these).
	Selected bool
	// NotChecked says what its scenarios left unchecked (a bound of the run such as MAX_FILES, an untrusted
	// origin): its verdict stands on the rest, but the release gate does not count it as checked.
	NotChecked []string
}

// Checked says whether the run established that the requirement holds: it passed, or passed with a warning
// or a known deviation the profile accepts.
func (r RequirementResult) Checked() bool {
	return r.Verdict == VerdictPass || r.Verdict == VerdictWarning
}

// GateResult is the release gate (GATE=1): every MUST requirement of the selected features checked and passed.
type GateResult struct {
	Passed    bool
	Unchecked []RequirementResult // the MUST requirements of the selected features that were not checked and passed
}

// requirementResults is the verdict per requirement: a failure naming it fails it; else a warning or accepted
// deviation marks it; else it passed if a scenario tagged with it passed; blocked if its scenarios failed on
// another requirement before reaching it; not applicable or skipped if they all were; not run otherwise.
func requirementResults(res Result, reqs map[string]features.Requirement, profiles features.Profiles, selected map[string]bool) []RequirementResult {
	warned := map[string]bool{}
	for _, f := range append(res.Findings.Warnings(), res.Findings.KnownDeviations()...) {
		warned[f.Requirement] = true
	}
	notChecked := map[string][]string{}
	for _, f := range res.Findings.NotChecked() {
		notChecked[f.Requirement] = appendNew(notChecked[f.Requirement], f.Message)
	}
	failed := map[string]bool{}
	for _, f := range res.Failures {
		for _, id := range f.Requirements {
			failed[id] = true
		}
	}
	ids := make([]string, 0, len(reqs))
	for id := range reqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]RequirementResult, 0, len(ids))
	for _, id := range ids {
		req := reqs[id]
		r := RequirementResult{ID: id, Severity: profiles.SeverityOf(req, res.Profile), Source: req.Source, Clause: req.Clause, Selected: selected[id], NotChecked: notChecked[id]}
		count := map[Status]int{}
		errored := 0
		var reasons []string
		for _, s := range res.Results {
			if !slices.Contains(s.Requirements, id) {
				continue
			}
			r.Scenarios = append(r.Scenarios, s.Name+" ("+string(s.Status)+")")
			count[s.Status]++
			switch {
			case s.Reason != "":
				reasons = appendNew(reasons, s.Reason)
			case s.Status == StatusFailed && s.Failure != nil && s.Failure.RunError():
				errored++
				reasons = appendNew(reasons, fmt.Sprintf("%q ended on %s: %s", s.Name, s.Failure.RunErrorCause(), s.Failure.Summary))
			case s.Status == StatusFailed && s.Failure != nil:
				reasons = appendNew(reasons, fmt.Sprintf("%q failed on %s first", s.Name, s.Failure.Requirement))
			}
		}
		switch {
		case failed[id]:
			r.Verdict = VerdictFail
		case warned[id]:
			r.Verdict = VerdictWarning
		case count[StatusPassed] > 0:
			r.Verdict = VerdictPass
		case count[StatusFailed] > 0 && count[StatusFailed] == errored:
			r.Verdict = VerdictError
		case count[StatusFailed] > 0:
			r.Verdict = VerdictBlocked
		case count[StatusSkipped] > 0:
			r.Verdict = VerdictSkipped
		case count[StatusNotApplicable] > 0 || r.Severity == features.NotApplicable:
			r.Verdict = VerdictNotApplicable
		default:
			r.Verdict = VerdictNotRun
			reasons = []string{"no scenario of it ran (TAGS or GODOG_STOP_ON_FAILURE left it out)"}
			if !r.Selected {
				reasons = []string{"its feature was left out by FEATURES"}
			}
		}
		if !r.Checked() && r.Verdict != VerdictFail {
			r.Reason = strings.Join(reasons, "; ")
		}
		// A requirement that passed in one scenario and was skipped in another (RJS-LISTED's $schedule example
		// refused by the deployment, one of RJS-STRUCTURE's two) was checked in part: the gate vouches only for
		// what was read, as for the files a bound left out.
		if r.Verdict == VerdictPass && count[StatusSkipped] > 0 {
			for _, s := range res.Results {
				if s.Status == StatusSkipped && slices.Contains(s.Requirements, id) {
					r.NotChecked = appendNew(r.NotChecked, fmt.Sprintf("scenario %q skipped: %s", s.Name, s.Reason))
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// gate holds the run to the release gate: every MUST requirement of the selected features checked and passed,
// wholly: one that passed on the files a bound left it (MAX_FILES, DOWNLOAD_WAIT) or without those of an
// untrusted origin was checked in part, and a gate that passed it would vouch for files nobody read.
func gate(reqs []RequirementResult) *GateResult {
	g := &GateResult{Passed: true}
	for _, r := range reqs {
		if !r.Selected || r.Severity != features.Must {
			continue
		}
		switch {
		case !r.Checked():
			g.Unchecked = append(g.Unchecked, r)
		case len(r.NotChecked) > 0:
			r.Reason = "partly checked: " + strings.Join(r.NotChecked, "; ")
			g.Unchecked = append(g.Unchecked, r)
		}
	}
	g.Passed = len(g.Unchecked) == 0
	return g
}

// selectedRequirements are the requirements with a scenario in a feature FEATURES selects (nil: every feature).
func selectedRequirements(scenarios []features.Scenario, selectedFeatures []string) map[string]bool {
	out := map[string]bool{}
	for _, s := range scenarios {
		if len(selectedFeatures) == 0 || slices.ContainsFunc(selectedFeatures, func(f string) bool { return slices.Contains(s.Tags, f) }) {
			for _, id := range s.Requirements {
				out[id] = true
			}
		}
	}
	return out
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// OnlyRunErrors says that the run failed through errors of the run alone: every failed scenario ended on a
// transport error (no complete HTTP response), an expired token, an answer over MAX_BODY or a refusal of a
// request sent without the token to an untrusted origin, so no requirement was found broken and the verdict
// is "could not run to the end", not "non-conformant".
func (r Result) OnlyRunErrors() bool {
	if len(r.Failures) == 0 {
		return false
	}
	for _, f := range r.Failures {
		if !f.RunError() {
			return false
		}
	}
	return true
}
