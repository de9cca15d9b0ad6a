package harness

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/steps"
)

// junitRules is the Jenkins/Ant JUnit schema as CI tools read it (jenkinsci/xunit-plugin, junit-10.xsd): for
// each element, the children it may hold, its required and its other allowed attributes, and whether it
// holds text. An element or attribute the schema does not declare is invalid.
var junitRules = map[string]struct {
	children, required, optional []string
	text                         bool
}{
	"testsuites": {children: []string{"testsuite"}, optional: []string{"name", "time", "tests", "failures", "errors"}},
	"testsuite": {children: []string{"testsuite", "properties", "testcase", "system-out", "system-err"},
		required: []string{"name", "tests", "failures", "errors"},
		optional: []string{"group", "time", "skipped", "timestamp", "hostname", "id", "package", "file", "log", "url"}},
	"properties": {children: []string{"property"}},
	"property":   {required: []string{"name", "value"}},
	"testcase": {children: []string{"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError", "system-out", "system-err"},
		required: []string{"name"}, optional: []string{"time", "classname", "group"}},
	"failure":    {optional: []string{"type", "message"}, text: true},
	"error":      {optional: []string{"type", "message"}, text: true},
	"skipped":    {optional: []string{"type", "message"}, text: true},
	"system-out": {text: true},
	"system-err": {text: true},
}

// surefireTime is the schema's SUREFIRE_TIME pattern, for the time attributes.
var surefireTime = regexp.MustCompile(`^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$`)

type xmlElement struct {
	name     string
	attrs    map[string]string
	children []*xmlElement
	text     string
}

func parseXML(raw []byte) (*xmlElement, error) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var root *xmlElement
	var stack []*xmlElement
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return root, nil
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &xmlElement{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				root = e
			} else {
				stack[len(stack)-1].children = append(stack[len(stack)-1].children, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
}

// junitProblems holds a JUnit document to junitRules, and the counts of every suite (and of the whole) to the
// test cases they count. It returns what is wrong; nil means the document holds to the schema.
func junitProblems(raw []byte) []string {
	var problems []string
	if !utf8.Valid(raw) {
		problems = append(problems, "the document is not valid UTF-8")
	}
	root, err := parseXML(raw)
	if err != nil {
		return append(problems, "not well-formed XML: "+err.Error())
	}
	if root == nil || root.name != "testsuites" {
		return append(problems, "the root element must be <testsuites>")
	}
	var walk func(e *xmlElement, path string)
	walk = func(e *xmlElement, path string) {
		path += "/" + e.name
		rule, ok := junitRules[e.name]
		if !ok {
			problems = append(problems, path+": element not in junit.xsd")
			return
		}
		for _, a := range rule.required {
			if _, ok := e.attrs[a]; !ok {
				problems = append(problems, fmt.Sprintf("%s: required attribute %q missing", path, a))
			}
		}
		for a, v := range e.attrs {
			if !slices.Contains(rule.required, a) && !slices.Contains(rule.optional, a) {
				problems = append(problems, fmt.Sprintf("%s: attribute %q not in junit.xsd", path, a))
			}
			if a == "time" && (e.name == "testsuite" || e.name == "testsuites") && !surefireTime.MatchString(v) {
				problems = append(problems, fmt.Sprintf("%s: time %q is not a SUREFIRE_TIME", path, v))
			}
		}
		if !rule.text && strings.TrimSpace(e.text) != "" {
			problems = append(problems, path+": holds text, which junit.xsd does not allow here")
		}
		for _, c := range e.children {
			if !slices.Contains(rule.children, c.name) {
				problems = append(problems, fmt.Sprintf("%s: <%s> may not hold <%s>", path, e.name, c.name))
				continue
			}
			walk(c, path)
		}
	}
	walk(root, "")
	count := func(e *xmlElement, attr string) int {
		n, err := strconv.Atoi(e.attrs[attr])
		if err != nil {
			problems = append(problems, fmt.Sprintf("<%s name=%q>: %s=%q is not a count", e.name, e.attrs["name"], attr, e.attrs[attr]))
		}
		return n
	}
	total := map[string]int{}
	for _, suite := range root.children {
		got := map[string]int{}
		for _, tc := range suite.children {
			if tc.name != "testcase" {
				continue
			}
			got["tests"]++
			for _, c := range tc.children {
				switch c.name {
				case "failure":
					got["failures"]++
				case "error":
					got["errors"]++
				case "skipped":
					got["skipped"]++
				}
			}
		}
		for _, attr := range []string{"tests", "failures", "errors", "skipped"} {
			total[attr] += got[attr]
			if _, ok := suite.attrs[attr]; !ok && got[attr] == 0 {
				continue
			}
			if n := count(suite, attr); n != got[attr] {
				problems = append(problems, fmt.Sprintf("<testsuite name=%q>: %s=%d, but it holds %d", suite.attrs["name"], attr, n, got[attr]))
			}
		}
	}
	for _, attr := range []string{"tests", "failures", "errors"} {
		if _, ok := root.attrs[attr]; ok {
			if n := count(root, attr); n != total[attr] {
				problems = append(problems, fmt.Sprintf("<testsuites>: %s=%d, but its suites hold %d", attr, n, total[attr]))
			}
		}
	}
	return problems
}

// The structural check itself fails on what junit.xsd rejects.
func TestJUnitStructureCheckRejectsWhatTheSchemaRejects(t *testing.T) {
	const ok = `<testsuites tests="1" failures="1" errors="0"><testsuite name="f" tests="1" failures="1" errors="0" skipped="0" time="0.5">` +
		`<properties><property name="target" value="x"/></properties><testcase name="A-1: s" classname="f"><failure message="m" type="A-1">body</failure></testcase>` +
		`<system-out></system-out></testsuite></testsuites>`
	if p := junitProblems([]byte(ok)); p != nil {
		t.Fatalf("a valid document is rejected: %v", p)
	}
	for name, bad := range map[string]string{
		"suite without tests":     strings.Replace(ok, ` tests="1" failures="1" errors="0" skipped`, ` failures="1" errors="0" skipped`, 1),
		"unknown attribute":       strings.Replace(ok, `classname="f"`, `classname="f" file="x"`, 1),
		"unknown element":         strings.Replace(ok, `<failure`, `<warning/><failure`, 1),
		"error in the attribute":  strings.Replace(ok, `<testsuite `, `<testsuite skipped2="1" `, 1),
		"counts that do not add":  strings.Replace(ok, `<testsuite name="f" tests="1" failures="1"`, `<testsuite name="f" tests="1" failures="0"`, 1),
		"totals that do not add":  strings.Replace(ok, `<testsuites tests="1"`, `<testsuites tests="2"`, 1),
		"property without value":  strings.Replace(ok, ` value="x"`, ``, 1),
		"text in a testcase":      strings.Replace(ok, `<failure`, `oops<failure`, 1),
		"bad time":                strings.Replace(ok, `time="0.5"`, `time="1s"`, 1),
		"skipped outside a case":  strings.Replace(ok, `<system-out>`, `<skipped/><system-out>`, 1),
		"not a testsuites root":   "<testsuite name=\"f\" tests=\"0\" failures=\"0\" errors=\"0\"/>",
		"invalid UTF-8 in a text": strings.Replace(ok, "body", "b\xffdy", 1),
	} {
		if junitProblems([]byte(bad)) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A run's JUnit report from its Result: one suite per feature, classname the feature, names starting with
// the requirement IDs, a one-line message with the transcript in the body, skipped and not-applicable
// scenarios as <skipped message>, warnings and known deviations in <system-out>, target and profile as
// properties, counts that add up, and a server's invalid UTF-8 made valid.
func TestJUnitReportFromTheResult(t *testing.T) {
	findings := &steps.Findings{}
	res := Result{Target: "http://t/fhir", Profile: "hapi-8.0", Findings: findings, Started: time.Now(), Duration: 3 * time.Second, Results: []ScenarioResult{
		{Feature: "export feature", File: "e.feature", Name: "passes", Requirements: []string{"EXP-POLL-202", "EXP-PROGRESS-LENGTH"}, Status: StatusPassed, Duration: time.Second},
		{Feature: "export feature", File: "e.feature", Name: "fails", Requirements: []string{"EXP-POLL-200"}, Status: StatusFailed,
			Failure: &Failure{Requirement: "EXP-POLL-200", Requirements: []string{"EXP-POLL-200"}, Step: "user A polls", NonConformant: true,
				Summary: "EXP-POLL-200: status: expected 200, got 500 \xff", Message: "EXP-POLL-200: status: expected 200, got 500 \xff\n\n> GET http://t/x\n< 500\nreproduce the last request:\n  curl -i http://t/x\n"}},
		{Feature: "export feature", File: "e.feature", Name: "times out", Requirements: []string{"EXP-CANCEL"}, Status: StatusFailed,
			Failure: &Failure{Requirement: "EXP-CANCEL", Requirements: []string{"EXP-CANCEL"}, Summary: "gave up waiting", Message: "gave up waiting\nafter 3 polls"}},
		{Feature: "report feature", File: "r.feature", Name: "skipped", Requirements: []string{"RJS-CROSS-USER"}, Status: StatusSkipped, Reason: "user B has no token"},
		{Feature: "report feature", File: "r.feature", Name: "n/a", Requirements: []string{"RJS-FULLURL"}, Status: StatusNotApplicable, Reason: "RJS-FULLURL does not apply in profile hapi-8.0"},
	}}
	res.Scenarios = len(res.Results)
	findings.AddWarning(steps.Finding{Scenario: "passes", Requirement: "EXP-PROGRESS-LENGTH", Message: "X-Progress: 120 characters"})
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := writeJUnitReport(path, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p := junitProblems(raw); p != nil {
		t.Fatalf("junit.xml does not hold to junit.xsd:\n%s\n%s", strings.Join(p, "\n"), raw)
	}
	var doc junitTestsuites
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 5 || doc.Failures != 1 || doc.Errors != 1 || len(doc.Suites) != 2 || doc.Suites[1].Skipped != 2 {
		t.Fatalf("counts: %+v", doc)
	}
	export := doc.Suites[0]
	if export.Name != "export feature" || export.Testcases[0].Classname != "export feature" || export.Testcases[0].Name != "EXP-POLL-202 EXP-PROGRESS-LENGTH: passes" {
		t.Errorf("suite and case names: %q %q %q", export.Name, export.Testcases[0].Classname, export.Testcases[0].Name)
	}
	props := map[string]string{}
	for _, p := range export.Properties {
		props[p.Name] = p.Value
	}
	if props["target"] != "http://t/fhir" || props["profile"] != "hapi-8.0" {
		t.Errorf("properties: %v", props)
	}
	if !strings.Contains(export.Testcases[0].SystemOut, "warning EXP-PROGRESS-LENGTH: X-Progress: 120 characters") || !strings.Contains(export.SystemOut, "EXP-PROGRESS-LENGTH") {
		t.Errorf("the warning must be in the case's and the suite's system-out: %q / %q", export.Testcases[0].SystemOut, export.SystemOut)
	}
	f := export.Testcases[1].Failure
	if f == nil || strings.Contains(f.Message, "\n") || f.Message != "EXP-POLL-200: status: expected 200, got 500 \uFFFD" || f.Type != "EXP-POLL-200" ||
		!strings.Contains(f.Body, "curl -i http://t/x") || !strings.Contains(f.Body, "failed step: user A polls") {
		t.Errorf("failure: %+v", f)
	}
	if e := export.Testcases[2].Error; e == nil || e.Message != "gave up waiting" || !strings.Contains(e.Body, "after 3 polls") {
		t.Errorf("a failure that is not a deviation must be an <error>: %+v", export.Testcases[2])
	}
	report := doc.Suites[1]
	if s := report.Testcases[0].Skipped; s == nil || s.Message != "skipped: user B has no token" {
		t.Errorf("skipped: %+v", report.Testcases[0])
	}
	if s := report.Testcases[1].Skipped; s == nil || !strings.HasPrefix(s.Message, "not applicable in profile hapi-8.0: ") {
		t.Errorf("not applicable: %+v", report.Testcases[1])
	}
}

// child is e's first child element named name, nil if it has none.
func (e *xmlElement) child(name string) *xmlElement {
	for _, c := range e.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// jenkinsStdout is the standard output Jenkins' JUnit plugin shows for a test case (jenkinsci/junit-plugin,
// CaseResult.getStdout): the case's own <system-out>, or, when the case has none, its suite's.
func jenkinsStdout(suite, tc *xmlElement) string {
	if out := tc.child("system-out"); out != nil {
		return out.text
	}
	if out := suite.child("system-out"); out != nil {
		return out.text
	}
	return ""
}

// gitlabDetails is what GitLab shows as a test case's details (gitlabhq lib/gitlab/ci/parsers/test/junit.rb,
// create_test_case): the text of its <failure>, <error> or <skipped> element, attributes left out.
func gitlabDetails(tc *xmlElement) string {
	for _, name := range []string{"failure", "error", "skipped"} {
		if e := tc.child(name); e != nil {
			return strings.TrimSpace(e.text)
		}
	}
	return ""
}

// The report read as Jenkins and GitLab read it: a scenario's standard output holds its own warnings only,
// never another scenario's (Jenkins falls back to the suite's output for a case without one); and a skipped
// or not-applicable scenario says why in the element's text, the only part GitLab shows.
func TestJUnitReportAsJenkinsAndGitLabShowIt(t *testing.T) {
	findings := &steps.Findings{}
	res := Result{Target: "http://t/fhir", Profile: "bulkdata", Findings: findings, Started: time.Now(), Results: []ScenarioResult{
		{Feature: "f", File: "f.feature", Name: "warns", Requirements: []string{"EXP-POLL-202"}, Status: StatusPassed},
		{Feature: "f", File: "f.feature", Name: "quiet", Requirements: []string{"EXP-KICKOFF"}, Status: StatusPassed},
		{Feature: "f", File: "f.feature", Name: "skips", Requirements: []string{"EXP-CROSS-USER"}, Status: StatusSkipped, Reason: "user B has no token"},
		{Feature: "f", File: "f.feature", Name: "n/a", Requirements: []string{"EXP-MISSING-JOB"}, Status: StatusNotApplicable, Reason: "EXP-MISSING-JOB does not apply"},
	}}
	findings.AddWarning(steps.Finding{Scenario: "warns", Requirement: "EXP-PROGRESS-LENGTH", Message: "X-Progress: 120 characters"})
	root, raw := junitOf(t, res)
	suite := root.child("testsuite")
	var cases []*xmlElement
	for _, c := range suite.children {
		if c.name == "testcase" {
			cases = append(cases, c)
		}
	}
	if len(cases) != 4 {
		t.Fatalf("expected 4 test cases, got %d\n%s", len(cases), raw)
	}
	if out := jenkinsStdout(suite, cases[0]); !strings.Contains(out, "X-Progress: 120 characters") {
		t.Errorf("Jenkins shows the warning's own scenario %q as output", out)
	}
	for _, tc := range cases[1:] {
		if out := jenkinsStdout(suite, tc); out != "" {
			t.Errorf("Jenkins shows %q, which warned of nothing, with the output %q", tc.attrs["name"], out)
		}
	}
	if got := gitlabDetails(cases[2]); got != "skipped: user B has no token" {
		t.Errorf("GitLab shows the skipped scenario's details as %q", got)
	}
	if got := gitlabDetails(cases[3]); got != "not applicable in profile bulkdata: EXP-MISSING-JOB does not apply" {
		t.Errorf("GitLab shows the not-applicable scenario's details as %q", got)
	}
}

// The release gate's suite as GitLab shows it, the failure's text alone: a MUST requirement not checked says
// why there (its verdict and reason), not only the attribute Jenkins reads, and names its scenarios.
func TestJUnitGateFailureSaysWhyInItsText(t *testing.T) {
	res := Result{Target: "http://t/fhir", Profile: "fut", Findings: &steps.Findings{}, Started: time.Now(), Results: []ScenarioResult{
		{Feature: "f", File: "f.feature", Name: "another user", Requirements: []string{"EXP-CROSS-USER"}, Status: StatusSkipped, Reason: "user B has no token"},
		{Feature: "f", File: "f.feature", Name: "kick-off", Requirements: []string{"EXP-KICKOFF"}, Status: StatusPassed},
	}}
	res.Requirements = []RequirementResult{
		{ID: "EXP-CROSS-USER", Severity: "MUST", Verdict: VerdictSkipped, Selected: true, Reason: "user B has no token", Scenarios: []string{"another user (skipped)"}},
		{ID: "EXP-KICKOFF", Severity: "MUST", Verdict: VerdictPass, Selected: true, Scenarios: []string{"kick-off (passed)"}},
	}
	res.Gate = gate(res.Requirements)
	root, raw := junitOf(t, res)
	gate := root.children[len(root.children)-1]
	var failed *xmlElement
	for _, tc := range gate.children {
		if tc.attrs["name"] == "EXP-CROSS-USER: checked and passed" {
			failed = tc
		}
	}
	if failed == nil || failed.child("failure") == nil {
		t.Fatalf("want EXP-CROSS-USER failed in the gate's suite:\n%s", raw)
	}
	if got := gitlabDetails(failed); !strings.Contains(got, "EXP-CROSS-USER (MUST) skipped: user B has no token") || !strings.Contains(got, "another user (skipped)") {
		t.Errorf("GitLab shows the gate's failure of EXP-CROSS-USER as %q", got)
	}
}

// junitOf is res's junit.xml, held to junit.xsd, parsed, and as written.
func junitOf(t *testing.T, res Result) (*xmlElement, []byte) {
	t.Helper()
	raw, err := xml.Marshal(junitReport(res))
	if err != nil {
		t.Fatal(err)
	}
	if p := junitProblems(raw); p != nil {
		t.Fatalf("junit.xml does not hold to junit.xsd:\n%s\n%s", strings.Join(p, "\n"), raw)
	}
	root, err := parseXML(raw)
	if err != nil {
		t.Fatal(err)
	}
	return root, raw
}
