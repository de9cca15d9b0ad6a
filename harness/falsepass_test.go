package harness

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A manifest is the answer to its own kick-off (BDA2 "Complete Status"): its request names the kick-off, not
// the polling location, and a GET kick-off's _since; its transactionTime is not before the kick-off was
// answered. Each fails EXP-POLL-200, naming what it expected; the conformant server passes in fut (POST) and
// bulkdata (GET, whose request carries the kick-off's query).
func TestAManifestOfAnotherKickoffFailsThePoll200(t *testing.T) {
	withoutQuery := regexp.MustCompile(`("request":"[^"?]*)\?[^"]*"`)
	for name, c := range map[string]struct {
		profile string
		handler func(t *testing.T) http.Handler
		says    string // "" : the run passes
	}{
		"conformant fut": {"fut", func(t *testing.T) http.Handler { return refserverHandler(t, refserver.Config{}) }, ""},
		"conformant bulkdata": {"bulkdata", func(t *testing.T) http.Handler {
			return refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData})
		}, ""},
		"request is the polling location": {"fut", func(t *testing.T) http.Handler {
			return refserverHandler(t, refserver.Config{Faults: []string{"manifest-request-poll-url"}})
		}, `not the kick-off's $export`},
		"transactionTime before the kick-off": {"fut", func(t *testing.T) http.Handler {
			return refserverHandler(t, refserver.Config{Faults: []string{"manifest-stale-transaction-time"}})
		}, "not before the kick-off's answer"},
		"a GET kick-off's request without its query": {"bulkdata", func(t *testing.T) http.Handler {
			return rewriting(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), func(_ *http.Request, status int, body []byte) []byte {
				if status != http.StatusOK {
					return body
				}
				return withoutQuery.ReplaceAll(body, []byte(`$1"`))
			})
		}, `whose _since is ""`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res, out, err := runAgainst(t, c.handler(t), Config{Profile: c.profile, Token: refserver.DemoTokenA, Tags: "@EXP-POLL-200"})
			if err != nil {
				t.Fatal(err)
			}
			if c.says == "" {
				if !res.Passed {
					t.Fatalf("want a pass, got failures %+v\n%s", res.Failures, out)
				}
				return
			}
			if res.Passed || len(res.Failures) == 0 {
				t.Fatalf("want EXP-POLL-200 failed, the run passed:\n%s", out)
			}
			for _, f := range res.Failures {
				if f.Requirement == "EXP-POLL-200" && strings.Contains(f.Message, c.says) {
					return
				}
			}
			t.Fatalf("want an EXP-POLL-200 failure saying %q, got %+v\n%s", c.says, res.Failures, out)
		})
	}
}

// One deviation in what every scenario that reads a pooled job reads alike fails one scenario: the first that
// reads the job (the shared export's, in file order EXP-POLL-200's). The later readers judge their own
// requirements on the completed export and its files, rather than all ending blocked by it. Two such
// deviations: a manifest that does not answer its kick-off (its request the polling location), and an
// in-progress answer without FUT's X-Progress. EXP-DELETE-DONE, the one reader of its own job, fails on either;
// EXP-CROSS-USER never passes over the manifest's (it may list user B's own files). A run of @EXP-OUTPUT
// alone fails EXP-OUTPUT's scenario on it, its first reader: the deviation is never left unreported.
func TestOneDeviationInAPooledJobFailsOneScenario(t *testing.T) {
	for _, c := range []struct {
		fault, req       string
		blocked, checked []string
	}{
		{"manifest-request-poll-url", "EXP-POLL-200", []string{"EXP-CROSS-USER", "EXP-DELETE-DONE"},
			[]string{"EXP-EXPIRES", "EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT-TOKEN", "EXP-RETAINED"}},
		{"no-x-progress", "EXP-POLL-202", []string{"EXP-DELETE-DONE", "EXP-POLL-200"},
			[]string{"EXP-CROSS-USER", "EXP-EXPIRES", "EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT-TOKEN", "EXP-RETAINED"}},
	} {
		t.Run(c.fault, func(t *testing.T) {
			t.Parallel()
			var files atomic.Int64
			h := refserverHandler(t, refserver.Config{Faults: []string{c.fault}})
			counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/Binary/") {
					files.Add(1)
				}
				h.ServeHTTP(w, r)
			})
			res, out, err := runAgainst(t, counted, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
			if err != nil {
				t.Fatal(err)
			}
			if failed := failedRequirements(res); !slices.Equal(failed, []string{c.req}) {
				t.Fatalf("failed %v, want %s alone\n%s", failed, c.req, tailOf(out))
			}
			verdicts := map[string]RequirementResult{}
			for _, r := range res.Requirements {
				verdicts[r.ID] = r
			}
			for _, id := range c.checked {
				if r := verdicts[id]; !r.Checked() {
					t.Errorf("%s is %s: want it judged on the completed export all the same", id, r.Verdict)
				}
			}
			for _, id := range c.blocked {
				if r := verdicts[id]; r.Verdict != VerdictBlocked {
					t.Errorf("%s is %s: want it blocked by the deviation", id, r.Verdict)
				}
			}
			if files.Load() == 0 {
				t.Errorf("no output file was requested")
			}

			res, out, err = runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed || !slices.Contains(failedRequirements(res), c.req) {
				t.Fatalf("@EXP-OUTPUT alone: want its scenario failed on %s, got passed=%v %+v\n%s", c.req, res.Passed, res.Failures, tailOf(out))
			}
		})
	}
}

// An output file served as a FUT Binary (as HAPI answers the harness's Accept, which names FHIR JSON) holds
// NDJSON, so its contentType says so: application/fhir+ndjson, BDA2's SHALL for an NDJSON file and FUT's own
// (GET_Binary_export.md). A Binary whose contentType is text/plain fails EXP-OUTPUT, naming the file.
func TestABinaryOutputFileOfAnotherContentTypeFails(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"output-binary-content-type"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		if f.Requirement == "EXP-OUTPUT" && strings.Contains(f.Message, "Binary.contentType of output file ") && strings.Contains(f.Message, `got "text/plain"`) {
			return
		}
	}
	t.Fatalf("want an EXP-OUTPUT failure naming the Binary's contentType, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
}

// Output files that hold no resource at all (here every file is served empty, and the manifest, as HAPI's,
// gives no count) show no line to judge: EXP-OUTPUT and EXP-OUTPUT-ACCEPT are skipped, saying so, not passed,
// and the release gate fails. BDA2: a server SHOULD NOT list a file for a type without data.
func TestOutputFilesWithoutAnyResourceAreASkipNotAPass(t *testing.T) {
	count := regexp.MustCompile(`,"count":\d+`)
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, status int, body []byte) []byte {
		switch {
		case status == http.StatusOK && strings.Contains(r.URL.Path, "/Binary/"):
			return nil // the file, NDJSON: no line
		case status == http.StatusOK && strings.HasSuffix(r.URL.Path, "/$export-poll-status"):
			return count.ReplaceAll(body, nil)
		}
		return body
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT,@EXP-OUTPUT-ACCEPT", Gate: true, Features: []string{"export"}})
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[string]bool{}
	for _, s := range res.Findings.Skips() {
		if strings.Contains(s.Message, "output files checked hold no resource") {
			skipped[s.Requirement] = true
		}
	}
	if !skipped["EXP-OUTPUT"] || !skipped["EXP-OUTPUT-ACCEPT"] || len(res.Failures) != 0 {
		t.Fatalf("want EXP-OUTPUT and EXP-OUTPUT-ACCEPT skipped as holding no resource, got skips %+v, failures %+v\n%s", res.Findings.Skips(), res.Failures, out)
	}
	if res.Passed || res.Gate == nil || res.Gate.Passed {
		t.Fatalf("the release gate must fail on them:\n%s", out)
	}
}

// BDA2: the manifest's output is "an array of file items with one entry for each generated file": a manifest
// listing every file twice, which a client would import twice, fails EXP-POLL-200 naming the file.
func TestAManifestListingAFileTwiceFails(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"manifest-duplicate-output"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-POLL-200"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		if f.Requirement == "EXP-POLL-200" && strings.Contains(f.Message, "expected each file listed once") && strings.Contains(f.Message, "/fhir/Binary/") {
			return
		}
	}
	t.Fatalf("want an EXP-POLL-200 failure naming the file listed twice, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
}

// A DELETE on a running export answered 202 with an OperationOutcome of severity error says the cancel failed
// (FHIR R4 IssueSeverity: error "sufficiently important to cause the action to fail"): not FUT's "the export
// job will be cancelled and a '202 Accepted' is returned with an operation outcome response" (HAPI's issue is
// of severity information). It fails EXP-CANCEL, saying what the OperationOutcome said.
func TestACancelAnsweredWithAnErrorOutcomeFails(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"cancel-error-outcome"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-CANCEL"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		if f.Requirement == "EXP-CANCEL" && strings.Contains(f.Message, `with an OperationOutcome of severity error ("Job instance could not be cancelled.")`) {
			return
		}
	}
	t.Fatalf("want an EXP-CANCEL failure naming the error OperationOutcome, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
}

// A DONE report's Binary holds the report, which every FUT report OperationDefinition describes as "a Base64
// encoded .zip file containing JSON files": a line of text instead of the placeholder is still no report, and
// fails RJS-TERMINAL, showing the start of what it held.
func TestADoneReportThatIsNoZipFails(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"rjs-done-not-a-report"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		if f.Requirement == "RJS-TERMINAL" && strings.Contains(f.Message, "a zip archive of JSON files") && strings.Contains(f.Message, `starting "Report generated."`) {
			return
		}
	}
	t.Fatalf("want an RJS-TERMINAL failure saying the DONE Binary is no zip, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
}

// A DONE report is "a Base64 encoded .zip file containing JSON files": a zip whose file is CSV is a zip, but
// not the report, and fails RJS-TERMINAL, naming the file.
func TestADoneReportZipOfANonJSONFileFails(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"rjs-done-not-json"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		if f.Requirement == "RJS-TERMINAL" && strings.Contains(f.Message, "a zip archive of JSON files") && strings.Contains(f.Message, `file "report.csv" of the archive is not JSON`) {
			return
		}
	}
	t.Fatalf("want an RJS-TERMINAL failure naming the zip's CSV file, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
}

// A DONE report past the harness's bounds on unpacking (here 1,001 entries, none of them JSON) is neither
// failed nor unpacked: RJS-TERMINAL passes, its report's JSON reported not checked with the reason, which
// the release gate counts as partly checked.
func TestADoneReportPastTheArchiveBoundsIsNotChecked(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 1001 {
		f, err := zw.Create(fmt.Sprintf("part-%04d.csv", i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte("a,b\n"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	many := base64.StdEncoding.EncodeToString(buf.Bytes())
	zipData := regexp.MustCompile(`("contentType":"application/zip".*"data":")[^"]*"`)
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, _ int, body []byte) []byte {
		if !strings.Contains(r.URL.Path, "/Binary/") {
			return body
		}
		return zipData.ReplaceAll(body, []byte("${1}"+many+`"`))
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL", Gate: true, Features: []string{"report"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 0 {
		t.Fatalf("want no failure past the bounds, got %+v\n%s", res.Failures, out)
	}
	left := res.Findings.NotChecked()
	if len(left) != 1 || left[0].Requirement != "RJS-TERMINAL" || !strings.Contains(left[0].Message, "the archive has 1001 entries, more than the 1000 the harness reads") {
		t.Fatalf("want RJS-TERMINAL's report JSON not checked for its 1001 entries, got %+v\n%s", left, out)
	}
	if res.Gate == nil || !slices.ContainsFunc(res.Gate.Unchecked, func(r RequirementResult) bool {
		return r.ID == "RJS-TERMINAL" && r.Verdict == VerdictPass && strings.HasPrefix(r.Reason, "partly checked: ")
	}) {
		t.Fatalf("the gate must list RJS-TERMINAL as passed but partly checked:\n%s", out)
	}
}

// The release gate vouches only for what was read: RJS-LISTED passed for $execute but its $schedule example
// was skipped (the deployment refuses it with FUT's REPORTING_SCHEDULE_NOT_ALLOWED) is checked in part, and
// GATE=1 fails on it, naming the skipped example and why; the run itself still passes.
func TestARequirementWithASkippedScenarioIsPartlyCheckedForTheGate(t *testing.T) {
	h := refusing(refserverHandler(t, refserver.Config{}), "schedule", "REPORTING_SCHEDULE_NOT_ALLOWED")
	for _, gate := range []bool{false, true} {
		res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-LISTED", Features: []string{"report"}, Gate: gate})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Failures) != 0 || res.Passed == gate {
			t.Fatalf("GATE=%v: passed %v, failures %+v; want the run to pass only without the gate\n%s", gate, res.Passed, res.Failures, out)
		}
		if !gate {
			continue
		}
		var partly *RequirementResult
		for i, r := range res.Gate.Unchecked {
			if r.ID == "RJS-LISTED" {
				partly = &res.Gate.Unchecked[i]
			}
		}
		if partly == nil || partly.Verdict != VerdictPass || !strings.HasPrefix(partly.Reason, "partly checked: scenario ") || !strings.Contains(partly.Reason, "REPORTING_SCHEDULE_NOT_ALLOWED") {
			t.Fatalf("want RJS-LISTED passed but partly checked, naming the skipped $schedule example, got %+v\n%s", res.Gate.Unchecked, out)
		}
	}
}

// User B's status that names more jobs beyond it (a next link, which the harness does not follow: the
// OperationDefinition defines no paging) proves nothing about those: that user A's job is not among them is
// reported not checked, and RJS-CROSS-USER is partly checked for the gate, not passed outright.
func TestACrossUserStatusWithANextLinkLeavesTheRestNotChecked(t *testing.T) {
	var paged atomic.Int64
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, status int, body []byte) []byte {
		if status != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") || !strings.Contains(r.Header.Get("Authorization"), refserver.DemoTokenB) {
			return body
		}
		paged.Add(1)
		return []byte(strings.Replace(string(body), `"type":"collection"`, `"type":"collection","link":[{"relation":"next","url":"https://f.example/fhir/page-2"}]`, 1))
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@RJS-CROSS-USER", Features: []string{"report"}, Gate: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 0 {
		t.Fatalf("no deviation was shown: failures %+v\n%s", res.Failures, out)
	}
	if paged.Load() == 0 {
		t.Fatalf("user B's status was never paged: the test proves nothing\n%s", out)
	}
	for _, r := range res.Gate.Unchecked {
		if r.ID == "RJS-CROSS-USER" && strings.Contains(r.Reason, "partly checked: ") && strings.Contains(r.Reason, "has a next link (https://f.example/fhir/page-2), not followed") {
			return
		}
	}
	t.Fatalf("want RJS-CROSS-USER partly checked, naming the next link, got %+v\n%s", res.Gate.Unchecked, out)
}

// FUT's export files are HAPI Binaries labelled with their export job (meta extension bulk-export-job-id,
// FUT's GET_Binary_export.md; HAPI's WriteBinaryStep writes the job instance id, the polling location's
// _jobId). A file served as the Binary of another job is another export's file in this one's manifest, and
// fails EXP-OUTPUT naming both jobs; the reference server's own Binaries, served as FUT serves the harness's
// Accept, pass.
func TestAnOutputFileOfAnotherExportJobFails(t *testing.T) {
	asBinary := func(h http.Handler) http.Handler { // as HAPI answers an Accept that names FHIR JSON at any q
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/Binary/") && strings.Contains(r.Header.Get("Accept"), "application/fhir+json") {
				r.Header.Set("Accept", "application/fhir+json")
			}
			h.ServeHTTP(w, r)
		})
	}
	for name, faults := range map[string][]string{"conformant": nil, "another job's file": {"output-file-of-another-job"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Faults: faults}) // the fault serves the Binary itself
			if faults == nil {
				h = asBinary(h)
			}
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if faults == nil {
				if !strings.Contains(out, "(Binary, ") { // outputFilesHoldTheirType logs each file's format
					t.Fatalf("no file was read as a Binary: the test proves nothing\n%s", out)
				}
				if !res.Passed {
					t.Fatalf("the reference server's Binaries must pass: %+v\n%s", res.Failures, out)
				}
				return
			}
			for _, f := range res.Failures {
				if f.Requirement == "EXP-OUTPUT" && strings.Contains(f.Message, "bulk-export-job-id of output file ") && strings.Contains(f.Message, "a file of another export job") {
					return
				}
			}
			t.Fatalf("want an EXP-OUTPUT failure naming the other job, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
		})
	}
}

// BDA2 "Bulk Data Delete Request": the server answers a DELETE with 202 Accepted. A 303 See Other is no cancel:
// Go's client followed it with a GET of its Location (RFC 9110 §15.4.4), and the poll's answer was judged as
// the cancel's. A server (here in the bulkdata profile, whose cancel answer is a bare 202) that answers the
// DELETE with 303 to the polling location, without cancelling, passed EXP-CANCEL on the poll's 202 Accepted.
// The 303 is judged itself and fails EXP-CANCEL; so does the fault cancel-303 (it cancels, then answers 303).
func TestACancelAnswered303IsJudgedOnThe303(t *testing.T) {
	for name, c := range map[string]struct {
		profile string
		handler func(t *testing.T) http.Handler
	}{
		"303 to the polling location, not cancelled": {"bulkdata", func(t *testing.T) http.Handler {
			inner := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData})
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/$export-poll-status") {
					http.Redirect(w, r, r.URL.String(), http.StatusSeeOther)
					return
				}
				inner.ServeHTTP(w, r)
			})
		}},
		"fault cancel-303": {"fut", func(t *testing.T) http.Handler {
			return refserverHandler(t, refserver.Config{Faults: []string{"cancel-303"}})
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res, out, err := runAgainst(t, c.handler(t), Config{Profile: c.profile, Token: refserver.DemoTokenA, Tags: "@EXP-CANCEL"})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Failures {
				if f.Requirement == "EXP-CANCEL" && strings.Contains(f.Message, "303 See Other") {
					return
				}
			}
			t.Fatalf("want an EXP-CANCEL failure naming the 303, got passed=%v %+v\n%s", res.Passed, res.Failures, out)
		})
	}
}

// BDA2 "Complete Status": requiresAccessToken "SHALL be true if both the file server and the FHIR API server
// control access using OAuth 2.0 bearer tokens". A manifest that says false over files refused without a
// token (403) and served with user A's bearer token (200) says what is not so: EXP-OUTPUT-TOKEN fails, its
// transcript showing both requests, while EXP-OUTPUT and EXP-OUTPUT-ACCEPT judge the files read with the token
// and pass. The fault manifest-requires-no-token is the same with the reference server's 401 (the kill matrix).
// In fut EXP-CROSS-USER fails on the false too (FUT's files are in the exporting user's security context),
// without calling the files anyone's.
func TestAManifestThatRequiresNoTokenOverFilesThatNeedItFails(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{Faults: []string{"manifest-requires-no-token"}})
	var refused atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/Binary/") && r.Header.Get("Authorization") == "" {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden"}]}`)
			return
		}
		inner.ServeHTTP(w, r)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@EXP-OUTPUT,@EXP-OUTPUT-ACCEPT,@EXP-OUTPUT-TOKEN,@EXP-CROSS-USER"})
	if err != nil {
		t.Fatal(err)
	}
	if refused.Load() == 0 {
		t.Fatalf("no file was requested without a token: the test proves nothing\n%s", tailOf(out))
	}
	if got := failedRequirements(res); !slices.Equal(got, []string{"EXP-CROSS-USER", "EXP-OUTPUT-TOKEN"}) {
		t.Fatalf("want EXP-OUTPUT-TOKEN and (in fut) EXP-CROSS-USER failed, the files judged by EXP-OUTPUT and EXP-OUTPUT-ACCEPT; got %v\n%s", got, tailOf(out))
	}
	for _, f := range res.Failures {
		switch f.Requirement {
		case "EXP-OUTPUT-TOKEN":
			if !f.NonConformant || !strings.Contains(f.Summary, "403 Forbidden without a token and 200 OK with user A's bearer token") || !strings.Contains(f.Summary, "requiresAccessToken SHALL be true") {
				t.Errorf("EXP-OUTPUT-TOKEN must say the file was refused without a token and read with it: %s", f.Summary)
			}
			// the transcript of the verdict: the request without a token, then the one with it
			_, exchanges, _ := strings.Cut(f.Message, "HTTP exchanges behind this verdict")
			first, second := strings.Index(exchanges, "< 403 Forbidden"), strings.Index(exchanges, "< 200 OK")
			if first < 0 || second < first || strings.Contains(exchanges[:first], "Authorization:") || !strings.Contains(exchanges[first:second], "> Authorization: Bearer [redacted]") {
				t.Errorf("EXP-OUTPUT-TOKEN's transcript must show both requests, refused then read with the token:\n%s", f.Message)
			}
		case "EXP-CROSS-USER":
			if strings.Contains(f.Message, "anyone's") || !strings.Contains(f.Summary, "security context") {
				t.Errorf("EXP-CROSS-USER must name FUT's security context, not call the files anyone's: %s", f.Summary)
			}
		}
	}
}
