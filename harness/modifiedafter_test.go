package harness

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// BDA2 "Complete Status": transactionTime "Indicates the server's time when the query is run. The response
// SHOULD NOT include any resources modified after this instant". Before EXP-MODIFIED-AFTER a server whose
// output lines were last updated an hour after its manifest's transactionTime passed every profile unwarned,
// even under STRICT=1. Now it is warned of, naming the file, the line, the resource, its lastUpdated and the
// transactionTime, and STRICT=1 fails EXP-MODIFIED-AFTER alone; the reference server, whose data (embedded or
// synthetic) was last updated long before any run, is warned of nothing.
func TestAnOutputLineModifiedAfterTransactionTimeIsWarnedOf(t *testing.T) {
	for _, profile := range refserver.Profiles {
		for _, strict := range []bool{false, true} {
			t.Run(string(profile)+map[bool]string{true: " STRICT"}[strict], func(t *testing.T) {
				t.Parallel()
				h := refserverHandler(t, refserver.Config{Profile: profile, Faults: []string{"output-modified-after-transaction"}})
				res, out, err := runAgainst(t, h, Config{Profile: string(profile), Token: refserver.DemoTokenA, Tags: "@EXP-MODIFIED-AFTER", Strict: strict})
				if err != nil {
					t.Fatalf("run: %v\n%s", err, out)
				}
				if strict {
					if res.Passed || !slices.Equal(failedRequirements(res), []string{"EXP-MODIFIED-AFTER"}) {
						t.Fatalf("STRICT: want EXP-MODIFIED-AFTER failed alone, got passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
					}
					if f := res.Failures[0]; !namesTheLine(f.Message) {
						t.Fatalf("the failure must name the file, the line, the resource, its lastUpdated and the transactionTime: %q", f.Message)
					}
					return
				}
				if !res.Passed || len(res.Failures) != 0 {
					t.Fatalf("a SHOULD must not fail the run: passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
				}
				warned := slices.ContainsFunc(res.Findings.Warnings(), func(f steps.Finding) bool {
					return f.Requirement == "EXP-MODIFIED-AFTER" && namesTheLine(f.Message)
				})
				if !warned {
					t.Fatalf("want a warning of EXP-MODIFIED-AFTER naming the file, its line and the times, got %+v\n%s", res.Findings.Warnings(), tailOf(out))
				}
			})
		}
	}
	for name, data := range map[string]refserver.Synthetic{"embedded": {}, "synthetic": {Resources: 3000, Types: []string{"Patient", "Observation"}}} {
		for _, profile := range refserver.Profiles {
			t.Run("the reference server, "+name+" data, "+string(profile), func(t *testing.T) {
				t.Parallel()
				h := refserverHandler(t, refserver.Config{Profile: profile, Synthetic: data})
				res, out, err := runAgainst(t, h, Config{Profile: string(profile), Token: refserver.DemoTokenA, Tags: "@EXP-MODIFIED-AFTER", Strict: true})
				if err != nil || !res.Passed || len(res.Findings.Warnings()) != 0 {
					t.Fatalf("a server whose data predates the run: passed=%v failures=%v warnings=%+v err=%v\n%s", res.Passed, failedRequirements(res), res.Findings.Warnings(), err, tailOf(out))
				}
				if nc := res.Findings.NotChecked(); len(nc) != 0 {
					t.Fatalf("no line's meta.lastUpdated was compared: the test proves nothing: %+v\n%s", nc, tailOf(out))
				}
			})
		}
	}
}

// namesTheLine tells a message of EXP-MODIFIED-AFTER that names the output file (the reference server's
// Binary URL), line 1, the resource as Type/id, its lastUpdated, the manifest's transactionTime and how much later.
func namesTheLine(msg string) bool {
	return strings.Contains(msg, "meta.lastUpdated of output file http") && strings.Contains(msg, "/Binary/") &&
		strings.Contains(msg, " line 1 (") && strings.Contains(msg, "transactionTime 20") && strings.Contains(msg, ", got \"20") && strings.Contains(msg, "s later")
}

// A run that compared no line's meta.lastUpdated with transactionTime, its lines without meta or none of them
// decoded strictly (FHIR_LINES=none), checked nothing of EXP-MODIFIED-AFTER: before, it read as a pass like any
// other, said on the log alone. Now the requirement is reported not checked, saying why, and the run still
// passes: the lines are valid without meta, and a server owes none.
func TestAnExportWhoseLinesWereNotComparedLeavesEXPModifiedAfterNotChecked(t *testing.T) {
	noMeta := regexp.MustCompile(`"meta":\{"lastUpdated":"[^"]*"\},`)
	for name, c := range map[string]struct {
		fhirLines int
		stripMeta bool
		why       string
	}{
		"lines without meta": {0, true, "no output line decoded strictly carries a meta.lastUpdated"},
		"FHIR_LINES=none":    {steps.NoFHIRLines, false, "FHIR_LINES=none decodes no line strictly"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var h http.Handler = refserverHandler(t, refserver.Config{Profile: refserver.ProfileFUT})
			if c.stripMeta {
				h = servingFiles(h, func(w http.ResponseWriter, _ *http.Request, file *httptest.ResponseRecorder) {
					writeRewritten(w, file.Header(), file.Code, noMeta.ReplaceAll(file.Body.Bytes(), nil))
				})
			}
			res, out, err := runAgainst(t, h, Config{Profile: "fut", Token: refserver.DemoTokenA, Tags: "@EXP-MODIFIED-AFTER", FHIRLines: c.fhirLines})
			if err != nil || !res.Passed {
				t.Fatalf("want a pass: passed=%v failures=%v err=%v\n%s", res.Passed, failedRequirements(res), err, tailOf(out))
			}
			nc := res.Findings.NotChecked()
			if len(nc) != 1 || nc[0].Requirement != "EXP-MODIFIED-AFTER" || !strings.Contains(nc[0].Message, c.why) || !strings.Contains(nc[0].Message, "transactionTime 20") {
				t.Fatalf("want EXP-MODIFIED-AFTER not checked, saying %q and naming the transactionTime; got %+v\n%s", c.why, nc, tailOf(out))
			}
		})
	}
}
