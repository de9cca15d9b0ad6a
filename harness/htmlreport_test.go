package harness

import (
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// htmlNode is the part of the report's DOM the test reads.
type htmlNode struct {
	tag   string
	attrs map[string]string
	text  string
}

// parseHTML reads the page with the standard library's lenient HTML mode, failing on anything it cannot
// parse, and returns every element with its attributes and text.
func parseHTML(t *testing.T, r io.Reader) []htmlNode {
	t.Helper()
	dec := xml.NewDecoder(r)
	dec.Strict, dec.AutoClose, dec.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	var nodes []htmlNode
	var open []int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nodes
		}
		if err != nil {
			t.Fatalf("parse index.html: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := htmlNode{tag: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			nodes = append(nodes, n)
			open = append(open, len(nodes)-1)
		case xml.EndElement:
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		case xml.CharData:
			for _, i := range open {
				nodes[i].text += string(tok)
			}
		}
	}
}

func find(nodes []htmlNode, tag, attr, value string) []htmlNode {
	var out []htmlNode
	for _, n := range nodes {
		if n.tag == tag && (attr == "" || n.attrs[attr] == value) {
			out = append(out, n)
		}
	}
	return out
}

// A failing run's HTML report: one row per requirement with its result, the failure's transcript with the
// curl reproducer and the diff, warnings listed, no secret, no external asset.
func TestHTMLReportOfAFailingRun(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{})
	noProgress := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(headerDropper{ResponseWriter: w, drop: "X-Progress"}, r)
	})
	ts := serve(t, noProgress)
	dir := t.TempDir()
	res, err := Run(t.Context(), Config{Target: ts, Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, ReportsDir: dir, Out: io.Discard, Log: io.Discard})
	if err != nil || res.Passed {
		t.Fatalf("want a failed run: passed=%v err=%v", res.Passed, err)
	}
	junit, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if p := junitProblems(junit); p != nil {
		t.Errorf("junit.xml of a failing run does not hold to junit.xsd:\n%s", strings.Join(p, "\n"))
	}
	var doc junitTestsuites
	if err := xml.Unmarshal(junit, &doc); err != nil || doc.Failures == 0 {
		t.Fatalf("junit.xml: %v, %d failures", err, doc.Failures)
	}
	for _, s := range doc.Suites {
		for _, c := range s.Testcases {
			if f := c.Failure; f != nil && (strings.Contains(f.Message, "\n") || !features.IsRequirementID(strings.TrimSuffix(strings.Fields(c.Name)[0], ":")) || !strings.Contains(f.Body, "curl -i")) {
				t.Errorf("failure of %q: want a one-line message, the requirement first in the name, the reproducer in the body: %+v", c.Name, f)
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(raw)
	nodes := parseHTML(t, strings.NewReader(page))
	reqs, _ := features.Requirements()
	rows := find(nodes, "tr", "", "")
	if got := len(find(rows, "tr", "data-status", "fail")) + len(find(rows, "tr", "data-status", "pass")) + len(find(rows, "tr", "data-status", "blocked")); got != len(reqs) {
		t.Errorf("%d requirement rows passed, failed or blocked, want all %d", got, len(reqs))
	}
	if r := find(nodes, "tr", "data-requirement", "EXP-POLL-200"); len(r) != 1 || r[0].attrs["data-status"] != "blocked" {
		t.Errorf("EXP-POLL-200, whose scenario failed on EXP-POLL-202 first, must be blocked: %+v", r)
	}
	if r := find(nodes, "tr", "data-requirement", "EXP-POLL-202"); len(r) != 1 || r[0].attrs["data-status"] != "fail" {
		t.Errorf("EXP-POLL-202 must be failed: %+v", r)
	}
	if r := find(nodes, "tr", "data-requirement", "RJS-LISTED"); len(r) != 1 || r[0].attrs["data-status"] != "pass" {
		t.Errorf("RJS-LISTED must pass: %+v", r)
	}
	pill := find(nodes, "a", "class", "badge fail")
	if len(pill) == 0 || len(find(nodes, "details", "id", strings.TrimPrefix(pill[0].attrs["href"], "#"))) != 1 {
		t.Errorf("a failed requirement's pill must link to its failure: %+v", pill)
	}
	failures := find(nodes, "details", "class", "failure")
	if len(failures) == 0 || failures[0].attrs["open"] == "" || !strings.Contains(failures[0].text, "curl -i") || !strings.Contains(failures[0].text, "Bearer $TOKEN") || !strings.Contains(failures[0].text, "< 202 Accepted") {
		t.Errorf("each failure must be open, with its transcript and reproducer: %+v", failures)
	}
	for _, secret := range []string{refserver.DemoTokenA, refserver.DemoTokenB} {
		if strings.Contains(page, secret) {
			t.Errorf("the report shows a token")
		}
	}
	for _, external := range []string{"<script src", "<link", "@import", "url("} {
		if strings.Contains(page, external) {
			t.Errorf("the page must be self-contained, found %q", external)
		}
	}
	for _, want := range []string{"<dt>Profile</dt><dd>fut</dd>", "<dt>Target</dt><dd>" + ts} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// Where a structure was compared, the failure carries a go-cmp diff, in the console and in the HTML report
// alike, beside the curl reproducer, and neither shows a secret.
func TestAStructuralFailureShowsItsDiffAndReproducer(t *testing.T) {
	ts := serve(t, refserverHandler(t, refserver.Config{Faults: []string{"rjs-params-dropped"}}))
	dir := t.TempDir()
	var out strings.Builder
	res, err := Run(t.Context(), Config{Target: ts, Token: refserver.DemoTokenA, Tags: "@RJS-LISTED", ReportsDir: dir, Out: &out, Log: io.Discard})
	if err != nil || res.Passed {
		t.Fatalf("want a failed run: passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	failures := find(parseHTML(t, strings.NewReader(string(raw))), "details", "class", "failure")
	if len(failures) == 0 {
		t.Fatal("no failure in the HTML report")
	}
	for where, text := range map[string]string{"console": out.String(), "HTML report": failures[0].text} {
		for _, want := range []string{"(-want +got)", `"anonymization": "ANONYMIZED"`, "curl -i -X POST", "Bearer $TOKEN", "requirement RJS-LISTED (MUST in profile fut)"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", where, want)
			}
		}
		if strings.Contains(text, refserver.DemoTokenA) {
			t.Errorf("%s shows the token", where)
		}
	}
}

// A server's invalid UTF-8 reaches the report as valid UTF-8 with replacement characters, and a scenario
// that does not apply in the profile is listed as such, never as passed or failed.
func TestHTMLReportIsValidUTF8AndShowsNotApplicable(t *testing.T) {
	res := Result{Target: "http://t/fhir", Profile: "bulkdata", Findings: &steps.Findings{}, Results: []ScenarioResult{
		{Name: "fails", Requirements: []string{"EXP-POLL-200"}, Status: StatusFailed, Failure: &Failure{Scenario: "fails", Requirement: "EXP-POLL-200",
			Requirements: []string{"EXP-POLL-200"}, Summary: "bad \xff\xfe", Message: "bad body \xff\xfe\xc3(\n< 500"}},
		{Name: "no job id", Requirements: []string{"EXP-MISSING-JOB"}, Status: StatusNotApplicable, Reason: "EXP-MISSING-JOB does not apply in profile bulkdata"},
	}}
	res.Failures = []Failure{*res.Results[0].Failure}
	res.Requirements = []RequirementResult{
		{ID: "EXP-POLL-200", Severity: "MUST", Verdict: VerdictFail},
		{ID: "EXP-MISSING-JOB", Severity: "n/a", Verdict: VerdictNotApplicable, Reason: "not applicable: does not apply"},
	}
	path := filepath.Join(t.TempDir(), "index.html")
	if err := writeHTMLReport(path, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(raw) || !strings.Contains(string(raw), "bad body \uFFFD(") {
		t.Errorf("index.html must be valid UTF-8 with replacement characters")
	}
	nodes := parseHTML(t, strings.NewReader(string(raw)))
	if r := find(nodes, "tr", "data-requirement", "EXP-MISSING-JOB"); len(r) != 1 || r[0].attrs["data-status"] != "not-applicable" {
		t.Errorf("EXP-MISSING-JOB must be not applicable: %+v", r)
	}
	if li := find(nodes, "li", "class", "not-applicable"); len(li) != 1 || !strings.Contains(li[0].text, "does not apply in profile bulkdata") {
		t.Errorf("the not-applicable scenario must be listed with its reason: %+v", li)
	}
	if !strings.Contains(string(raw), "0 passed, 1 failed, 0 skipped, 1 not applicable") {
		t.Errorf("the counts must keep not applicable apart")
	}
}
