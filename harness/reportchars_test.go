package harness

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// forbiddenChar is the first character of text that HTML forbids in a page (index.html): a control character
// other than tab, newline and carriage return (C0, DEL, C1), a noncharacter (U+FDD0 to U+FDEF, U+xFFFE,
// U+xFFFF), or a byte that is not UTF-8; its offset, or -1 when there is none. (XML 1.0 allows DEL and C1:
// junit.xml is held to it by the strict decoder.)
func forbiddenChar(text string) (rune, int) {
	for i, r := range text {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(text[i:], "\uFFFD"):
			return rune(text[i]), i
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r >= 0x7F && r <= 0x9F,
			r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
			return r, i
		}
	}
	return 0, -1
}

// A server's answer carries what no report may: control characters (NUL, ESC, a terminal's CSI, C1 controls),
// the noncharacters U+FFFE and U+FFFF, bytes that are not UTF-8, in its body and in a header. The run's
// failure shows the answer in every report, each still a document its readers accept: junit.xml parses as
// strict XML 1.0 (xmllint, Jenkins, GitLab), cucumber.json as JSON, and index.html holds no character HTML
// forbids, each such character shown as U+FFFD (encoding/xml does the same in junit.xml).
func TestAServersForbiddenCharactersReachNoReport(t *testing.T) {
	const body = "{\x00\x01\x08\x0b\x0c\x0e\x1b[2J\x1f\x7f \xc2\x85\xc2\x9b \xef\xbf\xbe \xef\xbf\xbf \xef\xb7\x90 \xed\xa0\x80 \xff\xfe ]]> <x>&amp;}"
	inner := rewriting(refserverHandler(t, refserver.Config{}), func(_ *http.Request, status int, b []byte) []byte {
		if status == http.StatusNotFound { // the answer to the unknown job: the scenario fails on it
			return []byte(body)
		}
		return b
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Note", "a\xffb\xef\xbf\xbe\xc2\x9bc") // Go's client refuses C0 controls in a header, not these
		inner.ServeHTTP(w, r)
	})
	res, written := boundedRun(t, h, Config{Tags: "@EXP-UNKNOWN-JOB", Token: refserver.DemoTokenA})
	if res.Passed || len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Message, "X-Note") {
		t.Fatalf("want EXP-UNKNOWN-JOB failed, its transcript showing the answer: %+v\n%s", res.Failures, tailOf(written["stdout"]))
	}
	junit := written["junit.xml"]
	dec := xml.NewDecoder(strings.NewReader(junit)) // Strict, as xmllint and CI tools parse
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("junit.xml is not well-formed XML 1.0: %v", err)
		}
	}
	if p := junitProblems([]byte(junit)); p != nil {
		t.Errorf("junit.xml does not hold to junit.xsd:\n%s", strings.Join(p, "\n"))
	}
	if !json.Valid([]byte(written["cucumber.json"])) || !utf8.ValidString(written["cucumber.json"]) {
		t.Errorf("cucumber.json is not valid JSON in UTF-8")
	}
	if r, i := forbiddenChar(written["index.html"]); i >= 0 {
		text := written["index.html"]
		t.Errorf("index.html holds %U, which HTML forbids, near %q", r, text[max(0, i-40):min(len(text), i+20)])
	}
	var page bytes.Buffer
	page.WriteString(written["index.html"])
	failures := find(parseHTML(t, &page), "details", "class", "failure")
	if len(failures) != 1 || !strings.Contains(failures[0].text, "< X-Note: a\uFFFDb\uFFFD\uFFFDc") || !strings.Contains(failures[0].text, "]]> <x>&amp;}") {
		t.Errorf("the HTML report must show the answer, its forbidden characters as U+FFFD: %+v", failures)
	}
}
