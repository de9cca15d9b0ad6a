package harness

import (
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/steps"
)

//go:embed report.html.tmpl
var reportTemplate string

var reportPage = template.Must(template.New("report").Parse(reportTemplate))

// htmlReport is what reports/index.html shows: one self-contained page, no external assets. Every string
// from the server is valid UTF-8 by the time it gets here (invalid bytes become U+FFFD).
type htmlReport struct {
	Verdict, VerdictClass   string
	Target, Profile, Date   string
	Duration                string
	Passed, Failed, Skipped int
	NotApplicable           int
	NotSelected             []string
	Requirements            []requirementRow
	Failures                []htmlFailure
	Warnings, Known, Skips  []steps.Finding
	NotApplicableScenarios  []ScenarioResult
	Gate                    *GateResult
	NotChecked              []steps.Finding
}

type requirementRow struct {
	RequirementResult
	Failure string // the id of its first failure on the page, for a fail pill's link
}

type htmlFailure struct {
	Failure
	Anchor string
}

func writeHTMLReport(path string, res Result) error {
	page := htmlReport{
		Verdict: "FAIL", VerdictClass: "fail",
		Target: validUTF8(res.Target), Profile: res.Profile,
		Date:        res.Started.UTC().Format(time.RFC3339),
		Duration:    res.Duration.Round(time.Millisecond).String(),
		NotSelected: res.NotSelected,
		Warnings:    validFindings(res.Findings.Warnings()),
		Known:       validFindings(res.Findings.KnownDeviations()),
		Skips:       validFindings(res.Findings.Skips()),
		Gate:        res.Gate,
		NotChecked:  validFindings(res.Findings.NotChecked()),
	}
	if res.Passed {
		page.Verdict, page.VerdictClass = "PASS", "pass"
	}
	for i, f := range res.Failures {
		f.Scenario, f.Summary, f.Message = validUTF8(f.Scenario), validUTF8(f.Summary), validUTF8(f.Message)
		page.Failures = append(page.Failures, htmlFailure{Failure: f, Anchor: fmt.Sprintf("failure-%d", i+1)})
	}
	for _, r := range res.Results {
		switch r.Status {
		case StatusPassed:
			page.Passed++
		case StatusFailed:
			page.Failed++
		case StatusNotApplicable:
			page.NotApplicable++
			r.Reason = validUTF8(r.Reason)
			page.NotApplicableScenarios = append(page.NotApplicableScenarios, r)
		default:
			page.Skipped++
		}
	}
	for _, r := range res.Requirements {
		row := requirementRow{RequirementResult: r}
		row.Reason = validUTF8(row.Reason)
		for _, f := range page.Failures {
			if r.Verdict == VerdictFail && f.Requirement == r.ID {
				row.Failure = f.Anchor
				break
			}
		}
		page.Requirements = append(page.Requirements, row)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	if err := reportPage.Execute(f, page); err != nil {
		f.Close()
		return fmt.Errorf("write HTML report: %w", err)
	}
	return f.Close()
}

// validUTF8 makes a server's bytes safe to write into a UTF-8 page: every invalid sequence becomes U+FFFD.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func validFindings(list []steps.Finding) []steps.Finding {
	for i := range list {
		list[i].Scenario, list[i].Message = validUTF8(list[i].Scenario), validUTF8(list[i].Message)
	}
	return list
}
