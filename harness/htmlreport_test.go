package harness

import (
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
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
	failures := find(nodes, "details", "class", "failure")
	if len(failures) == 0 || !strings.Contains(failures[0].text, "curl -i") || !strings.Contains(failures[0].text, "Bearer $TOKEN") || !strings.Contains(failures[0].text, "< 202 Accepted") {
		t.Errorf("each failure must be expandable with its transcript and reproducer: %+v", failures)
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
		for _, want := range []string{"(-want +got)", `"anonymization": "ANONYMIZED"`, "curl -i -X POST", "Bearer $TOKEN", "requirement RJS-LISTED (MUST)"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", where, want)
			}
		}
		if strings.Contains(text, refserver.DemoTokenA) {
			t.Errorf("%s shows the token", where)
		}
	}
}
