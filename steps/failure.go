package steps

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// failureReport is a failed step's error with everything a vendor needs to act on it: the requirement, its
// severity and source clause, the HTTP exchanges of the step and a curl command for the last request.
type failureReport struct {
	err         error
	requirement *features.Requirement // its Severity is the one of the run's profile
	profile     string                // the run's profile
	strict      bool                  // STRICT: a SHOULD failed
	exchanges   []*check.Exchange
	omitted     int             // exchanges dropped after the first keepFirstExchanges (World.record)
	redactor    *check.Redactor // a server may echo a token in any header or body
}

// transcript shows the exchanges, with a line where the middle of a long step was left out.
func (f *failureReport) transcript() string {
	var b strings.Builder
	for i, x := range f.exchanges {
		if i == keepFirstExchanges && f.omitted > 0 {
			fmt.Fprintf(&b, "… %d exchanges omitted (a step keeps its first %d and last %d) …\n\n", f.omitted, keepFirstExchanges, keepLastExchanges)
		}
		b.WriteString(x.Transcript())
		b.WriteString("\n")
	}
	return b.String()
}

func (f *failureReport) Unwrap() error { return f.err }

func (f *failureReport) Error() string {
	var b strings.Builder
	b.WriteString(f.err.Error())
	if r := f.requirement; r != nil {
		sev := fmt.Sprintf("%s in profile %s", r.Severity, f.profile)
		if r.Severity == features.Should && f.strict {
			sev += ", failed under STRICT=1"
		}
		fmt.Fprintf(&b, "\n\nrequirement %s (%s), source: %s\n  %s", r.ID, sev, r.Source, r.Clause)
	}
	if len(f.exchanges) > 0 {
		b.WriteString("\n\nHTTP exchanges behind this verdict:\n")
		b.WriteString(f.transcript())
		b.WriteString("reproduce the last request:\n  " + f.exchanges[len(f.exchanges)-1].Curl() + "\n")
	}
	return f.redactor.String(strings.ToValidUTF8(b.String(), "\uFFFD"))
}

// RequirementTags are the scenario's requirement IDs, primary first.
func RequirementTags(sc *godog.Scenario) []string {
	tags := make([]string, len(sc.Tags))
	for i, t := range sc.Tags {
		tags[i] = t.Name
	}
	return features.RequirementIDs(tags)
}

// FailureRequirements are the requirements a failed step's error names, as data: the violated requirement,
// and the requirement its failure report is charged to (the scenario's own when the failure is no deviation,
// e.g. a timeout). Nil for an error that did not pass through the steps' failure reporting.
func FailureRequirements(err error) []string {
	var ids []string
	var v *check.Violation
	if errors.As(err, &v) && v.Requirement != "" {
		ids = append(ids, v.Requirement)
	}
	var report *failureReport
	if errors.As(err, &report) && report.requirement != nil && !slices.Contains(ids, report.requirement.ID) {
		ids = append(ids, report.requirement.ID)
	}
	return ids
}

// FailureSummary is the one-line statement of a failed step's error, without the requirement's clause, the
// transcript and the reproducer.
func FailureSummary(err error) string {
	var report *failureReport
	if errors.As(err, &report) {
		err = report.err
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}
