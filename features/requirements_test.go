package features

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// scenarioTags maps each requirement tag used in the feature files to the scenarios carrying it.
func scenarioTags(t *testing.T) map[string][]string {
	t.Helper()
	scenarios, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string][]string{}
	for _, s := range scenarios {
		for _, id := range s.Requirements {
			tags[id] = append(tags[id], fmt.Sprintf("%s: %q", s.File, s.Name))
		}
	}
	return tags
}

func TestEveryRequirementHasAScenarioAndEveryTagARequirement(t *testing.T) {
	reqs, err := Requirements()
	if err != nil {
		t.Fatal(err)
	}
	tags := scenarioTags(t)
	var ids []string
	for id := range reqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if len(tags[id]) == 0 {
			t.Errorf("requirement %s has no scenario tagged @%s", id, id)
		}
	}
	for tag, where := range tags {
		if _, ok := reqs[tag]; !ok {
			t.Errorf("tag @%s (%s) names no requirement in REQUIREMENTS.md", tag, strings.Join(where, ", "))
		}
	}
}

func TestRequirementsTableRejectsMalformedRows(t *testing.T) {
	cases := map[string]string{
		"bad severity": "| ID | Severity | Source | Clause |\n|---|---|---|---|\n| X-1 | MAYBE | s | c |\n",
		"n/a default":  "| ID | Severity | Source | Clause |\n|---|---|---|---|\n| X-1 | n/a | s | c |\n",
		"bad ID":       "| ID | Severity | Source | Clause |\n|---|---|---|---|\n| x-1 | MUST | s | c |\n",
		"duplicate":    "| ID | Severity | Source | Clause |\n|---|---|---|---|\n| X-1 | MUST | s | c |\n| X-1 | MUST | s | c |\n",
		"short row":    "| ID | Severity | Source | Clause |\n|---|---|---|---|\n| X-1 | MUST | s |\n",
		"no rows":      "nothing here\n",
	}
	for name, table := range cases {
		if _, err := parseRequirements([]byte(table)); err == nil {
			t.Errorf("%s: expected an error, got none", name)
		}
	}
	reqs, err := parseRequirements([]byte("| ID | Severity | Source | Clause |\n|---|---|---|---|\n| X-1 | SHOULD | src | a clause |\n"))
	if err != nil || reqs["X-1"] != (Requirement{ID: "X-1", Severity: Should, Source: "src", Clause: "a clause"}) {
		t.Fatalf("parse a good row: %v %+v", err, reqs)
	}
	// The section "Clause by clause" follows the requirements table with tables of its own (clause, section,
	// requirement or why it is not checked): they are no requirement rows, and read as such they were refused.
	withTrace := "| ID | Severity | Source | Clause |\n|---|---|---|---|\n| X-1 | MUST | src | a clause |\n\n## Clause by clause\n\n" +
		"| Clause | Section | Requirement |\n|---|---|---|\n| \"SHALL support GET\" | Kick-off | X-1 |\n"
	reqs, err = parseRequirements([]byte(withTrace))
	if err != nil || len(reqs) != 1 || reqs["X-1"].Severity != Must {
		t.Fatalf("a trace table after the requirements table: %v %+v", err, reqs)
	}
}

func TestProfilesTable(t *testing.T) {
	p, err := LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Names, ",") != "fut,bulkdata,hapi-8.0" {
		t.Fatalf("profiles %v", p.Names)
	}
	reqs, err := Requirements()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range p.Behaviour {
		if _, ok := reqs[b.Requirement]; !ok {
			t.Errorf("behaviour %s names requirement %s, which REQUIREMENTS.md lacks", name, b.Requirement)
		}
	}
	for id := range p.Severity {
		if _, ok := reqs[id]; !ok {
			t.Errorf("the severity table names requirement %s, which REQUIREMENTS.md lacks", id)
		}
	}
	cancelled := p.Behaviour["poll-cancelled"].Answers["hapi-8.0"]
	if len(cancelled) != 2 || cancelled[0] != (Answer{Status: 404, OperationOutcome: true, Text: "404 + OperationOutcome"}) ||
		cancelled[1] != (Answer{Status: 202, XProgress: true, KnownDeviation: true, Text: "202 + X-Progress (known deviation)"}) {
		t.Errorf("poll-cancelled/hapi-8.0 parsed as %+v", cancelled)
	}
	if tol := p.Tolerance["operation-outcome-without-issue-code"]; !tol["hapi-8.0"] || tol["fut"] || tol["bulkdata"] {
		t.Errorf("operation-outcome-without-issue-code parsed as %v", tol)
	}
	if tol := p.Tolerance["operation-outcome-media-type"]; !tol["hapi-8.0"] || !tol["fut"] || tol["bulkdata"] {
		t.Errorf("operation-outcome-media-type parsed as %v", tol)
	}
	if tol := p.Tolerance["transaction-time-of-the-data"]; tol["hapi-8.0"] || tol["fut"] || !tol["bulkdata"] {
		t.Errorf("transaction-time-of-the-data parsed as %v", tol)
	}
	if tol := p.Tolerance["operation-outcome-as-requested-json"]; !tol["hapi-8.0"] || !tol["fut"] || !tol["bulkdata"] {
		t.Errorf("operation-outcome-as-requested-json parsed as %v", tol)
	}
	if p.Behaviour["poll-after-delete-finished"].Answers["fut"] != nil {
		t.Errorf("a — cell must parse as not checked")
	}
	unknown := p.Behaviour["unknown-job"]
	if a := unknown.Answers["bulkdata"]; len(a) != 1 || a[0] != (Answer{StatusClass: 4, OperationOutcomeExpected: true, Text: "4xx + OperationOutcome (SHOULD)"}) ||
		!a[0].Accepts(400) || !a[0].Accepts(499) || a[0].Accepts(404+100) || a[0].Accepts(399) {
		t.Errorf("unknown-job/bulkdata parsed as %+v", a)
	}
	for _, profile := range []string{"fut", "hapi-8.0"} {
		if a := unknown.Answers[profile]; len(a) != 1 || a[0] != (Answer{Status: 404, OperationOutcome: true, Text: "404 + OperationOutcome"}) || a[0].Accepts(400) {
			t.Errorf("unknown-job/%s parsed as %+v", profile, a)
		}
	}
	for _, bad := range []string{"20x", "202 + Body", "OperationOutcome", "6xx", "4XX", "40", "4040", "404 + OperationOutcome (MAY)", "404 + X-Progress (SHOULD)"} {
		if _, err := parseAnswers(bad); err == nil {
			t.Errorf("parseAnswers(%q): expected an error", bad)
		}
	}
}
