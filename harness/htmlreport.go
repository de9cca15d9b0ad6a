package harness

import (
	"bytes"
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

// htmlReport is what reports/index.html shows: one self-contained page, no external assets. The page is
// written through htmlText, so that what a server sent holds no character HTML forbids.
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
		Target: res.Target, Profile: res.Profile,
		Date:        res.Started.UTC().Format(time.RFC3339),
		Duration:    res.Duration.Round(time.Millisecond).String(),
		NotSelected: res.NotSelected,
		Warnings:    res.Findings.Warnings(),
		Known:       res.Findings.KnownDeviations(),
		Skips:       res.Findings.Skips(),
		Gate:        res.Gate,
		NotChecked:  res.Findings.NotChecked(),
	}
	switch {
	case res.NothingChecked:
		page.Verdict = "NOTHING CHECKED"
	case res.Passed:
		page.Verdict, page.VerdictClass = "PASS", "pass"
	}
	for i, f := range res.Failures {
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
			page.NotApplicableScenarios = append(page.NotApplicableScenarios, r)
		default:
			page.Skipped++
		}
	}
	for _, r := range res.Requirements {
		row := requirementRow{RequirementResult: r}
		for _, f := range page.Failures {
			if r.Verdict == VerdictFail && f.Requirement == r.ID {
				row.Failure = f.Anchor
				break
			}
		}
		page.Requirements = append(page.Requirements, row)
	}
	var b bytes.Buffer
	if err := reportPage.Execute(&b, page); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	if err := os.WriteFile(path, []byte(htmlText(b.String())), 0o644); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

// validUTF8 makes a server's bytes safe to write into a UTF-8 report: every invalid sequence becomes U+FFFD.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// htmlText is s, valid UTF-8, with every character HTML forbids in a page replaced by U+FFFD (as encoding/xml
// replaces those XML forbids in junit.xml): control characters other than tab, newline and carriage return (a
// server's NUL, ESC, DEL, C1 controls) and the noncharacters (U+FDD0 to U+FDEF, U+FFFE and U+FFFF of every
// plane). html/template replaces NUL only.
func htmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r >= 0x7F && r <= 0x9F, r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
			return '\uFFFD'
		}
		return r
	}, validUTF8(s))
}
