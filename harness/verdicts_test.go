package harness

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// counting wraps h and counts the answers with status.
func counting(h http.Handler, status int, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&statusSpy{ResponseWriter: w, status: status, n: n}, r)
	})
}

type statusSpy struct {
	http.ResponseWriter
	status int
	n      *atomic.Int64
}

func (s *statusSpy) WriteHeader(code int) {
	if code == s.status {
		s.n.Add(1)
	}
	s.ResponseWriter.WriteHeader(code)
}

// Throttling is never a failure: the reference server started with its throttle option answers 429 +
// Retry-After to every poll that comes before the Retry-After it announced, and the suite still passes, in
// every profile, every scenario run, none failed, none skipped.
func TestAThrottlingServerPassesInEveryProfile(t *testing.T) {
	for _, p := range refserver.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			var throttled atomic.Int64
			h := counting(refserverHandler(t, refserver.Config{Profile: p, Throttle: true}), http.StatusTooManyRequests, &throttled)
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
			if err != nil || !res.Passed || len(res.Failures) != 0 {
				t.Fatalf("passed=%v failures=%d err=%v\n%s", res.Passed, len(res.Failures), err, out)
			}
			if skips := res.Findings.Skips(); len(skips) != 0 {
				t.Errorf("no scenario may be skipped, got %+v", skips)
			}
			if throttled.Load() == 0 {
				t.Fatal("the server never throttled: the test proves nothing")
			}
			if !strings.Contains(out, "429 Too Many Requests") {
				t.Errorf("each 429 waited out is logged:\n%s", out)
			}
		})
	}
}

// Output files that anyone can read fail the run in profile fut, and the failure names the requirement and
// the file: served without a token (EXP-OUTPUT-TOKEN), or to the other user with their own token
// (EXP-CROSS-USER).
func TestOutputFilesReadableByOthersFailTheRunInFUT(t *testing.T) {
	for fault, req := range map[string]string{"output-no-token": "EXP-OUTPUT-TOKEN", "output-cross-user": "EXP-CROSS-USER"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Faults: []string{fault}})
			res, out, err := runAgainst(t, h, Config{Profile: "fut", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@" + req})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed {
				t.Fatalf("files readable by others must fail the run:\n%s", out)
			}
			named := false
			for _, f := range res.Failures {
				if f.Requirement == req && strings.Contains(f.Message, req) && strings.Contains(f.Message, "/fhir/Binary/") {
					named = true
				}
			}
			if !named {
				t.Fatalf("want a failure of %s naming the file's URL, got %+v", req, res.Failures)
			}
		})
	}
}

// A finished report job without ended fails the run, on RJS-STRUCTURE.
func TestAFinishedReportJobWithoutEndedFailsTheRun(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"rjs-done-no-ended"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@RJS-STRUCTURE"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || len(res.Failures) == 0 {
		t.Fatalf("a DONE job without ended must fail the run:\n%s", out)
	}
	for _, f := range res.Failures {
		if f.Requirement == "RJS-STRUCTURE" && strings.Contains(f.Message, "an ended dateTime on a finished job") {
			return
		}
	}
	t.Fatalf("want an RJS-STRUCTURE failure saying the finished job has no ended, got %+v", res.Failures)
}

// An independent HL7 Bulk Data server: its polling location is [base]/bulkstatus/<id> (where an unknown id
// answers 404 + OperationOutcome) and it serves no $export-poll-status at all. In profile bulkdata the suite
// passes with no failed scenario: the unknown-job request is its own polling location with another id, and a
// request without a job id, which the IG does not define, is not applicable.
func TestBulkdataPassesAServerWithItsOwnPollingPath(t *testing.T) {
	var futOperation, bulkstatus atomic.Int64
	inner := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/$export-poll-status"), strings.Contains(r.URL.Path, "report"):
			futOperation.Add(1) // FUT's polling operation, or one of its reporting operations
		case strings.Contains(r.URL.Path, "/bulkstatus/"):
			bulkstatus.Add(1)
		}
		inner.ServeHTTP(w, r)
	})
	res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
	if err != nil || !res.Passed || len(res.Failures) != 0 {
		t.Fatalf("passed=%v failures=%+v err=%v\n%s", res.Passed, res.Failures, err, out)
	}
	if bulkstatus.Load() == 0 {
		t.Fatal("no request reached the server's own polling path: the test proves nothing")
	}
	// Not even the preflight's credential probe: in bulkdata it is a kick-off, whose job it cancels. Nor the
	// report feature's operations: FUT's, n/a in bulkdata, so that feature is not run.
	if n := futOperation.Load(); n > 0 {
		t.Errorf("the run requested FUT's $export-poll-status or reporting operations %d times in profile bulkdata", n)
	}
	if len(res.NotSelected) != 1 || !strings.Contains(res.NotSelected[0], "not applicable in profile bulkdata") {
		t.Errorf("the summary must say the report feature was not run, and why: %q", res.NotSelected)
	}
	for _, r := range res.Requirements {
		if strings.HasPrefix(r.ID, "RJS-") && r.Verdict != VerdictNotApplicable {
			t.Errorf("%s: verdict %s in bulkdata, want not applicable", r.ID, r.Verdict)
		}
	}
	if _, err := Run(context.Background(), Config{Profile: "bulkdata", Features: []string{"report"}, Out: io.Discard, ReportsDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "n/a") {
		t.Errorf("FEATURES=report in bulkdata: want an error saying it does not apply, got %v", err)
	}
}

// A report job that ends with a status no source names (here COMPLETED, with its ended time) has stopped: the
// wait ends there, instead of polling a stopped job until MAX_WAIT and blaming the wait. The specification
// enumerates no status (an open string; FUT's examples show DONE and FAILED), so the status is no deviation:
// RJS-TERMINAL is not failed but left not checked, naming the status, and the release gate does not count it.
func TestAReportJobEndedWithAnUnknownStatusIsNotCheckedNotFailed(t *testing.T) {
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, _ int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") {
			return body
		}
		return bytes.ReplaceAll(body, []byte(`"valueString":"DONE"`), []byte(`"valueString":"COMPLETED"`))
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL", MaxWait: 30 * time.Second, Gate: true, Features: []string{"report"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 0 {
		t.Fatalf("an unknown final status is no deviation: failures %+v\n%s", res.Failures, out)
	}
	left := res.Findings.NotChecked()
	if len(left) != 1 || left[0].Requirement != "RJS-TERMINAL" || !strings.Contains(left[0].Message, `status "COMPLETED"`) || strings.Contains(left[0].Message, "MAX_WAIT") {
		t.Fatalf("want RJS-TERMINAL not checked, naming the status, not the wait: %+v\n%s", left, out)
	}
	if res.Gate == nil || !slices.ContainsFunc(res.Gate.Unchecked, func(r RequirementResult) bool { return r.ID == "RJS-TERMINAL" }) {
		t.Fatalf("the gate must not count RJS-TERMINAL as checked:\n%s", out)
	}
}

// Bundle.entry.fullUrl is 0..1, and FHIR lets the results of an operation carry resources that are not
// identified: a status without fullUrls passes RJS-FULLURL and RJS-STRUCTURE even under STRICT=1, while one
// with a bare UUID (FUT's example) is still the SHOULD deviation it was.
func TestAStatusWithoutFullURLsIsNoDeviation(t *testing.T) {
	fullURL := regexp.MustCompile(`"fullUrl":"[^"]*",?`)
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, _ int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") {
			return body
		}
		return fullURL.ReplaceAll(body, nil)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-FULLURL,@RJS-STRUCTURE", Strict: true})
	if err != nil || !res.Passed || len(res.Findings.Warnings()) > 0 {
		t.Fatalf("passed=%v err=%v warnings %v\n%s", res.Passed, err, res.Findings.Warnings(), out)
	}
	if strings.Contains(out, `"fullUrl"`) {
		t.Fatalf("the wrapper left a fullUrl in:\n%s", out)
	}
}

// The release gate vouches only for what was read. An export of more files than MAX_FILES passes EXP-OUTPUT
// on the files it checked, and the run passes; under GATE=1 EXP-OUTPUT is partly checked and fails the gate,
// naming the bound, in the console and in junit.xml.
func TestAPartlyCheckedRequirementFailsTheReleaseGate(t *testing.T) {
	h := refserverHandler(t, refserver.Config{FilesPerType: 3})
	for _, gate := range []bool{false, true} {
		res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT", MaxFiles: 2, Gate: gate, Features: []string{"export"}})
		if err != nil {
			t.Fatal(err)
		}
		if gate == res.Passed || res.Gate == nil && gate {
			t.Fatalf("GATE=%v: passed %v, want %v\n%s", gate, res.Passed, !gate, out)
		}
		if !gate {
			continue
		}
		var partly *RequirementResult
		for i, r := range res.Gate.Unchecked {
			if r.ID == "EXP-OUTPUT" {
				partly = &res.Gate.Unchecked[i]
			}
		}
		if partly == nil || partly.Verdict != VerdictPass || !strings.Contains(partly.Reason, "partly checked: ") || !strings.Contains(partly.Reason, "MAX_FILES=2") || !strings.Contains(partly.Reason, "MAX_FILES=7 checks them all") {
			t.Fatalf("want EXP-OUTPUT passed but partly checked (MAX_FILES=2) among the gate's unchecked, got %+v\n%s", res.Gate.Unchecked, out)
		}
		if !strings.Contains(out, "EXP-OUTPUT  pass: partly checked: ") {
			t.Errorf("the console must list EXP-OUTPUT as partly checked:\n%s", out)
		}
	}
}

// A scenario whose downloads judged no file passes nothing: here every file is on an origin the run does not
// trust, answers 401 (or 404, as a store that hides what it does not show) without the token, and EXP-OUTPUT
// is skipped, naming the origin, not passed.
func TestNoOutputFileCheckedIsASkipNotAPass(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) { noOutputFileChecked(t, status) })
	}
}

func noOutputFileChecked(t *testing.T, status int) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	t.Cleanup(files.Close)
	h := rewriting(refserverHandler(t, refserver.Config{}), func(_ *http.Request, status int, body []byte) []byte {
		if strings.Contains(string(body), `"output"`) && status == http.StatusOK { // the manifest: files elsewhere
			body = regexp.MustCompile(`"url":"https?://[^/"]+`).ReplaceAll(body, []byte(`"url":"`+files.URL))
		}
		return body
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
	if err != nil {
		t.Fatal(err)
	}
	skips := res.Findings.Skips()
	if len(skips) != 1 || skips[0].Requirement != "EXP-OUTPUT" || !strings.Contains(skips[0].Message, "no output file was checked: ") || !strings.Contains(skips[0].Message, "origin not trusted") {
		t.Fatalf("want EXP-OUTPUT skipped because no file was checked, got skips %+v\n%s", skips, out)
	}
	for _, r := range res.Requirements {
		if r.ID == "EXP-OUTPUT" && r.Verdict != VerdictSkipped {
			t.Errorf("EXP-OUTPUT: %s, want skipped", r.Verdict)
		}
	}
}

// The caller's user id is known only from the securityContext of the Binary a report's start returns: a
// server that sets none leaves RJS-LISTED's userId comparison not checked (any userId would pass it), which
// the release gate does not count as checked.
func TestAReportBinaryWithoutSecurityContextLeavesTheUserIDNotChecked(t *testing.T) {
	securityContext := regexp.MustCompile(`"securityContext":\{"identifier":\{[^}]*\}\},?`)
	h := rewriting(refserverHandler(t, refserver.Config{}), func(_ *http.Request, _ int, body []byte) []byte {
		return securityContext.ReplaceAll(body, nil)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-LISTED", Gate: true, Features: []string{"report"}})
	if err != nil {
		t.Fatal(err)
	}
	left := res.Findings.NotChecked()
	if len(left) == 0 || left[0].Requirement != "RJS-LISTED" || !strings.Contains(left[0].Message, "not compared with the caller's") {
		t.Fatalf("want RJS-LISTED's userId reported not checked, got %+v\n%s", left, out)
	}
	if res.Gate == nil || !slices.ContainsFunc(res.Gate.Unchecked, func(r RequirementResult) bool {
		return r.ID == "RJS-LISTED" && r.Verdict == VerdictPass && strings.HasPrefix(r.Reason, "partly checked: ")
	}) {
		t.Fatalf("the gate must list RJS-LISTED as passed but partly checked:\n%s", out)
	}
	if strings.Contains(out, `"securityContext"`) {
		t.Fatalf("the wrapper left a securityContext in:\n%s", out)
	}
}

// A cancelled export that completes anyway, at the time an uncancelled one would, fails EXP-CANCELLED-404
// however long a job takes: the watch reaches past the completion of the user's export kicked off beside it
// (here 7 s, longer than the watch's own 5-second window). The conformant server passes the same run, and its
// watch is not reported as cut short.
func TestACancelledExportThatCompletesLaterFails(t *testing.T) {
	for _, faults := range [][]string{nil, {"cancelled-completes"}} {
		h := refserverHandler(t, refserver.Config{ExportDuration: 7 * time.Second, Faults: faults})
		res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-CANCELLED-404"})
		if err != nil {
			t.Fatal(err)
		}
		if faults == nil {
			if !res.Passed || len(res.Findings.NotChecked()) > 0 {
				t.Fatalf("conformant: passed %v, not checked %v\n%s", res.Passed, res.Findings.NotChecked(), out)
			}
			continue
		}
		if got := failedRequirements(res); len(got) != 1 || got[0] != "EXP-CANCELLED-404" || !strings.Contains(res.Failures[0].Summary, "200 OK") {
			t.Fatalf("a cancelled export completing after 7 s: failures %v, want EXP-CANCELLED-404 naming the 200\n%s", got, out)
		}
	}
}

// rewriting serves h's answers with their bodies passed through edit, given the request and the status.
func rewriting(h http.Handler, edit func(r *http.Request, status int, body []byte) []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(edit(r, rec.Code, rec.Body.Bytes()))
	})
}

// A gateway in maintenance answers 503 + Retry-After with a page of its own (RFC 9110: unavailable for now):
// the waits on an export and on a report job wait it out, within MAX_WAIT, and nothing is failed for it.
func TestAServerUnavailableForNowIsWaitedOut(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{})
	var unavailable atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		poll := strings.HasSuffix(r.URL.Path, "/$export-poll-status") && r.Method == http.MethodGet
		status := strings.HasSuffix(r.URL.Path, "/$get-report-job-status")
		if (poll || status) && unavailable.Add(1)%3 != 0 { // two answers of every three
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("<html>down for maintenance</html>"))
			return
		}
		inner.ServeHTTP(w, r)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-POLL-200,@RJS-TERMINAL", MaxWait: time.Minute})
	if err != nil || !res.Passed || len(res.Failures) != 0 {
		t.Fatalf("passed=%v failures=%+v err=%v\n%s", res.Passed, res.Failures, err, out)
	}
	if unavailable.Load() < 3 || !strings.Contains(out, "503 Service Unavailable") {
		t.Fatalf("the server was unavailable %d times, and the log says:\n%s", unavailable.Load(), out)
	}
}
