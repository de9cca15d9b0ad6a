package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// The default console of a full passing run against the embedded reference server (both demo users), with
// the progress log in the same stream as a CI log has it: at most 70 lines (68 before EXP-TYPE-REPEATED's
// scenario, the 31st, whose row made the requirement table a line longer; 66 before EXP-POLL-LOCATION's
// scenario, the 30th, and EXP-RETRY-AFTER-SENT, which shares EXP-RETRY-AFTER's scenario and whose row made the
// requirement table a line longer; 64 before EXP-OUTPUT-FORMAT's two,
// one for each of the IG's abbreviations of _outputFormat, the 28th and 29th; 60 before EXP-EXPIRES got a
// scenario of its own, the 25th; 61 before RJS-CROSS-USER's second, user B's own report, the 26th; 62 before
// EXP-POLL-TOKEN's, the 27th, whose requirement shares a line of the requirement table; 63 before
// EXP-POLL-ERROR, a requirement without a scenario of its own, which the requirement table's lines hold) of at most 120 characters, a line per scenario, a verdict per requirement,
// and none of godog's step lines. A job's progress lines are its power-of-two polls, so a loaded machine,
// whose jobs take more polls, writes about as many.
func TestCompactConsoleOfAPassingRunFitsIn70LinesOf120Characters(t *testing.T) {
	t.Chdir(t.TempDir()) // the default REPORTS_DIR, reports, as a vendor's run has it
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Out: &out, Log: &out, Randomize: -1})
	if err != nil || !res.Passed || len(res.Findings.Skips()) != 0 {
		t.Fatalf("run: passed=%v err=%v skips=%v\n%s", res.Passed, err, res.Findings.Skips(), out.String())
	}
	console := strings.TrimRight(out.String(), "\n")
	lines := strings.Split(console, "\n")
	if len(lines) > 70 {
		t.Errorf("the console has %d lines, want at most 70:\n%s", len(lines), console)
	}
	passed := 0
	for i, line := range lines {
		if n := utf8.RuneCountInString(line); n > consoleWidth {
			t.Errorf("line %d has %d characters, want at most %d: %q", i+1, n, consoleWidth, line)
		}
		if strings.Contains(line, ".go:") || strings.HasPrefix(strings.TrimSpace(line), "Given ") {
			t.Errorf("line %d is a godog step line: %q", i+1, line)
		}
		if strings.HasPrefix(line, "✓ ") {
			passed++
		}
	}
	if passed != res.Scenarios {
		t.Errorf("%d ✓ lines for %d passed scenarios:\n%s", passed, res.Scenarios, console)
	}
	reqs, err := features.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range reqs {
		if !strings.Contains(console, fmt.Sprintf("%-20s %-6s %s", id, profiles.SeverityOf(r, steps.DefaultProfile), "pass")) {
			t.Errorf("the requirement table lacks %s as passed:\n%s", id, console)
		}
	}
	if !strings.Contains(console, fmt.Sprintf("PASS: %d scenarios against embedded reference server", res.Scenarios)) ||
		!strings.Contains(console, fmt.Sprintf("requirements: %d pass;", len(reqs))) ||
		!strings.Contains(console, "reports in reports: junit.xml, cucumber.json, index.html") {
		t.Errorf("the verdict must name the target and count the requirements:\n%s", console)
	}
}

// A failing run prints each failure once, with its transcript and reproducer, and names the failed
// requirements in its last lines.
func TestCompactConsolePrintsEachFailureOnce(t *testing.T) {
	handler := refserverHandler(t, refserver.Config{Faults: []string{"unknown-job-400", "missing-job-202"}})
	res, out, err := runAgainst(t, handler, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@EXP-UNKNOWN-JOB,@EXP-MISSING-JOB"})
	if err != nil || res.Passed || len(res.Failures) != 2 {
		t.Fatalf("want a failed run with 2 failures, got passed=%v failures=%d err=%v\n%s", res.Passed, len(res.Failures), err, out)
	}
	for _, f := range res.Failures {
		first, _, _ := strings.Cut(f.Message, "\n")
		if n := strings.Count(out, first); n != 1 {
			t.Errorf("failure %q printed %d times, want once:\n%s", first, n, out)
		}
	}
	if n := strings.Count(out, "reproduce the last request:"); n != 2 {
		t.Errorf("%d reproducers for 2 failures:\n%s", n, out)
	}
	if n := strings.Count(out, "\n✗ "); n != 4 { // a line per scenario as it ends, and the head of its failure
		t.Errorf("%d ✗ lines, want 2 scenario lines and 2 failure heads:\n%s", n, out)
	}
	for _, want := range []string{"Failures: 2", "> GET http://", "curl -i -X GET", "FAIL: 2 scenarios", "  fail: EXP-MISSING-JOB, EXP-UNKNOWN-JOB"} {
		if !strings.Contains(out, want) {
			t.Errorf("the console lacks %q:\n%s", want, out)
		}
	}
}

// FORMAT=pretty keeps godog's pretty format, its failures printed by godog and not again by the console.
func TestPrettyFormatIsGodogs(t *testing.T) {
	handler := refserverHandler(t, refserver.Config{Faults: []string{"unknown-job-400"}})
	res, out, err := runAgainst(t, handler, Config{Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB", Format: FormatPretty})
	if err != nil || res.Passed {
		t.Fatalf("want a failed run, got passed=%v err=%v\n%s", res.Passed, err, out)
	}
	for _, want := range []string{"Scenario: polling an unknown job id", "1 scenarios (1 failed)", "requirements: 1 fail"} {
		if !strings.Contains(out, want) {
			t.Errorf("pretty output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Failures: 1") {
		t.Errorf("the console repeats the failure that godog printed:\n%s", out)
	}
}

// The same warning in seven scenarios is listed once, with its count and the scenarios; messages that differ
// only in a URL, a quoted value or a number are the same warning.
func TestFindingsAreGroupedAcrossScenarios(t *testing.T) {
	var list []steps.Finding
	for i := range 7 {
		list = append(list, steps.Finding{Scenario: fmt.Sprintf("scenario %d", i), Requirement: "EXP-PROGRESS-LENGTH",
			Message: fmt.Sprintf(`header X-Progress of http://x/poll?_jobId=%d: expected fewer than 100 characters, got "%d characters"`, i, 100+i)})
	}
	list = append(list, steps.Finding{Scenario: "scenario 0", Requirement: "EXP-EXPIRES", Message: "header Expires: expected an HTTP-date, got none"})
	groups := groupFindings(list, true)
	if len(groups) != 2 || groups[0].count != 7 || len(groups[0].scenarios) != 7 || groups[1].count != 1 {
		t.Fatalf("groups = %+v, want the 7 X-Progress warnings as one group and the Expires one apart", groups)
	}
	var b strings.Builder
	writeGroups(&b, groups)
	if got := b.String(); strings.Count(got, "X-Progress") != 1 || !strings.Contains(got, "7 times, in 7 scenarios: scenario 0; scenario 1") {
		t.Errorf("grouped warnings:\n%s", got)
	}
}

func TestFormatVariable(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if cfg, err := ConfigFromEnv(env(map[string]string{"FORMAT": "Pretty"})); err != nil || cfg.Format != FormatPretty {
		t.Errorf("FORMAT=Pretty: %q, %v", cfg.Format, err)
	}
	cfg, err := ConfigFromEnv(env(map[string]string{"FORMAT": "junit"}))
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "compact, pretty, progress") {
		t.Errorf("FORMAT=junit: want an error listing the formats, got %v", err)
	}
}

func TestWrapListKeepsEveryItem(t *testing.T) {
	items := strings.Fields("EXP-CANCEL EXP-CANCELLED-404 EXP-DELETE-DONE EXP-KICKOFF EXP-MISSING-JOB EXP-OUTPUT EXP-RETRY-AFTER RJS-BUNDLE RJS-FULLURL RJS-LISTED")
	got := wrapList("  not-run: ", items, 60)
	for i, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if utf8.RuneCountInString(line) > 60 || (i > 0 && !strings.HasPrefix(line, "           EXP-") && !strings.HasPrefix(line, "           RJS-")) {
			t.Errorf("line %d %q: want at most 60 characters, continued under the first item", i, line)
		}
	}
	if strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimPrefix(got, "  not-run: "), ",", "")), " ") != strings.Join(items, " ") {
		t.Errorf("items lost or reordered:\n%s", got)
	}
}

// Counts of one are singular: "1 scenario", "1 warning", "1 MUST requirement", on the console and in the
// HTML report; counts of another number keep the plural ("0 warnings", "2 scenarios").
func TestCountsOfOneAreSingular(t *testing.T) {
	findings := &steps.Findings{}
	findings.AddWarning(steps.Finding{Scenario: "skips", Requirement: "EXP-PROGRESS-LENGTH", Message: "X-Progress: 120 characters"})
	res := Result{Target: "http://t/fhir", Profile: "fut", Scenarios: 1, Findings: findings, Results: []ScenarioResult{
		{Feature: "f", File: "f.feature", Name: "another user", Requirements: []string{"EXP-CROSS-USER"}, Status: StatusSkipped, Reason: "user B has no token"},
	}}
	res.Requirements = []RequirementResult{
		{ID: "EXP-CROSS-USER", Severity: "MUST", Verdict: VerdictSkipped, Selected: true, Reason: "user B has no token", Scenarios: []string{"another user (skipped)"}},
	}
	res.Gate = gate(res.Requirements)
	var out bytes.Buffer
	newConsole(&out, FormatCompact).summary(res)
	for _, want := range []string{": 1 scenario against http://t/fhir", "; 1 warning; ", "FAILED, 1 MUST requirement not checked and passed:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the console lacks %q:\n%s", want, out.String())
		}
	}
	path := filepath.Join(t.TempDir(), "index.html")
	if err := writeHTMLReport(path, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "failed: 1 MUST requirement not checked and passed") {
		t.Errorf("the HTML report's gate says no \"1 MUST requirement\":\n%s", raw)
	}
	if nothing := res.NothingCheckedReasons(); !strings.Contains(nothing, "the one selected scenario was skipped") {
		t.Errorf("the NOTHING CHECKED reason of one scenario: %s", nothing)
	}
	res.Scenarios, res.Findings = 2, &steps.Findings{}
	out.Reset()
	newConsole(&out, FormatCompact).summary(res)
	for _, want := range []string{": 2 scenarios against", "; 0 warnings; "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the console lacks %q:\n%s", want, out.String())
		}
	}
	if countOf(2, "MUST requirement") != "2 MUST requirements" || countOf(0, "operation") != "0 operations" {
		t.Errorf("countOf: %q, %q", countOf(2, "MUST requirement"), countOf(0, "operation"))
	}
}
