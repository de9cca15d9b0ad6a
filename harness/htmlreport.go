package harness

import (
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/steps"
)

//go:embed report.html.tmpl
var reportTemplate string

var reportPage = template.Must(template.New("report").Parse(reportTemplate))

// htmlReport is what reports/index.html shows: one self-contained page, no external assets.
type htmlReport struct {
	Verdict, VerdictClass   string
	Target, Profile, Date   string
	Duration                string
	Passed, Failed, Skipped int
	NotSelected             []string
	Requirements            []requirementRow
	Failures                []Failure
	Warnings, Known, Skips  []steps.Finding
}

type requirementRow struct {
	features.Requirement
	Status    string // pass, fail, warning, blocked, skipped, not-run
	Scenarios []string
}

func writeHTMLReport(path string, res Result) error {
	reqs, err := features.Requirements()
	if err != nil {
		return err
	}
	page := htmlReport{
		Verdict: "FAIL", VerdictClass: "fail",
		Target: res.Target, Profile: res.Profile,
		Date:        res.Started.UTC().Format(time.RFC3339),
		Duration:    res.Duration.Round(time.Millisecond).String(),
		NotSelected: res.NotSelected,
		Failures:    res.Failures,
		Warnings:    res.Findings.Warnings(),
		Known:       res.Findings.KnownDeviations(),
		Skips:       res.Findings.Skips(),
	}
	if res.Passed {
		page.Verdict, page.VerdictClass = "PASS", "pass"
	}
	for _, r := range res.Results {
		switch r.Status {
		case "passed":
			page.Passed++
		case "failed":
			page.Failed++
		default:
			page.Skipped++
		}
	}
	ids := make([]string, 0, len(reqs))
	for id := range reqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		page.Requirements = append(page.Requirements, requirementStatus(reqs[id], res, page))
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

// requirementStatus: a failure naming it fails it; else a warning or accepted deviation marks it; else it
// passed if a scenario tagged with it passed; blocked if its scenarios failed on another requirement before
// reaching it; skipped if they were all skipped; not run otherwise.
func requirementStatus(req features.Requirement, res Result, page htmlReport) requirementRow {
	row := requirementRow{Requirement: req, Status: "not-run"}
	ran, passed, failed := false, false, false
	for _, r := range res.Results {
		if slices.Contains(r.Requirements, req.ID) {
			row.Scenarios = append(row.Scenarios, r.Name+" ("+r.Status+")")
			ran = true
			passed = passed || r.Status == "passed"
			failed = failed || r.Status == "failed"
		}
	}
	named := func(list []steps.Finding) bool {
		return slices.ContainsFunc(list, func(f steps.Finding) bool { return f.Requirement == req.ID })
	}
	switch {
	case slices.ContainsFunc(res.Failures, func(f Failure) bool { return f.Requirement == req.ID }):
		row.Status = "fail"
	case named(page.Warnings) || named(page.Known):
		row.Status = "warning"
	case passed:
		row.Status = "pass"
	case failed:
		row.Status = "blocked"
	case ran:
		row.Status = "skipped"
	}
	return row
}
