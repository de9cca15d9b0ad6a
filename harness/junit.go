package harness

import (
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/features"
)

// The JUnit XML report, shaped for CI tools (Jenkins, GitLab, GitHub Actions test reporters): the structure of
// the Jenkins/Ant junit.xsd. One <testsuite> per feature; a <testcase> per scenario whose classname is the
// feature and whose name starts with its requirement IDs; a failure's one-line message in the attribute and the
// transcript and reproducer in the element's body; skipped and not-applicable scenarios as <skipped
// message="..."/>; warnings and known deviations in <system-out>; target and profile as <properties>.
type junitTestsuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []junitTestsuite `xml:"testsuite"` // junit.xsd has no skipped count at this level; each suite has its own
}

type junitTestsuite struct {
	Name       string          `xml:"name,attr"`
	ID         int             `xml:"id,attr"`
	Package    string          `xml:"package,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Testcases  []junitTestcase `xml:"testcase"`
	SystemOut  string          `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitTestcase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitSkipped `xml:"skipped"`
	Error     *junitProblem `xml:"error"`
	Failure   *junitProblem `xml:"failure"`
	// SystemOut is always written, empty too: Jenkins shows a case without one the whole suite's system-out
	// (CaseResult.getStdout), every other scenario's warnings under this one.
	SystemOut string `xml:"system-out"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// junitSkipped holds its reason twice: Jenkins and the GitHub reporters read the message attribute, GitLab
// shows only the element's text.
type junitSkipped struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

func skipped(reason string) *junitSkipped {
	return &junitSkipped{Message: oneLine(reason), Body: validUTF8(reason)}
}

// junitReport builds the JUnit document of a run.
func junitReport(res Result) junitTestsuites {
	doc := junitTestsuites{Name: "fut-conformance", Time: seconds(res.Duration)}
	host, _ := os.Hostname()
	props := []junitProperty{
		{"target", validUTF8(res.Target)}, {"profile", res.Profile}, {"strict", strconv.FormatBool(res.Strict)},
		{"gate", strconv.FormatBool(res.Gate != nil)},
	}
	for _, f := range res.NotSelected {
		props = append(props, junitProperty{"not-run", f})
	}
	warnings, known := res.Findings.Warnings(), res.Findings.KnownDeviations()
	suiteOf := map[string]int{}
	for _, r := range res.Results {
		i, ok := suiteOf[r.Feature]
		if !ok {
			i = len(doc.Suites)
			suiteOf[r.Feature] = i
			doc.Suites = append(doc.Suites, junitTestsuite{Name: validUTF8(r.Feature), ID: i, Package: r.File, Hostname: host,
				Timestamp: res.Started.UTC().Format("2006-01-02T15:04:05"), Properties: props})
		}
		s := &doc.Suites[i]
		name := r.Name
		if len(r.Requirements) > 0 {
			name = strings.Join(r.Requirements, " ") + ": " + r.Name
		}
		tc := junitTestcase{Name: validUTF8(name), Classname: validUTF8(r.Feature), Time: seconds(r.Duration)}
		switch r.Status {
		case StatusFailed:
			p := &junitProblem{Message: oneLine(r.Failure.Summary), Type: r.Failure.Requirement, Body: validUTF8(r.Failure.Message)}
			if r.Failure.Step != "" {
				p.Body = "failed step: " + validUTF8(r.Failure.Step) + "\n\n" + p.Body
			}
			if r.Failure.NonConformant {
				tc.Failure = p
				s.Failures++
			} else {
				p.Type = "error"
				tc.Error = p
				s.Errors++
			}
		case StatusSkipped:
			tc.Skipped = skipped("skipped: " + r.Reason)
			s.Skipped++
		case StatusNotApplicable:
			tc.Skipped = skipped("not applicable in profile " + res.Profile + ": " + r.Reason)
			s.Skipped++
		}
		var out strings.Builder
		for _, w := range warnings {
			if w.Scenario == r.Name {
				fmt.Fprintf(&out, "warning %s: %s\n", w.Requirement, w.Message)
			}
		}
		for _, k := range known {
			if k.Scenario == r.Name {
				fmt.Fprintf(&out, "known deviation accepted by profile %s, %s: %s\n", res.Profile, k.Requirement, k.Message)
			}
		}
		tc.SystemOut = validUTF8(out.String())
		s.SystemOut += tc.SystemOut
		s.Testcases = append(s.Testcases, tc)
		s.Tests++
		s.Time = seconds(sumTime(s.Testcases))
	}
	if res.Gate != nil {
		doc.Suites = append(doc.Suites, gateSuite(res, len(doc.Suites), host, props))
	}
	for _, s := range doc.Suites {
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
	}
	return doc
}

// gateSuite shows the release gate to CI tools that read only the JUnit report: one test case per MUST
// requirement of the selected features, failed when the run did not check it and pass it.
func gateSuite(res Result, id int, host string, props []junitProperty) junitTestsuite {
	const name = "release gate (GATE=1): every MUST requirement of the selected features checked and passed"
	s := junitTestsuite{Name: name, ID: id, Package: "GATE", Hostname: host, Timestamp: res.Started.UTC().Format("2006-01-02T15:04:05"), Properties: props, Time: seconds(0)}
	unchecked := map[string]RequirementResult{} // the gate's own verdict, partly checked ones included
	for _, r := range res.Gate.Unchecked {
		unchecked[r.ID] = r
	}
	for _, r := range res.Requirements {
		if !r.Selected || r.Severity != features.Must {
			continue
		}
		tc := junitTestcase{Name: r.ID + ": checked and passed", Classname: name, Time: seconds(0)}
		if u, ok := unchecked[r.ID]; ok {
			msg := fmt.Sprintf("%s (MUST) %s", u.ID, u.Verdict)
			if u.Reason != "" {
				msg += ": " + u.Reason
			}
			// The reason in the text too, the only part GitLab shows, as a skipped scenario's.
			body := validUTF8(msg)
			if len(r.Scenarios) > 0 {
				body += "\n\nscenarios:\n" + strings.Join(r.Scenarios, "\n")
			}
			tc.Failure = &junitProblem{Message: oneLine(msg), Type: "release-gate", Body: body}
			s.Failures++
		}
		s.Testcases = append(s.Testcases, tc)
		s.Tests++
	}
	return s
}

func writeJUnitReport(path string, res Result) error {
	raw, err := xml.MarshalIndent(junitReport(res), "", "  ")
	if err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(raw, '\n')...), 0o644); err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	return nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func sumTime(cases []junitTestcase) time.Duration {
	var total float64
	for _, c := range cases {
		f, _ := strconv.ParseFloat(c.Time, 64)
		total += f
	}
	return time.Duration(total * float64(time.Second))
}

// oneLine keeps an attribute to one line of valid UTF-8, as CI tools show it in a list.
func oneLine(s string) string {
	s, _, _ = strings.Cut(validUTF8(s), "\n")
	return strings.TrimSpace(s)
}
